"""A deterministic demo corpus: organisation, users, workspaces, invoices and receipts with OCR markdown.

Pure: ``build_corpus(n, seed)`` returns the same rows for the same arguments, on any machine.
Each document also carries ``expected`` fields (what a correct extractor should find), used by tests
only; they are never written to the database.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from reindex_pipeline.ingest.chunking import Chunk, split_pages

NAMESPACE = uuid.UUID("6f1d3c1e-4a0b-4d55-9a53-2f4a8d1b7c01")
BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def stable_id(seed: int, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join([str(seed), *map(str, parts)]))


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    username: str
    email: str
    role: str
    status: str


@dataclass(frozen=True)
class Workspace:
    id: uuid.UUID
    name: str


@dataclass
class Document:
    id: uuid.UUID
    workspace_id: uuid.UUID
    owner_id: uuid.UUID | None
    filename: str
    convert_status: str
    index_status: str
    deleted_at: datetime | None
    created_at: datetime
    kind: str
    language: str
    pages: list[str] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    expected: dict = field(default_factory=dict)

    def page_id(self, page_number: int) -> uuid.UUID:
        return uuid.uuid5(self.id, f"page/{page_number}")

    def chunk_id(self, chunk_index: int) -> uuid.UUID:
        return uuid.uuid5(self.id, f"chunk/{chunk_index}")


@dataclass
class Corpus:
    seed: int
    org_id: uuid.UUID
    org_name: str
    users: list[User]
    workspaces: list[Workspace]
    documents: list[Document]


# -- vocabulary ---------------------------------------------------------------------------------------
VENDORS = [
    ("Northwind Office Supplies GmbH", "Hauptstraße 12, 10115 Berlin, Germany", "DE123456789"),
    ("Contoso Hardware Ltd.", "14 Kingsway, London WC2B 6UN, United Kingdom", "GB987654321"),
    ("Fabrikam Électronique SARL", "8 Rue de la Paix, 75002 Paris, France", "FR40123456824"),
    ("Tailspin Toys Inc.", "500 Market St, San Francisco, CA 94105, USA", "US-94-1234567"),
    ("Litware Servicios S.L.", "Calle de Alcalá 45, 28014 Madrid, Spain", "ESB12345678"),
    ("Adventure Works Cycles", "1 Microsoft Way, Redmond, WA 98052, USA", "US-91-7654321"),
    ("Wide World Importers", "Keizersgracht 123, 1015 CJ Amsterdam, Netherlands", "NL123456789B01"),
    ("Proseware Consulting AG", "Bahnhofstrasse 7, 8001 Zürich, Switzerland", "CHE-123.456.789"),
]
CUSTOMERS = [
    ("Blue Yonder Airlines", "2 Harbour Road, Dublin D02 X285, Ireland"),
    ("Coho Winery", "77 Vine Street, Napa, CA 94559, USA"),
    ("Alpine Ski House", "Dorfstrasse 3, 6020 Innsbruck, Austria"),
    ("Margie's Travel", "19 Queen Street, Auckland 1010, New Zealand"),
    ("Trey Research", "4 Science Park, Cambridge CB4 0WS, United Kingdom"),
    ("Lucerne Publishing", "Seestrasse 21, 6004 Luzern, Switzerland"),
]
STORES = [
    ("Fourth Coffee", "12 Pike Place, Seattle, WA 98101, USA"),
    ("Graphic Design Institute Shop", "Via Roma 10, 00184 Roma, Italy"),
    ("Southridge Video & Electronics", "300 Main St, Austin, TX 78701, USA"),
    ("Bäckerei Sonnenschein", "Marktplatz 5, 80331 München, Germany"),
]
PRODUCTS = [
    ("Wireless keyboard", "49.90"),
    ("Optical mouse", "19.50"),
    ("27-inch monitor", "289.00"),
    ("USB-C docking station", "159.00"),
    ("Ergonomic office chair", "349.00"),
    ("A4 copy paper (box)", "32.40"),
    ("Laser toner cartridge", "89.95"),
    ("Noise-cancelling headset", "129.00"),
    ("Laptop stand", "39.99"),
    ("Consulting hours", "120.00"),
    ("Cloud backup subscription", "15.00"),
    ("HDMI cable 2m", "9.90"),
    ("Whiteboard markers (12)", "14.25"),
    ("Desk lamp LED", "44.00"),
    ("External SSD 1TB", "99.00"),
]
RECEIPT_ITEMS = [
    ("Cappuccino", "3.80"),
    ("Croissant", "2.60"),
    ("Bagel with cream cheese", "4.20"),
    ("Orange juice", "3.50"),
    ("Sandwich", "6.90"),
    ("Notebook A5", "5.95"),
    ("Batteries AA (4)", "7.49"),
    ("Phone charger", "19.99"),
]
CURRENCIES = {"en": ["USD", "GBP", "EUR"], "de": ["EUR", "CHF"], "fr": ["EUR"], "es": ["EUR"]}

#: Field labels per language. The rule-based extractor reads the same vocabulary.
LABELS = {
    "en": {
        "invoice": "INVOICE",
        "receipt": "RECEIPT",
        "number": "Invoice No",
        "date": "Invoice Date",
        "due": "Due Date",
        "currency": "Currency",
        "from": "From",
        "to": "Bill To",
        "items": "Items",
        "desc": "Description",
        "qty": "Qty",
        "unit": "Unit Price",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "tax": "Tax",
        "total": "Total",
        "terms": "Payment terms: net 30 days.",
        "receipt_no": "Receipt No",
        "paid": "Paid by card",
        "rdate": "Date",
    },
    "de": {
        "invoice": "RECHNUNG",
        "receipt": "KASSENBON",
        "number": "Rechnungsnummer",
        "date": "Rechnungsdatum",
        "due": "Fällig am",
        "currency": "Währung",
        "from": "Absender",
        "to": "Rechnungsempfänger",
        "items": "Positionen",
        "desc": "Beschreibung",
        "qty": "Menge",
        "unit": "Einzelpreis",
        "amount": "Betrag",
        "subtotal": "Zwischensumme",
        "tax": "MwSt",
        "total": "Gesamtbetrag",
        "terms": "Zahlbar innerhalb von 30 Tagen ohne Abzug.",
        "receipt_no": "Bon-Nr",
        "paid": "Kartenzahlung",
        "rdate": "Datum",
    },
    "fr": {
        "invoice": "FACTURE",
        "receipt": "TICKET DE CAISSE",
        "number": "Numéro de facture",
        "date": "Date de facture",
        "due": "Échéance",
        "currency": "Devise",
        "from": "Émetteur",
        "to": "Facturé à",
        "items": "Articles",
        "desc": "Désignation",
        "qty": "Qté",
        "unit": "Prix unitaire",
        "amount": "Montant",
        "subtotal": "Sous-total",
        "tax": "TVA",
        "total": "Total TTC",
        "terms": "Paiement à 30 jours.",
        "receipt_no": "Ticket n°",
        "paid": "Payé par carte",
        "rdate": "Date",
    },
    "es": {
        "invoice": "FACTURA",
        "receipt": "TICKET",
        "number": "Número de factura",
        "date": "Fecha de factura",
        "due": "Vencimiento",
        "currency": "Moneda",
        "from": "Emisor",
        "to": "Facturar a",
        "items": "Conceptos",
        "desc": "Descripción",
        "qty": "Cant.",
        "unit": "Precio unitario",
        "amount": "Importe",
        "subtotal": "Base imponible",
        "tax": "IVA",
        "total": "Total",
        "terms": "Pago a 30 días.",
        "receipt_no": "Ticket n.º",
        "paid": "Pagado con tarjeta",
        "rdate": "Fecha",
    },
}
TAX_RATES = {"en": "0.20", "de": "0.19", "fr": "0.20", "es": "0.21"}
CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return f"{value.quantize(CENT, ROUND_HALF_UP):,.2f}"


# -- the corpus ---------------------------------------------------------------------------------------
def build_users(seed: int) -> list[User]:
    people = [
        ("admin", "admin", "active"),
        ("bob", "user", "active"),
        ("carol", "user", "active"),
        ("dave", "user", "suspended"),
        ("erin", "user", "inactive"),
    ]
    return [
        User(stable_id(seed, "user", name), name, f"{name}@example.com", role, status) for name, role, status in people
    ]


def build_workspaces(seed: int) -> list[Workspace]:
    return [Workspace(stable_id(seed, "workspace", name), name) for name in ("Invoices", "Receipts", "Finance Archive")]


#: (convert_status, index_status, deleted) and their weights; most documents are reindex-eligible.
STATUS_MIX = [
    (("converted", "indexed", False), 74),
    (("pending", "pending", False), 5),
    (("failed", "pending", False), 3),
    (("converted", "indexing", False), 8),
    (("converted", "failed", False), 3),
    (("converted", "indexed", True), 7),
]


def build_corpus(n_documents: int = 60, seed: int = 7) -> Corpus:
    if n_documents < 1:
        raise ValueError(f"the demo corpus needs at least one document, got {n_documents}")
    users = build_users(seed)
    workspaces = build_workspaces(seed)
    return Corpus(
        seed,
        stable_id(seed, "org"),
        "Demo Org",
        users,
        workspaces,
        list(iter_documents(n_documents, seed, users, workspaces)),
    )


def iter_documents(n: int, seed: int, users: list[User], workspaces: list[Workspace]) -> Iterator[Document]:
    rng = random.Random(seed)
    owners: list[uuid.UUID | None] = [u.id for u in users[:4]] + [None]
    owner_weights = [20, 30, 25, 10, 15]
    statuses, status_weights = zip(*STATUS_MIX, strict=True)
    for i in range(n):
        # The first documents walk through every status and owner, so even a tiny corpus has the mix.
        status = statuses[i] if i < len(statuses) else rng.choices(statuses, status_weights)[0]
        owner = owners[i % len(owners)] if i < len(owners) else rng.choices(owners, owner_weights)[0]
        convert_status, index_status, deleted = status
        kind = "receipt" if rng.random() < 0.35 else "invoice"
        workspace = workspaces[1] if kind == "receipt" and rng.random() < 0.7 else rng.choice(workspaces)
        language = rng.choices(["en", "de", "fr", "es"], [70, 12, 10, 8])[0]
        created = BASE_TIME + timedelta(minutes=17 * i + rng.randrange(15))
        doc = Document(
            id=stable_id(seed, "document", i),
            workspace_id=workspace.id,
            owner_id=owner,
            filename="",
            convert_status=convert_status,
            index_status=index_status,
            deleted_at=created + timedelta(days=3) if deleted else None,
            created_at=created,
            kind=kind,
            language=language,
        )
        render = _render_invoice if kind == "invoice" else _render_receipt
        doc.pages, doc.expected, doc.filename = render(rng, i, language)
        if convert_status == "converted":
            doc.chunks = split_pages(doc.pages)
        else:
            doc.pages = []
        yield doc


def _line_items(rng: random.Random, catalogue: list[tuple[str, str]], count: int) -> list[dict]:
    items = []
    for n, (desc, price) in enumerate(rng.sample(catalogue, count), start=1):
        qty = rng.randint(1, 12)
        unit = Decimal(price)
        items.append(
            {"line": n, "description": desc, "quantity": qty, "unit_price": money(unit), "amount": money(unit * qty)}
        )
    return items


def _render_invoice(rng: random.Random, i: int, lang: str) -> tuple[list[str], dict, str]:
    lb = LABELS[lang]
    vendor, vendor_addr, vat_id = rng.choice(VENDORS)
    customer, customer_addr = rng.choice(CUSTOMERS)
    issued = date(2025, 1, 1) + timedelta(days=rng.randrange(700))
    due = issued + timedelta(days=30)
    currency = rng.choice(CURRENCIES[lang])
    number = f"INV-{issued.year}-{i + 1:05d}"
    items = _line_items(rng, PRODUCTS, rng.randint(2, 14))
    subtotal = sum(Decimal(it["amount"].replace(",", "")) for it in items)
    tax = subtotal * Decimal(TAX_RATES[lang])
    total = subtotal + tax
    header = [
        f"# {lb['invoice']}",
        "",
        f"**{lb['number']}:** {number}  ",
        f"**{lb['date']}:** {issued.isoformat()}  ",
        f"**{lb['due']}:** {due.isoformat()}  ",
        f"**{lb['currency']}:** {currency}",
        "",
        f"## {lb['from']}",
        vendor,
        vendor_addr,
        f"VAT ID: {vat_id}",
        "",
        f"## {lb['to']}",
        customer,
        customer_addr,
        "",
    ]
    table_head = [
        f"## {lb['items']}",
        "",
        f"| # | {lb['desc']} | {lb['qty']} | {lb['unit']} | {lb['amount']} |",
        "|---|---|---:|---:|---:|",
    ]
    rows = [
        f"| {it['line']} | {it['description']} | {it['quantity']} | {it['unit_price']} | {it['amount']} |"
        for it in items
    ]
    totals = [
        "",
        f"| {lb['subtotal']} | {money(subtotal)} {currency} |",
        "|---|---:|",
        f"| {lb['tax']} {int(Decimal(TAX_RATES[lang]) * 100)}% | {money(tax)} {currency} |",
        f"| **{lb['total']}** | **{money(total)} {currency}** |",
        "",
        lb["terms"],
    ]
    split = 8 if len(rows) > 8 else len(rows)
    pages = ["\n".join(header + table_head + rows[:split])]
    rest = rows[split:]
    if rest:
        pages.append("\n".join(table_head + rest + totals))
    else:
        pages.append("\n".join([f"## {lb['total']}", *totals]))
    expected = {
        "document_type": "invoice",
        "invoice_number": number,
        "invoice_date": issued.isoformat(),
        "due_date": due.isoformat(),
        "currency": currency,
        "vendor_name": vendor,
        "customer_name": customer,
        "subtotal": money(subtotal),
        "tax": money(tax),
        "total": money(total),
        "line_items": items,
        "language": lang,
    }
    slug = vendor.split()[0].lower()
    return pages, expected, f"{issued:%b-%d} - {slug} invoice {number}.pdf"


def _render_receipt(rng: random.Random, i: int, lang: str) -> tuple[list[str], dict, str]:
    lb = LABELS[lang]
    store, store_addr = rng.choice(STORES)
    day = date(2025, 1, 1) + timedelta(days=rng.randrange(700))
    currency = rng.choice(CURRENCIES[lang])
    number = f"R-{i + 1:06d}"
    items = _line_items(rng, RECEIPT_ITEMS, rng.randint(1, 5))
    total = sum(Decimal(it["amount"].replace(",", "")) for it in items)
    lines = [
        f"# {lb['receipt']}",
        "",
        f"**{store}**",
        store_addr,
        "",
        f"**{lb['receipt_no']}:** {number}  ",
        f"**{lb['rdate']}:** {day.isoformat()} {rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}  ",
        f"**{lb['currency']}:** {currency}",
        "",
        f"| {lb['desc']} | {lb['qty']} | {lb['amount']} |",
        "|---|---:|---:|",
        *[f"| {it['description']} | {it['quantity']} | {it['amount']} |" for it in items],
        "",
        f"**{lb['total']}: {money(total)} {currency}**",
        "",
        f"{lb['paid']} ****{rng.randint(1000, 9999)}",
    ]
    for it in items:
        it["unit_price"] = None  # a receipt's table shows no unit price
    expected = {
        "document_type": "receipt",
        "invoice_number": number,
        "invoice_date": day.isoformat(),
        "currency": currency,
        "vendor_name": store,
        "total": money(total),
        "line_items": items,
        "language": lang,
    }
    return ["\n".join(lines)], expected, f"{day:%b-%d} - receipt {number}.pdf"
