"""E-invoices: the fields an invoice carries as XML, read at confidence 1 (pure).

Three syntaxes, with their official namespaces (``lxml``): UN/CEFACT CII (Factur-X, ZUGFeRD 2.x, XRechnung
CII), ZUGFeRD 1.0's CII and OASIS UBL 2.1 (XRechnung UBL, Peppol BIS). The XML comes from a PDF/A-3's
attachment (``factur-x``'s reader) or from a restored ``.xml`` file. What the XML does not hold is read from
the page by the offline extractor, as for any other document.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from reindex_pipeline.domain.extraction import Extraction, LineItem

CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
ZUGFERD1 = {
    "rsm": "urn:ferd:CrossIndustryDocument:invoice:1p0",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15",
}
UBL = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
#: Bytes an e-invoice's XML may have (a restore refuses a larger one with its reason).
MAX_XML_BYTES = 5 * 1024 * 1024


class InvalidEInvoice(ValueError):
    """Not an e-invoice this reader knows, or not well-formed XML: the message says which."""


@dataclass(frozen=True)
class EInvoice:
    syntax: str  # "CII", "ZUGFeRD-1" or "UBL"
    extraction: Extraction


def read_einvoice(xml: bytes) -> EInvoice:
    """The invoice's fields from its XML (every field it holds at confidence 1)."""
    from lxml import etree

    if len(xml) > MAX_XML_BYTES:
        raise InvalidEInvoice(f"XML too large: {len(xml) / 2**20:.1f} MB (at most {MAX_XML_BYTES // 2**20} MB)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidEInvoice(f"not well-formed XML: {exc.msg}") from None
    namespace = etree.QName(root).namespace
    if namespace == CII["rsm"]:
        return EInvoice("CII", _cii(root, CII, "ExchangedDocument", "ApplicableHeaderTradeSettlement"))
    if namespace == ZUGFERD1["rsm"]:
        return EInvoice(
            "ZUGFeRD-1", _cii(root, ZUGFERD1, "HeaderExchangedDocument", "ApplicableSupplyChainTradeSettlement")
        )
    if namespace in (UBL["inv"], UBL["cn"]):
        return EInvoice("UBL", _ubl(root))
    raise InvalidEInvoice(
        f"not an e-invoice: the root element is {etree.QName(root).localname!r} in {namespace or 'no namespace'!r} "
        "(CII, ZUGFeRD 1 and UBL invoices are read)"
    )


def _text(node, path: str, ns: dict[str, str]) -> str | None:
    found = node.xpath(f"string({path})", namespaces=ns)
    return found.strip() or None


def _amount(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return f"{Decimal(value):.2f}"
    except InvalidOperation:
        return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _date(value: str | None) -> str | None:
    """Format 102 (``20240131``) or ISO (``2024-01-31``) -> ISO."""
    if not value:
        return None
    digits = value.replace("-", "")
    if len(digits) == 8 and digits.isdigit():
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return None


def _cii(root, ns: dict[str, str], header: str, settlement_name: str) -> Extraction:
    document = f"/rsm:CrossIndustry{'Invoice' if ns is CII else 'Document'}/rsm:{header}"
    trade = "//ram:ApplicableHeaderTradeAgreement" if ns is CII else "//ram:ApplicableSupplyChainTradeAgreement"
    settlement = f"//ram:{settlement_name}"
    summation = (  # ZUGFeRD 1 names it without "Header"
        f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
        if ns is CII
        else f"{settlement}/ram:SpecifiedTradeSettlementMonetarySummation"
    )
    items = _items(
        root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=ns),
        ns,
        description=".//ram:SpecifiedTradeProduct/ram:Name",
        quantity=".//ram:BilledQuantity",
        unit_price=".//ram:NetPriceProductTradePrice/ram:ChargeAmount",
        amount=".//ram:LineTotalAmount",
    )
    return _extraction(
        invoice_number=_text(root, f"{document}/ram:ID", ns),
        invoice_date=_date(_text(root, f"{document}/ram:IssueDateTime/udt:DateTimeString", ns)),
        due_date=_date(
            _text(root, f"{settlement}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString", ns)
        ),
        currency=_text(root, f"{settlement}/ram:InvoiceCurrencyCode", ns),
        vendor_name=_text(root, f"{trade}/ram:SellerTradeParty/ram:Name", ns),
        customer_name=_text(root, f"{trade}/ram:BuyerTradeParty/ram:Name", ns),
        subtotal=_amount(_text(root, f"{summation}/ram:TaxBasisTotalAmount", ns)),
        tax=_amount(_text(root, f"{summation}/ram:TaxTotalAmount", ns)),
        total=_amount(_text(root, f"{summation}/ram:GrandTotalAmount", ns)),
        line_items=items,
    )


def _ubl(root) -> Extraction:
    ns = UBL
    items = _items(
        root.xpath("cac:InvoiceLine | cac:CreditNoteLine", namespaces=ns),
        ns,
        description="cac:Item/cbc:Name",
        quantity="cbc:InvoicedQuantity | cbc:CreditedQuantity",
        unit_price="cac:Price/cbc:PriceAmount",
        amount="cbc:LineExtensionAmount",
    )
    party = "cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"
    name = "cac:Party/cac:PartyName/cbc:Name"
    seller, buyer = "cac:AccountingSupplierParty", "cac:AccountingCustomerParty"
    total = "cac:LegalMonetaryTotal"
    return _extraction(
        invoice_number=_text(root, "cbc:ID", ns),
        invoice_date=_date(_text(root, "cbc:IssueDate", ns)),
        due_date=_date(_text(root, "cbc:DueDate", ns)),
        currency=_text(root, "cbc:DocumentCurrencyCode", ns),
        vendor_name=_text(root, f"{seller}/{party}", ns) or _text(root, f"{seller}/{name}", ns),
        customer_name=_text(root, f"{buyer}/{party}", ns) or _text(root, f"{buyer}/{name}", ns),
        subtotal=_amount(_text(root, f"{total}/cbc:TaxExclusiveAmount", ns)),
        tax=_amount(_text(root, "cac:TaxTotal/cbc:TaxAmount", ns)),
        total=_amount(_text(root, f"{total}/cbc:TaxInclusiveAmount", ns)),
        line_items=items,
    )


def _items(lines: list, ns: dict[str, str], *, description: str, quantity: str, unit_price: str, amount: str):
    """The invoice's lines, each field at its path relative to the line."""
    out = []
    for number, line in enumerate(lines, start=1):
        count = _text(line, quantity, ns)
        out.append(
            LineItem(
                line=number,
                description=_text(line, description, ns) or "",
                quantity=_number(count),
                unit_price=_amount(_text(line, unit_price, ns)),
                amount=_amount(_text(line, amount, ns)),
            )
        )
    return out


def _extraction(*, line_items: list[LineItem], **fields: str | None) -> Extraction:
    extraction = Extraction(document_type="invoice", line_items=line_items, **fields)
    extraction._confidence = {name: 1.0 for name, value in fields.items() if value is not None}
    extraction._confidence["document_type"] = 1.0
    return extraction


def with_page_fields(xml: Extraction, page: Extraction) -> Extraction:
    """The XML's fields, and the page's for what the XML does not hold (at the page's confidence)."""
    merged = page.model_copy(update={k: v for k, v in xml.model_dump(exclude={"line_items"}).items() if v is not None})
    if xml.line_items:
        merged.line_items = xml.line_items
    merged._confidence = {**page._confidence, **xml._confidence}
    return merged


def render(extraction: Extraction, syntax: str) -> str:
    """A readable page for an invoice that arrived as XML alone: what is chunked, embedded and searched."""
    rows = [
        ("Invoice", extraction.invoice_number),
        ("Date", extraction.invoice_date),
        ("Due", extraction.due_date),
        ("Seller", extraction.vendor_name),
        ("Buyer", extraction.customer_name),
        ("Currency", extraction.currency),
    ]
    lines = [f"# E-invoice ({syntax})", ""] + [f"**{label}:** {value}" for label, value in rows if value]
    if extraction.line_items:
        lines += ["", "| # | Description | Quantity | Unit price | Amount |", "|---|---|---|---|---|"]
        for item in extraction.line_items:
            quantity = "" if item.quantity is None else f"{item.quantity:g}"
            lines.append(
                f"| {item.line} | {item.description} | {quantity} | {item.unit_price or ''} | {item.amount or ''} |"
            )
    totals = [("Net", extraction.subtotal), ("Tax", extraction.tax), ("Total", extraction.total)]
    lines += [""] + [f"**{label}:** {value} {extraction.currency or ''}".rstrip() for label, value in totals if value]
    return "\n".join(lines)
