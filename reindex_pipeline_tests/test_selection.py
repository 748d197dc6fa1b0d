"""Pure reindex logic: eligibility and RBAC, the confirmation wording, graph building, point ids."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from reindex_pipeline.domain.extraction import Extraction, LineItem
from reindex_pipeline.domain.selection import (
    DocumentRow,
    Requester,
    RequesterRefused,
    check_requester,
    select_documents,
    summarise_selection,
)
from reindex_pipeline.graph.builder import ChunkText, build_document_graph, from_extraction
from reindex_pipeline.lexical import document_terms, query_terms, term_index
from reindex_pipeline.vectors import point_id

ADMIN = Requester("a", "admin", "active", "admin")
BOB = Requester("b", "user", "active", "bob")


def doc(
    id: str,
    owner: str | None = "b",
    ws: str = "w1",
    convert: str = "converted",
    index: str = "indexed",
    deleted: bool = False,
    run: str | None = None,
) -> DocumentRow:
    return DocumentRow(
        id, ws, owner, f"{id}.pdf", convert, index, datetime(2026, 1, 1, tzinfo=UTC) if deleted else None, run
    )


DOCS = [
    doc("mine"),
    doc("theirs", owner="c"),
    doc("unowned", owner=None),
    doc("other-ws", ws="w2"),
    doc("deleted", deleted=True),
    doc("pending", convert="pending"),
    doc("indexing", index="indexing"),
    doc("failed", index="failed"),
]


def test_a_requester_never_reaches_another_organisations_documents_and_the_operator_spans_them() -> None:
    ours, theirs = doc("ours")._replace(org_id="org-a"), doc("theirs", owner="b")._replace(org_id="org-b")
    for requester in (replace(ADMIN, org_id="org-a"), replace(BOB, org_id="org-a")):
        selection = select_documents(requester, [ours, theirs])
        assert selection.eligible_ids == ["ours"] and selection.skipped_by_reason() == {"other_organisation": 1}
    operator = replace(ADMIN, org_id=None)  # resolve_requester gives the deployment's operator no organisation
    assert select_documents(operator, [ours, theirs]).eligible_ids == ["ours", "theirs"]


def test_admin_gets_every_eligible_document_in_the_workspace() -> None:
    selection = select_documents(ADMIN, DOCS, workspace_id="w1")
    assert selection.eligible_ids == ["mine", "theirs", "unowned"]
    assert {s.id: s.reason for s in selection.skipped} == {
        "other-ws": "not_in_workspace",
        "deleted": "deleted",
        "pending": "not_converted",
        "indexing": "not_fully_indexed",
        "failed": "not_fully_indexed",
    }


def test_user_gets_only_owned_documents_and_never_unowned_ones() -> None:
    selection = select_documents(BOB, DOCS)
    assert selection.eligible_ids == ["mine", "other-ws"]
    reasons = {s.id: s.reason for s in selection.skipped}
    assert reasons["theirs"] == "not_owner" and reasons["unowned"] == "not_owner"
    assert selection.skipped_by_reason()["not_owner"] == 2


def test_a_run_may_resume_its_own_indexing_documents_only() -> None:
    mine = doc("x", index="indexing", run="run-1")
    assert select_documents(ADMIN, [mine], run_id="run-1").eligible_ids == ["x"]
    assert select_documents(ADMIN, [mine], run_id="run-2").eligible_ids == []


def test_requested_ids_that_do_not_exist_are_reported() -> None:
    selection = select_documents(ADMIN, [doc("mine")], requested_ids=["mine", "ghost"])
    assert [(s.id, s.reason) for s in selection.skipped] == [("ghost", "not_found")]


def test_a_summary_counts_what_the_selection_decides_and_keeps_only_the_first_few_per_reason() -> None:
    many = DOCS + [doc(f"late-{i}", index="failed") for i in range(50)]
    for requester, workspace in ((ADMIN, "w1"), (BOB, None)):
        full = select_documents(requester, many, workspace_id=workspace)
        eligible, skipped = [], []
        summary = summarise_selection(
            requester, iter(many), workspace, keep=2, on_eligible=eligible.append, on_skipped=skipped.append
        )
        assert summary.eligible == len(full.eligible) and summary.skipped_by_reason == full.skipped_by_reason()
        assert summary.confirmation() == full.confirmation()
        assert eligible == full.eligible and skipped == full.skipped  # every document reaches the callbacks
        for reason, kept in summary.examples.items():  # the first two of each reason, in the stream's order
            assert kept == [s for s in full.skipped if s.reason == reason][:2]
    ghost = summarise_selection(ADMIN, [doc("mine")], requested_ids=["mine", "ghost"])
    assert ghost.eligible == 1 and ghost.skipped_by_reason == {"not_found": 1}
    assert [s.id for s in ghost.examples["not_found"]] == ["ghost"]


@pytest.mark.parametrize("status", ["inactive", "suspended"])
def test_inactive_suspended_and_unknown_requesters_are_refused(status: str) -> None:
    with pytest.raises(RequesterRefused, match=status):
        check_requester(Requester("e", "user", status, "erin"), "e")
    with pytest.raises(RequesterRefused, match="not a known user"):
        check_requester(None, "nobody")
    assert check_requester(BOB, "b") is BOB


def test_confirmation_wording_follows_seed_003() -> None:
    assert select_documents(ADMIN, DOCS, "w1").confirmation() == (
        "This will re-run data extraction and indexing for ALL 3 documents in this workspace."
    )
    assert select_documents(BOB, DOCS).confirmation() == (
        "This will re-run data extraction and indexing for 2 documents that you own across all workspaces."
    )
    assert select_documents(BOB, []).confirmation() == "No fully indexed documents to reindex"
    assert ADMIN.scope == "all_documents" and BOB.scope == "owned_documents"


def test_graph_from_extracted_fields() -> None:
    extraction = Extraction(
        document_type="invoice",
        invoice_number="INV-7",
        vendor_name="Acme GmbH",
        customer_name="Coho Winery",
        currency="EUR",
        line_items=[LineItem(line=1, description="Desk lamp"), LineItem(line=2, description="Desk lamp")],
    )
    chunks = [ChunkText(0, "INVOICE INV-7 from Acme GmbH", "h0"), ChunkText(1, "Desk lamp 2 x 44.00 EUR", "h1")]
    graph = build_document_graph("d1", "p1", chunks, *from_extraction(extraction))
    assert [c["id"] for c in graph.chunks] == ["d1:0:p1", "d1:1:p1"]
    mentions = {(m["chunk_id"], m["key"]) for m in graph.mentions}
    assert ("d1:0:p1", "invoice:acme inv-7") in mentions and ("d1:1:p1", "product:desk lamp") in mentions
    assert ("d1:0:p1", "organization:coho winery") in mentions  # named nowhere: hangs off the first chunk
    # the invoice is keyed by its issuer and number: another issuer's INV-7 is another invoice
    assert graph.relations["ISSUED"] == [{"source": "organization:acme", "target": "invoice:acme inv-7"}]
    assert graph.relations["INCLUDES"] == [{"source": "invoice:acme inv-7", "target": "product:desk lamp"}]


def test_graph_has_no_label_or_address_as_party_and_no_tax_row_as_product() -> None:
    extraction = Extraction(
        document_type="invoice",
        invoice_number="1001",
        vendor_name="Fremont CA 94538",
        customer_name="Ship To",
        line_items=[
            LineItem(line=1, description="Consulting"),
            LineItem(line=2, description="BTW 21%"),
            LineItem(line=3, description="Exclusief BTW"),
        ],
    )
    entities, relations = from_extraction(extraction, "d1", "a.pdf")
    assert {e.type for e in entities} == {"invoice", "product"}
    assert [e.name for e in entities if e.type == "product"] == ["Consulting"]
    assert next(e for e in entities if e.type == "invoice").key == "invoice:1001"  # no issuer: the number alone
    assert {r for r, _, _ in relations} == {"INCLUDES"}


def test_graph_holds_dates_and_amounts_and_an_invoice_without_a_number() -> None:
    extraction = Extraction(
        document_type="invoice",
        vendor_name="Acme GmbH",
        invoice_date="2024-03-01",
        due_date="2024-03-31",
        currency="EUR",
        subtotal="100.00",
        tax="19.00",
        total="119.00",
    )
    entities, relations = from_extraction(extraction, "d1", "scan 7.pdf")
    invoice = next(e for e in entities if e.type == "invoice")
    # no number: keyed by its document, and the name says the number is missing
    assert (invoice.key, invoice.name) == ("invoice:document d1", "scan 7.pdf (no invoice number found)")
    facts = {(rel, target.key) for rel, source, target in relations if source == invoice}
    assert facts == {
        ("DATED", "date:2024-03-01"),
        ("DUE_ON", "date:2024-03-31"),
        ("PAID_IN", "currency:eur"),
        ("HAS_SUBTOTAL", "amount:100.00 eur"),
        ("HAS_TAX", "amount:19.00 eur"),
        ("HAS_TOTAL", "amount:119.00 eur"),
    }
    assert ("ISSUED", "organization:acme", invoice.key) in {(r, s.key, t.key) for r, s, t in relations}
    # the same sum in another currency is another entity; a numbered document is an invoice keyed by its number
    other, _ = from_extraction(Extraction(invoice_number="A-1", total="119.00", currency="USD"), "d2", "b.pdf")
    assert {e.key for e in other} >= {"amount:119.00 usd", "invoice:a-1"}
    assert not any(e.key.startswith("invoice:document") for e in other)


def test_lexical_terms_are_stable_case_and_width_insensitive_and_weigh_repeats() -> None:
    indices, values = document_terms("SwissDev invoice: SWISSDEV, ｓｗｉｓｓｄｅｖ; Łódź 2023-09-27")
    weights = dict(zip(indices, values, strict=True))
    assert weights[term_index("swissdev")] == pytest.approx(1 + math.log(3))  # three spellings, one term
    assert weights[term_index("łódź")] == 1.0 and term_index("2023") in weights
    assert term_index("swissdev") == 1745044567  # crc32: the same in every process and release
    assert query_terms("SwissDev swissdev invoice") == (
        sorted([term_index("swissdev"), term_index("invoice")]),
        [1.0, 1.0],
    )


def test_point_ids_are_deterministic_per_document_chunk_model_and_slot() -> None:
    assert point_id("d", 0, "m", 0) == point_id("d", 0, "m", 0)
    ids = {
        point_id("d", 0, "m", 0),
        point_id("d", 1, "m", 0),
        point_id("d", 0, "m2", 0),
        point_id("d", 0, "m", 1),
        point_id("e", 0, "m", 0),
    }
    assert len(ids) == 5
