"""The offline invoice extractor: field rules in six languages, organisation keys, the demo corpus, and
real invoices with checked answers."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from reindex_pipeline.demo.corpus import build_corpus
from reindex_pipeline.graph.builder import from_extraction
from reindex_pipeline.invoices.evaluation import DEV_SET, accuracy, evaluate
from reindex_pipeline.invoices.parties import org_key
from reindex_pipeline.reindex.extraction import RULES_VERSION, Extraction, extract_rules

DATASET = Path(os.environ.get("INVOICES_DEV_DIR", DEV_SET))

# Hand-written invoices in the layouts real ones use: columns as runs of spaces, labels beside or above values.
EN = """ACME Widgets Ltd.                                   INVOICE
12 Harbour Road, Leeds LS1 4AB                      Invoice No: INV-2024-0193
                                                    Invoice Date: 03/14/2024
Bill To                                             Due Date: April 13, 2024
Blue Yonder Airlines
2 Harbour Road, Dublin

Description                 Qty      Unit price        Amount
Consulting hours            10        $120.00        $1,200.00
Travel expenses              1        $310.50          $310.50

                                         Subtotal    $1,510.50
                                         Tax (10%)     $151.05
                                         Total       $1,661.55
"""
DE = """Müller & Söhne GmbH • Hauptstraße 5 • 80331 München
Rechnung
Kundin AG
Seeweg 3                                      Rechnungsnummer: RE-55021
8001 Zürich                                   Rechnungsdatum: 02.03.2024
                                              Fällig am: 16.03.2024
Pos. Beschreibung              Menge   Einzelpreis      Gesamt
1    Wartung Heizung            2,00      150,00 €    300,00 €
Zwischensumme                                          300,00 €
zzgl. 19 % MwSt.                                        57,00 €
Gesamtbetrag                                           357,00 €
"""
FR = """Facture
Émetteur : Boulangerie Dupont SARL                  Facture n° : F-2024-118
Facturé à : Café des Arts                           Date de facture : 5 mars 2024
Désignation                   Qté      Prix unitaire     Montant
Croissants (lot de 50)         3          25,00 €        75,00 €
Total HT                                                  75,00 €
TVA 5,5 %                                                  4,13 €
Total TTC                                                 79,13 €
"""
ES = """FACTURA
Emisor: Litware Servicios S.L.
Número de factura: 2024/0042
Fecha de emisión: 13 de abril de 2024
Facturar a: Coho Winery
Base imponible                1.000,00 €
IVA 21%                         210,00 €
Total                         1.210,00 €
"""
NL = """Factuur
Wide World Importers B.V.                         Factuurnummer: 2024-077
Keizersgracht 123, Amsterdam                      Factuurdatum: 12-02-2024
Factuur aan: Alpine Ski House                     Vervaldatum: 12-03-2024
Subtotaal                                          € 800,00
BTW 21%                                            € 168,00
Totaal                                             € 968,00
"""
PL = """Faktura VAT
Sprzedawca:                                   Nabywca:
Drukarnia Nowak sp. z o.o.                    Trey Research Ltd
ul. Długa 5, 00-001 Warszawa                  4 Science Park, Cambridge
Numer faktury: FV/2024/03/17                  Data wystawienia: 2024-03-17
Termin płatności: 2024-03-31
Wartość netto                                  1 000,00 zł
VAT 23%                                          230,00 zł
Razem do zapłaty                               1 230,00 zł
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            EN,
            {
                "invoice_number": "INV-2024-0193",
                "invoice_date": "2024-03-14",
                "due_date": "2024-04-13",
                "currency": "USD",
                "vendor_name": "ACME Widgets Ltd.",
                "customer_name": "Blue Yonder Airlines",
                "subtotal": "1510.50",
                "tax": "151.05",
                "total": "1661.55",
                "language": "en",
            },
        ),
        (
            DE,
            {
                "invoice_number": "RE-55021",
                "invoice_date": "2024-03-02",
                "due_date": "2024-03-16",
                "currency": "EUR",
                "vendor_name": "Müller & Söhne GmbH",
                "subtotal": "300.00",
                "tax": "57.00",
                "total": "357.00",
                "language": "de",
            },
        ),
        (
            FR,
            {
                "invoice_number": "F-2024-118",
                "invoice_date": "2024-03-05",
                "currency": "EUR",
                "vendor_name": "Boulangerie Dupont SARL",
                "customer_name": "Café des Arts",
                "subtotal": "75.00",
                "tax": "4.13",
                "total": "79.13",
                "language": "fr",
            },
        ),
        (
            ES,
            {
                "invoice_number": "2024/0042",
                "invoice_date": "2024-04-13",
                "currency": "EUR",
                "vendor_name": "Litware Servicios S.L.",
                "customer_name": "Coho Winery",
                "subtotal": "1000.00",
                "tax": "210.00",
                "total": "1210.00",
                "language": "es",
            },
        ),
        (
            NL,
            {
                "invoice_number": "2024-077",
                "invoice_date": "2024-02-12",
                "due_date": "2024-03-12",
                "currency": "EUR",
                "vendor_name": "Wide World Importers B.V.",
                "customer_name": "Alpine Ski House",
                "subtotal": "800.00",
                "tax": "168.00",
                "total": "968.00",
                "language": "nl",
            },
        ),
        (
            PL,
            {
                "invoice_number": "FV/2024/03/17",
                "invoice_date": "2024-03-17",
                "due_date": "2024-03-31",
                "currency": "PLN",
                "vendor_name": "Drukarnia Nowak sp. z o.o.",
                "customer_name": "Trey Research Ltd",
                "subtotal": "1000.00",
                "tax": "230.00",
                "total": "1230.00",
                "language": "pl",
            },
        ),
    ],
    ids=["en", "de", "fr", "es", "nl", "pl"],
)
def test_field_rules_in_six_languages(text: str, expected: dict[str, str]) -> None:
    got = extract_rules([text])
    assert {k: getattr(got, k) for k in expected} == expected
    assert got.document_type == "invoice"
    assert all(0.5 <= got.confidence(k) <= 1 for k in expected)


def test_line_items_from_a_layout_table() -> None:
    items = extract_rules([EN]).line_items
    assert [(i.description, i.quantity, i.amount) for i in items] == [
        ("Consulting hours", 10.0, "1200.00"),
        ("Travel expenses", 1.0, "310.50"),
    ]


def test_a_field_it_is_unsure_of_is_null_not_a_guess() -> None:
    got = extract_rules(["Thank you for shopping with us.\nSee you soon: 12.50"])
    assert got.total is None and got.vendor_name is None and got.language is None
    assert got.fields() == {"document_type": "unknown"}


def test_spelling_variants_of_one_organisation_share_a_key() -> None:
    variants = ["ACME GmbH", "Acme Gmbh.", "ACME", "acme  gmbh"]
    assert {org_key(v) for v in variants} == {"acme"}
    assert org_key("Userpilot, Inc.") == org_key("Userpilot Inc") == "userpilot"
    assert org_key("Drukarnia Nowak sp. z o.o.") == "drukarnia nowak"
    assert org_key("Empresa S.A.") == org_key("EMPRESA SA") == "empresa"
    assert org_key("Squeaky B.V.") == org_key("Squeaky BV") == "squeaky"
    assert org_key("Atlassian Pty Ltd") == "atlassian"
    assert org_key("Acme Corp") != org_key("Acme Widgets Ltd")
    one = Extraction(vendor_name="ACME GmbH", invoice_number="1")
    other = Extraction(vendor_name="Acme Gmbh.", invoice_number="2")
    assert from_extraction(one)[0][0].key == from_extraction(other)[0][0].key == "organization:acme"


def test_the_demo_corpus_still_extracts_fully() -> None:
    docs = [d for d in build_corpus(120, seed=7).documents if d.pages]
    assert RULES_VERSION == "rules-2.0"
    for doc in docs:
        got = extract_rules(doc.pages)
        for name, want in doc.expected.items():
            have = getattr(got, name)
            if name == "line_items":
                assert [(i.description, i.quantity, Decimal(i.amount)) for i in have] == [
                    (i["description"], i["quantity"], Decimal(i["amount"].replace(",", ""))) for i in want
                ], doc.id
            elif name in ("total", "subtotal", "tax"):
                assert Decimal(have) == Decimal(want.replace(",", "")), (doc.id, name)
            else:
                assert have == want, (doc.id, name, have, want)


@pytest.mark.skipif(not (DATASET / "expected.json").exists(), reason=f"no real-invoice set at {DATASET}")
def test_real_invoices_reach_the_measured_accuracy() -> None:
    results = evaluate(DATASET)
    # measured 2026-11-25: 14 of 15 on every field; the 15th PDF has no text mapping (its fonts lack one),
    # so a restore rejects it as needing OCR
    assert all(right >= 14 for right in accuracy(results).values()), accuracy(results)
    rejected = [r for r in results if r.error]
    assert len(rejected) == 1 and "no extractable text" in rejected[0].error
