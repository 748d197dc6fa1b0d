"""The offline extractor for invoices and receipts, as the reindex calls it.

It reads the page text any document yields (PDF text with its layout, OCR'd pages, plain text) in English,
German, French, Spanish, Dutch and Polish, with no template per issuer: candidates per field, ranked by a
small learned model (:mod:`reindex_pipeline.invoices.extractor`). Each field carries a confidence; a field
below its threshold is left out (null).
"""

from __future__ import annotations

from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.invoices.extractor import read_invoice

RULES_EXTRACTOR = "rules"
#: the learned ranker the extractor ships (``invoices/ranker.json``; a test checks they agree)
RANKER_VERSION = "ranker-576e61b4ef"
#: 2.0: generic multilingual rules over any page text, confidences, normalised amounts (was: demo markdown only);
#: 3.0: candidates per field ranked by a model learned leave-issuer-out, nothing stored below its threshold;
#: 3.1: labels a PDF spaced apart after their capital ("F actuurnummer") joined before anything is read;
#: 3.3: a browser's print header date is no candidate; numeric dates read in the order of the unambiguous ones;
#: 3.4: a receipt rounded to the coin stores its rounded total, nothing is stored below 0.5; 3.5: a page naming
#: no currency pays in its country's; 3.6: the customer's block and lines to the reader are no issuer; 3.7: the
#: name above a street address is an issuer candidate; 3.8: unsigned rounding; 3.9: courtesy lines name no company;
#: 3.10: a legal form that is a month before a number is a date ("Next Billing Date Sep 13"); 3.11: a German or
#: Dutch street is one word ending in its kind before a house number ("Hofstraße 12"); 3.12: a domain that names
#: a role ("seller@seller.com") is no evidence of a name, and a sentence of more than 12 words is no issuer;
#: 3.13: a country or state alone is no issuer ("MALAYSIA", "JOHOR."), nor a name followed by a colon ("COMPANY NO:");
#: 3.14: a name broken before its legal form ("MPH BOOKSTORES" / "SDN BHD") names its country for the currency;
#: 3.15: a legal form of the countries that put it first (PT, OOO, TOV, AT) ends no name ("MANDATE PT");
#: 3.16: a customer label inside a phrase ("CUSTOMER COPY", "USt-IdNr. Kunde") names no customer, an
#: identifier, a currency, a legal form or a place is no customer, and a letter's addressee under its sender line is;
#: 3.17: a customer block's contact line ("Buyer contact name") is passed over for the next plausible name;
#: 3.18: dates written year first with slashes or dots ("2016/05/01") and with a month word between hyphens or
#: before a two-digit year ("05-AUG-2017", "30 DEC 17"); 3.19: labels and keywords match without their accents
#: ("NET A PAYER"), "net à payer" is no net amount, the amount due after a prepayment and the amount a receipt
#: rounded are no total candidates, a date is no amount ("18.02.2025"), a tax word is no id before an amount
#: ("TOTAL TTC 110,00"), a line of a currency alone does not part a label from its value; 3.20: every part of a
#: browser's print header is an issuer candidate (its page title: "Invoice | TeamGantt"); 3.21: a street and its
#: number is no organisation, whatever legal form it ends in ("NO 2, JALAN BULAN BM"); 3.22: a role word before a
#: legal form is a name, not a label ("Seller Company", "Lieferant GmbH"), an organisation ends at a "·", and the
#: name above an address block is above its street, not above its phone line; 3.23: a sender line as OCR reads it
#: ("Seller Company : 123 Seller St - ...": a colon after a name with a legal form, dashes) and its name is an
#: issuer candidate that the colon does not make a label; 3.24: a party's social page spells its name as a domain
#: does ("M.FACEBOOK.COM/B-BEST-RESTAURANT"), a name ends at a registration number glued to it ("SB(306295-X)"),
#: and a building's name over the address that names it again is part of the address
RULES_VERSION = f"rules-3.24+{RANKER_VERSION}"


def extract_rules(pages: list[str]) -> Extraction:
    """Fields, confidences and line items from a document's pages (all pages, in order)."""
    found = read_invoice(pages)
    kept = found.fields()
    values = {name: value for name, (value, _) in kept.items()}
    if values.get("document_type") not in ("invoice", "receipt"):
        values.pop("document_type", None)
    result = Extraction(**values, line_items=found.items)
    result._confidence = {name: confidence for name, (_, confidence) in kept.items()}
    return result
