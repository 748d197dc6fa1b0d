"""End to end on real invoices: each PDF of the development set dropped into the restores bucket becomes an
indexed document with the fields the extractor is sure of stored right, found by a search naming its issuer,
its stored vendor in the graph."""

from __future__ import annotations

import json
import os

import psycopg
import pytest
from qdrant_client import models

from reindex_pipeline.embeddings import LocalEmbedder
from reindex_pipeline.graph.store import FalkorGraph
from reindex_pipeline.invoices.evaluation import FIELDS, matches
from reindex_pipeline.resources import QdrantStore
from reindex_pipeline.vectors import collection_name, search
from reindex_pipeline_tests.test_invoices import DATASET
from reindex_pipeline_tests.test_restores import Restores, key, r  # noqa: F401 (the `r` fixture)

pytestmark = pytest.mark.skipif(not (DATASET / "expected.json").exists(), reason=f"no real-invoice set at {DATASET}")

#: PDFs of the set whose text layer maps no glyph to a character: read by OCR, like a scan.
NEEDS_OCR = {"Invoice _ TeamGantt-May.pdf"}

VENDOR_ISSUED = """
MATCH (v:Entity)-[r:ISSUED]->(i:Entity)
WHERE r.document_id = $document_id
RETURN v.name AS vendor, i.key AS invoice
"""


def test_real_invoices_restored_from_the_bucket_are_extracted_searchable_and_in_the_graph(r: Restores) -> None:  # noqa: F811
    answers = {a["file"]: a for a in json.loads((DATASET / "expected.json").read_text())}
    for name in answers:
        r.put(key(name), (DATASET / name).read_bytes())
    r.tick()
    objects = {stored.rsplit("__", 1)[1]: (status, error, doc) for stored, status, error, doc in r.objects()}
    assert set(objects) == set(answers)
    documents = {name: doc for name, (status, _, doc) in objects.items() if status == "ingested"}
    assert set(documents) == set(answers), objects  # every one, the scan included
    with psycopg.connect(r.q.url) as conn:
        ocr = dict(conn.execute("SELECT document_id::text, ocr_pages FROM restore_objects").fetchall())
    assert {name for name, doc in documents.items() if ocr[doc]} == NEEDS_OCR

    runs = r.q.tick()
    assert runs and all(r.q.execute(run).success for run in runs)
    r.q.follow()

    with psycopg.connect(r.q.url) as conn:
        statuses = dict(
            conn.execute(
                "SELECT id::text, index_status FROM documents WHERE id = ANY(%s::uuid[])", (list(documents.values()),)
            )
        )
        rows = conn.execute(
            "SELECT document_id::text, field_name, field_value FROM documents_data WHERE document_id = ANY(%s::uuid[])",
            (list(documents.values()),),
        ).fetchall()
    assert set(statuses.values()) == {"indexed"}, statuses
    fields: dict[str, dict[str, str]] = {}
    for document_id, field_name, value in rows:
        fields.setdefault(document_id, {})[field_name] = value
    stored = [
        (name, answer_key, answers[name][answer_key], fields[doc][field_name])
        for name, doc in documents.items()
        for answer_key, field_name in FIELDS.items()
        if answer_key in answers[name] and fields.get(doc, {}).get(field_name) is not None
    ]
    # the extractor stores what it is sure of (every date, currency and total of the 15 invoices but a few,
    # some issuers) and what it stores is right
    wrong = [row for row in stored if not matches(row[1], row[2], row[3])]
    assert wrong == [], wrong
    per_field = {key: sum(row[1] == key for row in stored) for key in ("total", "date", "currency")}
    assert all(n >= 13 for n in per_field.values()), per_field
    scan = fields[documents["Invoice _ TeamGantt-May.pdf"]]
    # its date is the page's 11/5/23 (day first, as its print header's 23.06.23), not the print header's
    assert (scan.get("total"), scan.get("currency"), scan.get("invoice_date")) == ("48.00", "USD", "2023-05-11")
    assert scan.get("vendor_name") == "TeamGantt"  # its print header's page title (the OCR reads "TeamGanit" below)

    client = QdrantStore(path=os.environ["QDRANT_PATH"]).client()
    collection = collection_name(r.q.collection, "all-MiniLM-L6-v2")
    embedder = LocalEmbedder()
    misses = []
    for name, doc in documents.items():
        issuer = answers[name]["issuer"]
        top = search(client, collection, embedder.embed([issuer])[0], issuer, limit=1)[0]
        if top.payload["document_id"] != doc:
            misses.append((name, answers[name]["issuer"], top.payload["document_id"]))
    assert misses == []
    own = client.count(
        collection,
        count_filter=models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchAny(any=list(documents.values())))]
        ),
    ).count
    assert own >= len(documents)

    graph = FalkorGraph(os.environ["FALKORDB_HOST"], int(os.environ["FALKORDB_PORT"]), graph=r.q.graph)
    try:
        unlinked = []
        for name, doc in documents.items():
            if fields.get(doc, {}).get("vendor_name") is None:
                continue  # no issuer stored: none in the graph either
            issued = graph.run(VENDOR_ISSUED, {"document_id": doc})
            if not any(matches("issuer", answers[name]["issuer"], row["vendor"]) for row in issued):
                unlinked.append((name, issued))
        assert unlinked == []
    finally:
        graph.close()
