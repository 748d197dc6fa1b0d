"""The offline invoice extractor: field rules in six languages, organisation keys, the demo corpus, and
real invoices with checked answers."""

from __future__ import annotations

import math
import os
from decimal import Decimal
from pathlib import Path

import pytest

from reindex_pipeline.demo.corpus import build_corpus
from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.graph.builder import from_extraction
from reindex_pipeline.invoices.evaluation import DATASETS, DEV_SET
from reindex_pipeline.invoices.parties import org_key
from reindex_pipeline.invoices.rules import RANKER_VERSION, RULES_VERSION, extract_rules

DATASET = Path(os.environ.get("INVOICES_DEV_DIR", DEV_SET))
#: field -> dev set -> (least share of documents with a right stored value, most wrong stored values),
#: leave-issuer-out, as measured by ./dev bench extraction (docs/benchmarks.md)
FLOORS = {
    "total": {"invoices-dev": (1.0, 0), "sroie-dev": (0.91, 3), "einvoices-dev": (0.91, 0)},
    "invoice_date": {"invoices-dev": (1.0, 0), "sroie-dev": (0.98, 0), "einvoices-dev": (1.0, 0)},
    "currency": {"invoices-dev": (1.0, 0), "sroie-dev": (0.91, 2), "einvoices-dev": (1.0, 0)},
    "vendor_name": {"invoices-dev": (0.8, 0), "sroie-dev": (0.83, 2), "einvoices-dev": (0.91, 1)},
    "invoice_number": {"einvoices-dev": (0.91, 0)},
}

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
    stored = {k: getattr(got, k) for k in expected if getattr(got, k) is not None}
    # what is stored is right; the ranker may stay silent on the total or the issuer (its thresholds are set
    # where 95 % of stored values were right on real issuers it had not seen), never on the rest here
    assert stored == {k: v for k, v in expected.items() if k in stored}
    assert set(expected) - set(stored) <= {"total", "subtotal", "tax", "vendor_name"}, set(expected) - set(stored)
    assert got.document_type == "invoice"
    assert all(0 < got.confidence(k) <= 1 for k in stored)


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


def test_the_demo_corpus_extracts_right_and_nearly_fully() -> None:
    docs = [d for d in build_corpus(120, seed=7).documents if d.pages]
    assert RULES_VERSION.startswith("rules-3.24")
    silent: dict[str, int] = {}
    for doc in docs:
        got = extract_rules(doc.pages)
        for name, want in doc.expected.items():
            have = getattr(got, name)
            if name == "line_items":
                assert [(i.description, i.quantity, Decimal(i.amount)) for i in have] == [
                    (i["description"], i["quantity"], Decimal(i["amount"].replace(",", ""))) for i in want
                ], doc.id
            elif have is None:
                silent[name] = silent.get(name, 0) + 1
            elif name in ("total", "subtotal", "tax"):
                assert Decimal(have) == Decimal(want.replace(",", "")), (doc.id, name)
            else:
                assert have == want, (doc.id, name, have, want)
    # measured: every stored value right; the ranker stays silent on some totals and issuers of the demo
    assert set(silent) <= {"total", "subtotal", "tax", "vendor_name"}, silent
    assert all(n <= 0.25 * len(docs) for n in silent.values()), silent


def test_the_shipped_ranker_is_the_version_the_extractor_records() -> None:
    # a retrained ranker.json without a new RANKER_VERSION would leave stale-only reindexes on the old answers
    from reindex_pipeline.invoices.ranker import load

    assert load().version == RANKER_VERSION
    assert RANKER_VERSION in RULES_VERSION


@pytest.mark.skipif(not (DATASETS / "sroie-dev" / "expected.json").exists(), reason=f"no dev sets at {DATASETS}")
def test_dev_sets_reach_the_measured_leave_issuer_out_figures() -> None:
    """Each document scored by a ranker and threshold learned without its issuer (./dev bench extraction)."""
    from reindex_pipeline.invoices import training
    from reindex_pipeline.invoices.evaluation import load_sets

    samples = load_sets()
    reads = training.readings(samples)
    # measured 2026-12-04 (docs/benchmarks.md): share of documents with a right stored value, at most so many
    # wrong stored values, per set and field
    floors = FLOORS
    for field, by_set in floors.items():
        scored = training.out_of_fold(field, samples, reads)
        for dataset, (least_right, most_wrong) in by_set.items():
            rows = [s for s in scored if s.sample.dataset == dataset]
            right = sum(s.right and s.stored for s in rows) / len(rows)
            wrong = sum(s.stored and not s.right for s in rows)
            assert right >= least_right and wrong <= most_wrong, (field, dataset, right, wrong)
    # the customer (rules, nothing fitted): e-invoices are the set with its answers
    from reindex_pipeline.invoices.evaluation import matches

    got = [(s, r.customer.name if r and r.customer else None) for s, r in zip(samples, reads, strict=True)]
    got = [(s, name) for s, name in got if s.expected.get("customer")]
    right = sum(1 for s, name in got if name and matches("issuer", s.expected["customer"], name))
    assert right >= 6 and right == sum(1 for _, name in got if name)


def test_a_month_before_a_day_is_a_date_not_a_legal_form() -> None:
    from reindex_pipeline.invoices.parties import month_names, organisation_in

    assert {"sep", "sept", "september", "wrz", "mrt", "mei"} <= month_names()
    assert organisation_in("Next Billing Date Sep 13, 2023") is None  # SEP: a French legal form
    assert organisation_in("Billing Period Sep 13, 2022 to Sep 13, 2023") is None
    assert organisation_in("Calendly LLC Invoice Amount $144.00") == "Calendly LLC"
    assert organisation_in("Lumière SEP, 12 rue de la Paix") == "Lumière SEP"  # not followed by a day


def test_currencies_come_from_babel_and_a_legal_form_is_never_one() -> None:
    from reindex_pipeline.invoices.amounts import currencies_in, find_money

    assert currencies_in("AIK HUAT HARDWARE SDN BHD") == []  # a Malaysian legal form, not the Bahraini dinar
    assert find_money("SDN BHD 822737-X") == ()  # nor is its registration number money
    assert [m.currency for m in find_money("TOTAL RM 31.00")] == ["MYR"]
    assert [m.currency for m in find_money("Razem 1.234,56 zł")] == ["PLN"]
    assert [m.currency for m in find_money("Celkem 1 200,00 Kč")] == ["CZK"]
    assert [m.currency for m in find_money("BTW 21% € 124,61")] == ["EUR"]
    assert currencies_in("THANK YOU ALL") == []  # a code of letters is money only where money stands
    dollar = find_money("$144.00")[0]
    assert dollar.currency == "USD" and dollar.ambiguous_currency and "SGD" in dollar.currencies


def test_a_receipt_total_is_what_was_paid_less_the_change() -> None:
    from reindex_pipeline.invoices.candidates import read_page, total_candidates

    page = read_page(["SHOP SDN BHD\nTOTAL\nRM21.85\nTOTAL PAID\nRM50.00\nCHANGE\nRM28.15\n"], "en")
    features = {c.value: c.features for c in total_candidates(page)}
    assert features["21.85"]["paid_minus_change"] == 1.0 and features["50.00"]["change_from_it"] == 1.0
    assert features["21.85"]["label_above"] == 1.0 and features["28.15"]["label_above"] == 0.0


def test_a_party_is_never_a_label_or_an_address() -> None:
    from reindex_pipeline.invoices.parties import plausible_party

    assert not any(plausible_party(x) for x in ("Address", "Ship To", "Fremont CA 94538", "Tel: 03-3362 3608"))
    assert all(plausible_party(x) for x in ("Strategic Corp", "AIK HUAT HARDWARE ENTERPRISE", "Müller & Söhne GmbH"))


def test_issuer_scoring_needs_most_of_the_name_or_its_start() -> None:
    from reindex_pipeline.invoices.parties import same_organisation

    assert same_organisation("SwissDev", "SwissDev Greg Janusz Tomasik")
    assert same_organisation("AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD", "AIK HUAT HARDWARE ENTERPRISE")
    assert not same_organisation("AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD", "ALAM")
    assert not same_organisation("Le Client", "Le Fournisseur")


def test_a_column_of_labels_read_before_its_column_of_values_is_paired_in_order() -> None:
    from reindex_pipeline.invoices.candidates import read_page, total_candidates

    receipt = (
        "SHOP SDN BHD\nPLUG TOP 4.00\nSUB-TOTAL (GST)\nDISC\nROUNDING\nTOTAL\nCASH\nCHANGE\n"
        "4.00\n0.00\n0.00\n4.00\n20.00\n16.00\n"
    )
    page = read_page([receipt], "en")
    assert {page.lines[i].text: label.text for i, label in page.paired.items()}["20.00"] == "CASH"
    features = {c.value: c.features for c in total_candidates(page)}
    assert features["20.00"]["tender_word"] == 1.0 and features["20.00"]["label_same"] == 0.0
    assert features["16.00"]["label_same"] == 0.0
    # a total label paired with its value, not left to the amounts around it
    assert any(c.value == "4.00" and c.features["label_same"] == 1.0 for c in total_candidates(page))
    # runs of unequal length are not paired: which label is whose is unknown
    assert read_page(["TOTAL\nCASH\n4.00\n20.00\n16.00\n"], "en").paired == {}
    assert read_page(["SHOP\nTOTAL\nCASH\n4.00\n20.00\n"], "en").paired == {}


def test_a_name_broken_over_lines_is_an_issuer_only_whole() -> None:
    from reindex_pipeline.invoices.candidates import issuer_candidates, read_page

    page = read_page(["AIK HUAT HARDWARE\nENTERPRISE (SETIA\nALAM) SDN BHD\nNO. 17-G, JALAN SETIA INDAH\n"], "en")
    names = {c.value: c.features for c in issuer_candidates(page, set())}
    assert "AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD" in names
    assert "ALAM) SDN BHD" not in names and "AIK HUAT HARDWARE ENTERPRISE (SETIA" not in names
    assert names["AIK HUAT HARDWARE"]["inside_longer"] == 1.0
    assert names["AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD"]["inside_longer"] == 0.0
    foot = read_page(["KFA SUPPLY\nTOTAL 4.00\nTHANK YOU FOR SHOPPING AT\n"], "en")
    assert {c.value: c.features["courtesy"] for c in issuer_candidates(foot, set())}["THANK YOU FOR SHOPPING AT"] == 1.0


def test_a_legal_form_names_its_countries_however_it_is_dotted() -> None:
    from reindex_pipeline.invoices.candidates import currency_candidates, read_page
    from reindex_pipeline.invoices.currencies import legal_form_countries

    # cleanco lists "sdn. bhd." under Malaysia and "sdn bhd" under Singapore
    assert legal_form_countries("PASARAYA BORONG PINTAR SDN BHD") == ("MY", "SG")
    assert legal_form_countries("WESTERN EASTERN STATIONERY SDN. BHD.") == ("MY", "SG")
    assert legal_form_countries("Foo sp. z o.o.") == ("PL",) and legal_form_countries("ACME B.V.") == ("NL",)
    assert legal_form_countries("HOLLOWBHD") == ()  # a form is whole words
    page = read_page(["SHOP SDN BHD\nJALAN 2, 81200 JOHOR BAHRU, MALAYSIA\nTOTAL 4.00\n"], "en")
    features = {c.value: c.features for c in currency_candidates(page, ["SHOP SDN BHD"])}
    assert features["MYR"]["foreign"] == 0.0 and features["MYR"]["country_top"] == 1.0


def test_the_ranker_scores_a_documents_candidates_against_each_other_and_none() -> None:
    from reindex_pipeline.invoices.candidates import Candidate
    from reindex_pipeline.invoices.ranker import FieldModel, Ranker

    model = FieldModel(("label",), (0.0,), (1.0,), (2.0,), 0.0, 0.5)
    ranker = Ranker("test", {"total": model})
    one = [Candidate("total", "10.00", {"label": 1.0}), Candidate("total", "3.00", {"label": 0.0})]
    value, confidence = ranker.best(one)
    # e^2 / (e^2 + e^0 + e^0): the other candidate and "none of them" share the rest
    assert value == "10.00" and confidence == pytest.approx(math.exp(2) / (math.exp(2) + 2))
    # the same amount read twice counts for one value
    twice = [*one, Candidate("total", "10.00", {"label": 1.0})]
    assert ranker.best(twice)[1] == pytest.approx(2 * math.exp(2) / (2 * math.exp(2) + 2))
    assert ranker.best([Candidate("total", "3.00", {"label": -3.0})])[1] < 0.01  # "none" wins: silent


def test_spellings_of_one_issuer_share_its_probability() -> None:
    from reindex_pipeline.invoices.candidates import Candidate
    from reindex_pipeline.invoices.ranker import FieldModel, Ranker

    ranker = Ranker("test", {"vendor_name": FieldModel(("top",), (0.0,), (1.0,), (1.0,), 0.0, 0.5)})
    candidates = [
        Candidate("vendor_name", "DAMANSARA UTAMA", {"top": 1.2}),
        Candidate("vendor_name", "THREE STOOGES", {"top": 1.0}),
        Candidate("vendor_name", "THREE STOOGES BISTRO & CAFE", {"top": 0.9}),
        Candidate("vendor_name", "BISTRO & CAFE", {"top": 0.0}),  # a piece from its middle is another name
    ]
    value, confidence = ranker.best(candidates)
    # the one organisation named twice beats the single most probable line, in its most probable spelling
    e = math.exp
    assert value == "THREE STOOGES"
    assert confidence == pytest.approx((e(1.0) + e(0.9)) / (e(1.2) + e(1.0) + e(0.9) + e(0.0) + e(0.0)))


def test_a_label_spaced_apart_after_its_capital_is_read_whole() -> None:
    from reindex_pipeline.invoices.matching import mend_spacing

    page = (
        "Jansen Webdesign B.V.\nKeizersgracht 12, 1015 CX Amsterdam\nF actuurnummer: 993548900\n"
        "F actuurdatum: 08-09-2022\nOmschrijving                 Bedrag\nWebsite onderhoud          € 500,00\n"
        "BTW 21%                    € 105,00\nT otaal                    € 605,00\n"
    )
    got = extract_rules([page])
    assert (got.invoice_number, got.invoice_date, got.total) == ("993548900", "2022-09-08", "605.00")
    assert [i.description for i in got.line_items] == ["Website onderhoud"]  # "T otaal" is no product
    # only a capital set apart from a word that is a label; an article before a word stays
    assert mend_spacing("Pay a mount of 5. A specialized carrier. I nvoice Date") == (
        "Pay a mount of 5. A specialized carrier. Invoice Date"
    )


def test_candidate_features_are_the_same_in_every_process() -> None:
    """A tie between currencies ("$" is many) is broken by code, not by the order a set of codes iterates in,
    which differs from one process to the next (PYTHONHASHSEED): the same page always extracts the same."""
    import os
    import subprocess
    import sys

    script = (
        "import json; from reindex_pipeline.invoices.extractor import read_candidates; "
        "r = read_candidates(['Naturalsoft Limited  Auckland\\nTotal  $ 12.00\\nPaid by card $ 12.00']); "
        "print(json.dumps({f: [(c.value, sorted(c.features.items())) for c in cs] for f, cs in r.candidates.items()}))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3, 4, 5)
    }
    assert len(outputs) == 1


ZUGFERD_1 = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15">
  <rsm:HeaderExchangedDocument><ram:ID>471102</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20130305</udt:DateTimeString></ram:IssueDateTime>
  </rsm:HeaderExchangedDocument>
  <rsm:SpecifiedSupplyChainTradeTransaction>
    <ram:ApplicableSupplyChainTradeAgreement>
      <ram:SellerTradeParty><ram:Name>Lieferant GmbH</ram:Name></ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Kunden AG Mitte</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableSupplyChainTradeAgreement>
    <ram:ApplicableSupplyChainTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:TaxBasisTotalAmount currencyID="EUR">198.00</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">37.62</ram:TaxTotalAmount>
        <ram:GrandTotalAmount currencyID="EUR">235.62</ram:GrandTotalAmount>
      </ram:SpecifiedTradeSettlementMonetarySummation>
    </ram:ApplicableSupplyChainTradeSettlement>
  </rsm:SpecifiedSupplyChainTradeTransaction>
</rsm:CrossIndustryDocument>"""


def test_e_invoice_xml_in_its_three_syntaxes_and_what_is_not_one() -> None:
    from reindex_pipeline.invoices.einvoice import InvalidEInvoice, read_einvoice, with_page_fields

    data = Path(__file__).with_name("data")
    cii = read_einvoice((data / "factur-x-en16931.xml").read_bytes())
    ubl = read_einvoice((data / "xrechnung-ubl.xml").read_bytes())
    old = read_einvoice(ZUGFERD_1)
    assert (cii.syntax, ubl.syntax, old.syntax) == ("CII", "UBL", "ZUGFeRD-1")
    assert (old.extraction.invoice_number, old.extraction.invoice_date, old.extraction.total) == (
        "471102",
        "2013-03-05",
        "235.62",
    )
    assert (old.extraction.vendor_name, old.extraction.tax, old.extraction.confidence("total")) == (
        "Lieferant GmbH",
        "37.62",
        1.0,
    )
    # what the XML lacks comes from the page, at the page's confidence
    page = extract_rules(["RECHNUNG 471102\nLieferant GmbH\nFällig am 19.03.2013\nGesamt 235,62 EUR"])
    merged = with_page_fields(old.extraction, page)
    assert merged.total == "235.62" and merged.confidence("total") == 1.0
    assert merged.due_date == page.due_date and merged.confidence("due_date") == page.confidence("due_date")
    odd = (data / "xrechnung-ubl.xml").read_bytes().replace(b'unitCode="HUR">10<', b'unitCode="HUR">ten<')
    assert read_einvoice(odd).extraction.line_items[0].quantity is None  # a value it cannot read: none, not a crash
    for xml, why in (
        (b"<a><b></a>", "not well-formed XML"),
        (b"<Invoice/>", "not an e-invoice: the root element is 'Invoice' in 'no namespace'"),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "not an e-invoice"),  # no entity read
    ):
        with pytest.raises(InvalidEInvoice, match=why):
            read_einvoice(xml)


def test_a_browsers_print_header_date_is_not_the_invoice_date_and_fixes_the_date_order() -> None:
    """Printed from a browser: the header's "23.06.23, 11:09" is when it was printed (not a candidate), and, a
    day over 12 coming first, says the page writes its dates day first: "11/5/23" is 11 May."""
    from reindex_pipeline.invoices.extractor import read_invoice

    page = (
        "23.06.23, 11:09                              Invoice | Acme Planner\n\n"
        "11/5/23\n\nInvoice ID #77ab12\n\n"
        "Managers                         2 @ $24.00          $48.00\n"
        "Subscription total:                                   $48.00\n\n"
        "https://app.example.com/invoices/77ab12                                  1/1"
    )
    assert read_invoice([page]).fields()["invoice_date"][0] == "2023-05-11"
    # without the print marks the header line is an ordinary line: its date is a candidate again
    plain = page.replace("https://app.example.com/invoices/77ab12", "").replace("1/1", "")
    from reindex_pipeline.invoices.candidates import date_candidates, read_page

    assert "2023-06-23" in {c.value for c in date_candidates(read_page([plain], "en"))}
    assert "2023-06-23" not in {c.value for c in date_candidates(read_page([page], "en"))}


def test_numeric_dates_read_in_the_order_of_the_unambiguous_ones() -> None:
    from reindex_pipeline.invoices.dates import month_first

    assert month_first("due 25/12/2023, issued 11/5/23", default=True) is False
    assert month_first("due 12/25/2023, issued 11/5/23", default=False) is True
    assert month_first("issued 11/5/23", default=True) is True  # nothing unambiguous: the default
    assert month_first("25/12/2023 and 12/25/2023", default=False) is False  # they disagree: the default


def test_the_shipped_currency_symbols_are_what_babel_gives() -> None:
    """The table in the package spares each new process babel's ~2.5 s over every locale; it is babel's
    own, and with another babel release the product computes it again instead of trusting the file."""
    import json

    import babel

    from reindex_pipeline.invoices import currencies

    stored = json.loads(currencies.SYMBOLS_FILE.read_text(encoding="utf-8"))
    computed = currencies.symbols_from_babel()
    assert {"RM", "zł", "Kč", "₹", "$"} <= set(computed)
    assert currencies.symbols() == computed
    if stored["babel"] == babel.__version__:
        assert {s: frozenset(codes) for s, codes in stored["symbols"].items()} == computed


def test_a_receipt_rounded_to_the_coin_stores_the_rounded_total() -> None:
    """The amount under a total label that the rounding adjustment makes is what was due (rule feature
    ``rounded_total``, weighted by the ranker); the one before the rounding is no candidate."""
    from reindex_pipeline.invoices.extractor import read_candidates, read_invoice

    receipt = (
        "KEDAI MAKAN SRI MURNI SDN BHD\nTAX INVOICE\nNASI LEMAK\n2 X\n12.00\n24.00\nSR\n"
        "TOTAL (EXCLUDING GST) :\n26.60\nGST PAYABLE:\n1.60\nTOTAL (INCLUSIVE OF GST) :\n28.22\n"
        "ROUNDING ADJ :\n-0.02\nTOTAL :\n28.20\nCASH :\n50.00\nCHANGE :\n21.80\n"
    )
    features = {c.value: c.features for c in read_candidates([receipt]).candidates["total"]}
    assert features["28.20"]["rounded_total"] == 1 and "28.22" not in features
    assert features["50.00"]["rounded_total"] == features["21.80"]["rounded_total"] == 0
    assert read_invoice([receipt]).values["total"][0] == "28.20"  # the ranker's choice, stored or not
    unsigned = {c.value: c.features for c in read_candidates([receipt.replace("-0.02", "0.02")]).candidates["total"]}
    assert unsigned["28.20"]["rounded_total"] == 1 and "28.22" not in unsigned  # printed unsigned
    # the rounded amount under a rounding word of its own: "ROUNDING ADJ 0.01 / ROUNDING 20.00"
    own = "SHOP\nOIL 5KG\n19.99\nTOTAL\n19.99\nROUNDING ADJ\n0.01\nROUNDING\n20.00\nCASH\n20.00\n"
    by_value = {c.value: c.features for c in read_candidates([own]).candidates["total"]}
    assert by_value["20.00"]["rounded_total"] == 1 and "19.99" not in by_value
    tender = read_candidates(["SHOP\nTOTAL\nRM1.38\nROUNDING\nRM0.02\nCASH\nRM1.40\n"]).candidates["total"]
    assert all(c.features["rounded_total"] == 0 for c in tender)  # a tender rounded is no total
    assert extract_rules([receipt]).total in (None, "28.20")


def test_a_page_that_names_no_currency_pays_in_its_countrys() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates

    unnamed = "KEDAI SRI MURNI SDN BHD\nNO 5 JALAN SS15, SUBANG JAYA\nNASI LEMAK 12.00\nTOTAL 12.00\n"
    features = {c.value: c.features for c in read_candidates([unnamed]).candidates["currency"]}
    assert features["MYR"]["country_unnamed"] == 1  # SDN BHD: a Malaysian company
    assert all(f["country_unnamed"] == 0 for code, f in features.items() if code != "MYR")
    priced = read_candidates([unnamed.replace("TOTAL", "TOTAL RM")])
    named = {c.value: c.features for c in priced.candidates["currency"]}
    assert named["MYR"]["country_unnamed"] == 0 and named["MYR"]["named"] > 0


def test_the_billed_partys_block_and_a_line_to_the_reader_are_no_issuer() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates

    text = (
        "BILLED TO:                              PRODUCT(S) PROVIDED BY:\n"
        "Felix Wolf\n"
        "SimFin Analytics GmbH\n"
        "Pfälzer Ufer 4                          Semrush Inc.\n"
        "Halle 06108                             www.semrush.com\n"
        "E-mail: f.wolf@simfin.com               mail@semrush.com\n"
        "YOUR ORDER NUMBER IS\n"
        "TOTAL AT CHECKOUT  119.95 USD\n"
    )
    reading = read_candidates([text])
    assert reading.customer is not None and "SimFin" in reading.customer.name
    issuers = {c.value: c.features for c in reading.candidates["vendor_name"]}
    assert not any("SimFin" in name for name in issuers)  # the customer's name, alone or held in a longer one
    assert all(f["courtesy"] == 1 for name, f in issuers.items() if name.startswith("YOUR"))


def test_the_name_above_a_street_address_is_an_issuer_candidate() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates

    text = (
        "Invoice ID #4hrb48vz\n\nSubscription total: $48.00\n\nPlease contact billing@example.com.\n\nAddress\n\n"
        "Northwind Traders\n1810 York Road\nSuite 317\nTimonium, MD 21093\n"
    )
    issuers = {c.value: c.features for c in read_candidates([text]).candidates["vendor_name"]}
    assert issuers["Northwind Traders"]["above_address"] == 1
    # (a street above its suite is flagged too: the ranker weighs the flag beside "address" and the rest)
    assert issuers["Timonium"]["above_address"] == issuers["Address"]["above_address"] == 0
    # a building's name over the address that names it again is part of the address
    receipt = (
        "TQ FOR SHOPPING WITH MYNEWS.COM\nPUSAT DAGANGAN PHILEO DAMANSARA\n"
        "UNIT 105, BLOCK A,PUSAT DAGANGAN PHILEO DAMANSARA,\nNO.9, JALAN 16/11,,46350,PETALING JAYA\nTOTAL 6.00\n"
    )
    for street, above in (
        ("UNIT 105, BLOCK A,PUSAT DAGANGAN PHILEO DAMANSARA,", 0),
        ("UNIT 105, BLOCK A, JALAN 2,", 1),
    ):
        page = receipt.replace("UNIT 105, BLOCK A,PUSAT DAGANGAN PHILEO DAMANSARA,", street)
        issuers = {c.value: c.features for c in read_candidates([page]).candidates["vendor_name"]}
        assert issuers["PUSAT DAGANGAN PHILEO DAMANSARA"]["above_address"] == above


def test_a_german_or_dutch_street_is_one_word_before_its_house_number() -> None:
    from reindex_pipeline.invoices.candidates import ADDRESS

    assert ADDRESS.search("Hofstraße 12, 10115 Berlin")
    assert ADDRESS.search("Keizersgracht 221")
    assert ADDRESS.search("Lindenallee 4a")
    # the same endings without a house number name a place or a company, not a street
    assert not ADDRESS.search("Norweg Shipping")
    assert not ADDRESS.search("Hauptstraße")


def test_a_courtesy_line_names_no_organisation_for_the_currency() -> None:
    """ "AT" is a legal form in Ukraine (cleanco): "THANK YOU FOR SHOPPING AT" is not a Ukrainian company."""
    from reindex_pipeline.invoices.candidates import organisation_names, read_page

    assert organisation_names(read_page(["SHOP\nTOTAL 12.00\nTHANK YOU FOR SHOPPING AT\n"], "en")) == []
    assert organisation_names(read_page(["Kunden AG\nTOTAL 12.00\n"], "de")) == ["Kunden AG"]


def test_a_name_broken_before_its_legal_form_names_its_country() -> None:
    """ "MPH BOOKSTORES" / "SDN BHD": a Malaysian company, so its ringgit beats the Ukrainian "AT" further down."""
    from reindex_pipeline.invoices.candidates import organisation_names, read_page

    page = read_page(["MPH BOOKSTORES\nSDN BHD\nGST NO: 000542572544\nTOTAL 31.45\n"], "en")
    assert "MPH BOOKSTORES SDN BHD" in organisation_names(page)
    assert organisation_names(read_page(["MPH BOOKSTORES\nTOTAL 31.45\n"], "en")) == []


def test_a_domain_that_names_a_role_is_no_evidence_of_a_name() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates

    def in_domain(text: str) -> dict[str, float]:
        found = read_candidates([text]).candidates["vendor_name"]
        return {c.value: c.features["in_domain"] for c in found}

    page = "Acme Seller Shop\n12 Harbour Road, Leeds\n{mail}\nInvoice No: 7\nTotal 10.00\n"
    assert in_domain(page.format(mail="contact@seller.com"))["Acme Seller Shop"] == 0.0  # a template's placeholder
    assert in_domain(page.format(mail="contact@acme.com"))["Acme Seller Shop"] == 1.0


def test_a_sentence_of_the_terms_is_no_issuer() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates

    sentence = (
        "Support covers technical service requests for implementation and configuration assistance of our products"
    )
    page = f"{sentence}\nAcme Widgets Ltd\n12 Harbour Road, Leeds\nTotal 10.00\n"
    names = [c.value for c in read_candidates([page]).candidates["vendor_name"]]
    assert "Acme Widgets Ltd" in names
    assert not any(len(name.split()) > 12 for name in names)


def test_a_country_or_state_alone_is_no_issuer() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates
    from reindex_pipeline.invoices.parties import place_names

    assert {"malaysia", "johor", "selangor", "deutschland", "niemcy", "bayern"} <= place_names()
    assert "guardian" not in place_names()
    page = "LIM SENG THO HARDWARE TRADING\nNO 7, JALAN IPOH\n51200 KUALA LUMPUR\nMALAYSIA\nTEL : 03-6258 7191\n"
    page += "TOTAL 7.00\n"
    names = [c.value for c in read_candidates([page]).candidates["vendor_name"]]
    assert "LIM SENG THO HARDWARE TRADING" in names
    assert "MALAYSIA" not in names


def test_a_name_followed_by_a_colon_is_a_label() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates

    page = "HASHA PETROKIOSK\nCOMPANY NO:\nLOT 198718 TMN SIERRA\n81750 MASAI JOHOR\nTOTAL RM 50.00\n"
    label = {c.value: c.features["label"] for c in read_candidates([page]).candidates["vendor_name"]}
    assert label["COMPANY NO"] == 1.0
    assert label["HASHA PETROKIOSK"] == 0.0


def test_a_legal_form_that_comes_first_in_its_country_ends_no_name() -> None:
    """PT (Indonesia), OOO (Russia), TOV and AT (Ukraine) stand before the name; at a line's end they are
    other words: "MANDATE PT", "THANK YOU FOR SHOPPING AT", "Total incl. VAT"."""
    from reindex_pipeline.invoices.parties import has_legal_form, organisation_in

    assert not has_legal_form("MANDATE PT")
    assert not has_legal_form("Total incl. VAT")
    assert organisation_in("MPH AT ONE UTAMA") is None
    assert has_legal_form("Atlassian Pty Ltd") and has_legal_form("Kraxi GmbH")
    assert organisation_in("Blue Sky Sdn Bhd, Lot 5") == "Blue Sky Sdn Bhd"


def test_a_customer_label_inside_a_phrase_names_no_customer() -> None:
    from reindex_pipeline.invoices.extractor import read_candidates

    def customer(text: str) -> str | None:
        found = read_candidates([text]).customer
        return found.name if found else None

    assert customer("SHOP\nTOTAL RM 50.00\nCUSTOMER COPY\nTHANK YOU\n") is None
    assert customer("SHOP\nCUSTOMER SERVICE HOTLINE : 03-2726-5600\nTOTAL 5.00\n") is None
    assert customer("Acme Ltd\nUSt-IdNr. Kunde:  US-TAXID-7890123\nTotal 5.00\n") is None
    assert customer("Acme Ltd\nCustomer ID\n16BQW0THJ6n0471Rd\nTotal 5.00\n") is None
    assert customer("Acme Ltd\nBill to\nBlue Yonder Airlines\n2 Harbour Road\nTotal 5.00\n") == "Blue Yonder Airlines"
    assert customer("Acme Ltd\nCLIENT :\nBuyer contact name\nLE CLIENT\n2 rue de la Paix\nTotal 5.00\n") == "LE CLIENT"
    assert customer("Acme Ltd\nAdresse du Client\nBlue Yonder Airlines\nTotal 5.00\n") == "Blue Yonder Airlines"
    # two columns read as one: the name once
    assert customer("Acme Ltd\nBill to\nSimFin Analytics GmbH SimFin Analytics GmbH\nTotal 5.00\n") == (
        "SimFin Analytics GmbH"
    )


def test_an_identifier_a_currency_a_legal_form_or_a_place_is_no_party() -> None:
    from reindex_pipeline.invoices.parties import plausible_party

    for junk in ("CUST-IE-001", "RM", "Company", "GmbH", "Germany", "SERVICE HOTLINE : 03-2726-5600"):
        assert not plausible_party(junk), junk
    for name in ("Prime Tech Solutions", "Paul Peter", "3M Deutschland GmbH", "Kraxi GmbH"):
        assert plausible_party(name), name


def test_a_letters_addressee_is_the_line_under_its_sender_line() -> None:
    """DIN 5008: the sender's name, street and town on one line over the address window, the addressee's
    name first under it; no label says "customer"."""
    from reindex_pipeline.invoices.extractor import read_candidates

    page = (
        "    Global Goods Inc. · 789 Commerce Street · M1 1AA Manchester\n"
        "    Prime Tech Solutions                 Rechnungsnummer:  INV-2023-EASY-001\n"
        "    10 Tech Park Avenue                  Rechnungsdatum:   1. Oktober 2023\n"
        "    D02 XA00 Dublin\n\n    Rechnung\n    Gesamtbetrag Brutto      160,65 €\n"
    )
    reading = read_candidates([page])
    assert reading.customer is not None and reading.customer.name == "Prime Tech Solutions"
    # a line of parts without a street or a postcode is no sender line
    assert read_candidates(["Home · Pricing · Blog\nPrime Tech Solutions\nTotal 5.00\n"]).customer is None
    # parties named after their roles: the sender "Seller Company" is a name, so its addressee is the customer
    # and no issuer candidate
    template = page.replace("Global Goods Inc.", "Seller Company").replace("Prime Tech Solutions", "Buyer Company")
    reading = read_candidates([template])
    assert reading.customer is not None and reading.customer.name == "Buyer Company"
    names = {c.value for c in reading.candidates["vendor_name"]}
    assert "Seller Company" in names and "Buyer Company" not in names
    # OCR reads the dots as a colon and dashes; a label's colon ("TEL : 03 - 7781 8333") makes no sender line
    scanned = template.replace("Company · 789 Commerce Street ·", "Company : 789 Commerce Street -")
    assert scanned != template
    reading = read_candidates([scanned])
    assert reading.customer is not None and reading.customer.name == "Buyer Company"
    features = {c.value: c.features for c in reading.candidates["vendor_name"]}
    assert features["Seller Company"]["label"] == 0 and "Buyer Company" not in features
    assert read_candidates(["SHOP\nTEL : 03 - 7781 8333 - 51200 KL\nAHMAD BIN ALI\nTotal 5.00\n"]).customer is None


def test_dates_year_first_with_slashes_and_month_words_between_hyphens() -> None:
    from datetime import date

    from reindex_pipeline.invoices.dates import find_dates

    def read(text: str) -> list[date]:
        return [d.value for d in find_dates(text, ("en",))]

    assert read("DATE: 2016/05/01 14:11:20") == [date(2016, 5, 1)]
    assert read("2023.04.23") == [date(2023, 4, 23)]
    assert read("05-AUG-2017") == [date(2017, 8, 5)]
    assert read("01-NOV-2017 11:20:04AM R05934") == [date(2017, 11, 1)]
    assert read("30 DEC 17") == [date(2017, 12, 30)]
    # a count of things is no date; the separators of one date are the same
    assert read("10 NOS 12") == [] and read("2 PCS 2017") == [] and read("2016/05-01") == []


def test_labels_and_keywords_match_without_their_accents() -> None:
    """French capitals are often set without accents: "NET A PAYER" is "net à payer", a total label and a
    word of what is due, not a net amount."""
    from reindex_pipeline.invoices.extractor import read_candidates
    from reindex_pipeline.invoices.matching import accent_tolerant, find_labels, unaccented
    from reindex_pipeline.invoices.text import document_lines

    assert unaccented("NET À PAYER, Échéance, zł") == "NET A PAYER, Echeance, zł"
    assert accent_tolerant("à payer") == "[àa] payer"
    hits = find_labels(document_lines(["NET A PAYER 104,90 EUR\nDATE D'ECHEANCE : 02/03/2026"]))
    assert {(h.field, h.label) for h in hits} >= {("total", "net a payer"), ("due_date", "date d'echeance")}
    page = "FACTURE N° F1\nTOTAL HT 100,00\nTVA 4,90\nNET A PAYER 104,90 EUR\n"
    features = {c.value: c.features for c in read_candidates([page]).candidates["total"]}
    assert features["104.90"]["label_strong"] == 1 and features["104.90"]["gross_word"] == 1
    assert features["104.90"]["net_word"] == 0 and features["104.90"]["net_due_word"] == 1
    assert features["100.00"]["net_word"] == 1


def test_the_amount_due_after_a_prepayment_is_no_total_candidate() -> None:
    """EN 16931's paid amount: "TOTAL TTC 110,00 / Acompte : 10,00 / NET A PAYER 100,00" leaves 110,00 the
    total; a prepayment of nothing, or an amount that is not the total less it, changes nothing."""
    from reindex_pipeline.invoices.extractor import read_candidates

    page = "TOTAL HT 100,00\nTOTAL TTC 110,00\nAcompte : 10,00\nNET A PAYER 100,00 EUR\n"
    lines = [(c.value, c.features["label_strong"]) for c in read_candidates([page]).candidates["total"]]
    assert ("110.00", 1.0) in lines and ("100.00", 1.0) not in lines  # the net 100,00 stays, unlabelled as total
    nothing = "TOTAL TTC 110,00\nMontant déjà payé : 0,00\nNET A PAYER 110,00 EUR\n"
    assert sum(c.value == "110.00" for c in read_candidates([nothing]).candidates["total"]) == 2
    other = "TOTAL TTC 110,00\nAnzahlung : 10,00\nSumme 50,00\n"
    assert "50.00" in {c.value for c in read_candidates([other]).candidates["total"]}


def test_a_date_is_no_amount_and_a_line_total_is_net() -> None:
    from reindex_pipeline.invoices.amounts import find_money
    from reindex_pipeline.invoices.extractor import read_candidates

    assert find_money("Belegdatum 18.02.2025") == ()
    assert [m.text for m in find_money("Datum: 01.03.2024 Summe 9,90")] == ["9.90"]
    page = "Line Total Amount €1,000.00\nAllowance: Discount - €10.00\nGross Total Amount €990.00\n"
    features = {c.value: c.features for c in read_candidates([page]).candidates["total"]}
    assert features["1000.00"]["net_word"] == 1 and features["990.00"]["net_word"] == 0


def test_a_currency_alone_between_a_label_and_its_value_is_skipped() -> None:
    """A receipt's "TOTAL INCL. GST 6.00%" / "RM" / "47.70": the total label is the value's, and a total that
    names its tax rate is still a labelled total (a rate's own line, "GST 6% 0.42", is not)."""
    from reindex_pipeline.invoices.extractor import read_candidates

    receipt = "SHOP\nSUBTOTAL RM\n47.70\nGST 6%\n2.70\nTOTAL INCL. GST 6.00%\nRM\n47.70\nVISA\nRM\n47.70\n"
    rows = [c.features for c in read_candidates([receipt]).candidates["total"] if c.value == "47.70"]
    assert any(f["label_above"] == 1 and f["last_labelled"] == 1 for f in rows)
    rate = {c.value: c.features for c in read_candidates([receipt]).candidates["total"]}["2.70"]
    assert rate["last_labelled"] == 0 and rate["largest_labelled"] == 0


def test_a_browsers_print_header_names_the_page_title_as_an_issuer_candidate() -> None:
    """A page printed from a browser carries its title in the header ("Invoice | TeamGantt"): every part of it
    is an issuer candidate, the vendor's name beside the document's title; elsewhere only a line's first two
    segments are."""
    from reindex_pipeline.invoices.extractor import read_candidates

    body = "\n\n 11/5/23\n\n SimFin\n\n Invoice ID #4hrb48vz\n Total                 $48.00\n\n"
    body += " Please contact billing@teamgantt.com.\n\nhttps://app.teamgantt.com/invoices/4hrb48vz          1/1\n"
    printed = "23.06.23, 11:09                                         Invoice   TeamGantt" + body
    names = {c.value: c.features for c in read_candidates([printed]).candidates["vendor_name"]}
    assert names["TeamGantt"]["in_domain"] == 1 and names["TeamGantt"]["first_line"] == 1
    unprinted = "Order 12      Invoice      TeamGantt" + body.split("\nhttps://")[0]  # no URL, no page counter
    assert "TeamGantt" not in {c.value for c in read_candidates([unprinted]).candidates["vendor_name"]}


def test_a_street_and_its_number_is_no_organisation() -> None:
    """ "BM" is an Israeli legal form in cleanco's list: an address line ending in it is still an address."""
    from reindex_pipeline.invoices.parties import organisation_in

    assert organisation_in("NO 2, JALAN BULAN BM U5/BM, SEKSYEN U5,") is None
    assert organisation_in("MEI LET RESTAURANT SDN BHD") == "MEI LET RESTAURANT SDN BHD"
    assert organisation_in("Abbey Road Studios Ltd") == "Abbey Road Studios Ltd"  # a street word, no number


def test_a_role_word_before_a_legal_form_is_a_name_not_a_label() -> None:
    """Templates name their parties after their roles ("Seller Company", "Lieferant GmbH & Co. KG"): a legal
    form is never a label's value, so the role word and the legal form together are the name."""
    from reindex_pipeline.invoices.parties import opens_with_label, organisation_in, plausible_party, role_named

    assert role_named("Seller Company") and role_named("Lieferant GmbH & Co. KG") and role_named("Supplier Ltd.")
    assert not role_named("Seller") and not role_named("Invoice Date Sep 13") and not role_named("Kunden AG Mitte")
    assert not opens_with_label("Seller Company") and opens_with_label("Seller: ACME GmbH")
    assert organisation_in("Seller Company · 123 Seller St · 12345 Seller City") == "Seller Company"
    assert plausible_party("Buyer Company") and not plausible_party("Buyer")


def test_the_name_above_a_phone_line_is_not_above_an_address() -> None:
    """A party's name is the line above its street; the line above a phone number is the address's last line
    ("SELANGOR DARUL EHSAN" / "TEL : 012-2060 778"), not a name over its address."""
    from reindex_pipeline.invoices.extractor import read_candidates

    receipt = (
        "B & BEST RESTAURANT\n(001610235-P)\nNO.12,JALAN SS4C/5,PETALING JAYA\nSELANGOR DARUL EHSAN\n"
        "TEL : 012-2060 778\nTOTAL\n7.40\n"
    )
    features = {c.value: c.features for c in read_candidates([receipt]).candidates["vendor_name"]}
    assert features["SELANGOR DARUL EHSAN"]["above_address"] == 0
    assert features["B & BEST RESTAURANT"]["first_line"] == 1


def test_a_shops_social_page_names_it_as_its_domain_would() -> None:
    """A receipt's "HTTPS://M.FACEBOOK.COM/B-BEST-RESTAURANT" is the shop's web address: the name it spells
    is in the page's domains, as "info@cronus.com" is; the network's own name is none."""
    from reindex_pipeline.invoices.extractor import read_candidates

    receipt = "B & BEST RESTAURANT\nNO.12,JALAN SS4C/5\nTOTAL 7.40\nHTTPS://M.FACEBOOK.COM/B-BEST-RESTAURANT\n"
    features = {c.value: c.features for c in read_candidates([receipt]).candidates["vendor_name"]}
    assert features["B & BEST RESTAURANT"]["in_domain"] == 1
    plain = receipt.replace("HTTPS://M.FACEBOOK.COM/B-BEST-RESTAURANT", "FOLLOW US ON FACEBOOK")
    assert {c.value: c.features for c in read_candidates([plain]).candidates["vendor_name"]}["B & BEST RESTAURANT"][
        "in_domain"
    ] == 0


def test_a_registration_number_glued_to_a_name_ends_it() -> None:
    """ "MYNEWS RETAIL SB(306295-X) FKA BISON STORES SB": the name ends where its bracketed number starts; a
    bracket of words stays part of a name."""
    from reindex_pipeline.invoices.candidates import _CUT

    assert _CUT.split("MYNEWS RETAIL SB(306295-X) FKA BISON STORES SB")[0] == "MYNEWS RETAIL SB"
    assert _CUT.split("AIK HUAT HARDWARE(SETIA ALAM)")[0] == "AIK HUAT HARDWARE(SETIA ALAM)"


def test_country_names_are_found_whole_and_capitalised() -> None:
    """Only the names whose first word is on the page are tried; the longest name wins where two overlap
    ("Guinea-Bissau", not "Guinea"), and a lower-case word is no country ("chad")."""
    from reindex_pipeline.invoices.currencies import countries_in

    assert countries_in("Bissau, Guinea-Bissau") == {"GW": 2}
    assert countries_in("Conakry, Guinea") == {"GN": 2}
    assert countries_in("ask chad at Malaysia Airlines") == {"MY": 2}
    assert countries_in("no country here") == {}
