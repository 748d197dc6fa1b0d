"""Graph statements on the embedded FalkorDB: exact round-trips, idempotent schema, nothing else touched."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from reindex_pipeline.graph import queries, writer
from reindex_pipeline.graph.keys import entity_key
from reindex_pipeline.graph.store import FalkorGraph

NASTY = "He said \"hi\" 'there'\\n and \\\\ })-[:X]->(n) // MATCH (n) DETACH DELETE n;\nline2\r\n\t$param {x}` "


@pytest.fixture()
def graph(stack_state) -> Iterator[FalkorGraph]:
    store = FalkorGraph(os.environ["FALKORDB_HOST"], int(os.environ["FALKORDB_PORT"]), graph=f"t_{uuid.uuid4().hex}")
    store.ensure_schema()
    try:
        yield store
    finally:
        store.delete_all()
        store.close()


def _write_document(graph: FalkorGraph, document_id: str, text: str, pass_id: str, live: bool = True) -> None:
    """One pass of a document (two chunks, a vendor and EUR, PAID_IN); ``live``: also set as its current pass."""
    graph.run(queries.ENSURE_DOCUMENT, {"document_id": document_id})
    graph.run(
        queries.UPSERT_CHUNKS,
        {
            "document_id": document_id,
            "pass_id": pass_id,
            "chunks": [
                {"id": f"{document_id}:0:{pass_id}", "chunk_index": 0, "text": text, "content_sha256": "h0"},
                {"id": f"{document_id}:1:{pass_id}", "chunk_index": 1, "text": "plain", "content_sha256": "h1"},
            ],
        },
    )
    graph.run(
        queries.UPSERT_MENTIONS,
        {
            "pass_id": pass_id,
            "mentions": [
                {
                    "chunk_id": f"{document_id}:0:{pass_id}",
                    "key": entity_key("vendor", text),
                    "name": text,
                    "type": "vendor",
                },
                {"chunk_id": f"{document_id}:1:{pass_id}", "key": "currency:EUR", "name": "EUR", "type": "currency"},
            ],
        },
    )
    graph.run(
        queries.UPSERT_RELATION["PAID_IN"],
        {
            "document_id": document_id,
            "pass_id": pass_id,
            "relations": [
                {"source": entity_key("vendor", text), "target": "currency:EUR"},
            ],
        },
    )
    if live:
        properties = {"filename": text, "workspace_id": "w1"}
        graph.run(
            queries.SET_DOCUMENT_PROPERTIES,
            {"document_id": document_id, "pass_id": pass_id, "properties": properties, "relation_types": ["PAID_IN"]},
        )


def _belongs_to_doc1(row: dict) -> bool:
    props = row["properties"]
    return (
        props.get("id") in ("doc-1", "doc-1:0:p1", "doc-1:1:p1")
        or props.get("document_id") == "doc-1"
        or props.get("key") == entity_key("vendor", NASTY)
    )


def test_parameters_with_metacharacters_round_trip_exactly(graph: FalkorGraph) -> None:
    _write_document(graph, "other", "untouched", "p0")
    before = sorted(map(repr, graph.run(queries.GRAPH_SNAPSHOT)))

    _write_document(graph, "doc-1", NASTY, "p1")

    assert graph.run(queries.GET_DOCUMENT, {"document_id": "doc-1"})[0]["properties"]["filename"] == NASTY
    chunks = graph.run(queries.GET_CHUNKS, {"document_id": "doc-1"})
    assert [c["text"] for c in chunks] == [NASTY, "plain"]
    entity = graph.run("MATCH (e:Entity {key: $key}) RETURN e.name AS name", {"key": entity_key("vendor", NASTY)})
    assert entity == [{"name": NASTY}]
    # Everything that is not doc-1's own slice is exactly as before: the text never ran as Cypher.
    after = sorted(repr(row) for row in graph.run(queries.GRAPH_SNAPSHOT) if not _belongs_to_doc1(row))
    assert after == before
    assert graph.run(queries.COUNT_DOCUMENT_GRAPH, {"document_id": "other"}) == [{"chunks": 2, "mentions": 2}]


def test_rewriting_a_document_is_idempotent_and_stale_parts_go(graph: FalkorGraph) -> None:
    _write_document(graph, "other", "kept", "p0")  # mentions EUR too, and a vendor of its own
    _write_document(graph, "doc-1", "v1", "p1")
    _write_document(graph, "doc-1", "v2", "p2")
    writer.commit_pass(graph, "doc-1", "p2", {"filename": "v2"})
    assert graph.run(queries.COUNT_DOCUMENT_GRAPH, {"document_id": "doc-1"}) == [{"chunks": 2, "mentions": 2}]
    names = {r["name"] for r in graph.run("MATCH (e:Entity) RETURN e.name AS name")}
    assert names == {"v2", "EUR", "kept"}  # v1 was only doc-1's: gone; EUR is still mentioned
    rels = graph.run("MATCH (:Entity)-[r:PAID_IN]->(:Entity) RETURN r.document_id AS d, r.pass_id AS p ORDER BY d")
    assert rels == [{"d": "doc-1", "p": "p2"}, {"d": "other", "p": "p0"}]


def test_commit_cleans_the_relation_types_the_previous_pass_wrote(graph: FalkorGraph) -> None:
    """Stale relations are looked for per type, and only among the types the previous pass recorded and the
    new one wrote: a type the document stopped stating goes, a type it never stated costs no statement."""
    _write_document(graph, "doc-1", "v1", "p1")
    params = {
        "document_id": "doc-1",
        "pass_id": "p1",
        "relations": [{"source": "currency:EUR", "target": "currency:EUR"}],
    }
    graph.run(queries.UPSERT_RELATION["HAS_TAX"], params)
    writer.commit_pass(graph, "doc-1", "p1", {"filename": "v1"}, ["HAS_TAX", "PAID_IN"])
    _write_document(graph, "doc-1", "v1", "p2", live=False)  # the new pass states PAID_IN only
    asked: list[str] = []
    real_run = graph.run
    graph.run = lambda statement, params=None: asked.append(statement) or real_run(statement, params)
    writer.commit_pass(graph, "doc-1", "p2", {"filename": "v1"}, ["PAID_IN"])
    stale = sorted(t for t, statement in queries.DELETE_STALE_RELATIONS.items() if statement in asked)
    assert stale == ["HAS_TAX", "PAID_IN"]
    relations = writer.document_slice(graph, "doc-1")["relations"]
    assert [(r["type"], r["pass_id"]) for r in relations] == [("PAID_IN", "p2")]


def test_an_unchanged_rewrite_asks_no_orphan_question_a_failed_pass_cleans_its_own(graph: FalkorGraph) -> None:
    """Orphan checks read an entity's incoming mentions (a hub's cost grows with the graph), so they are
    asked only about entities the document stopped mentioning: none when its entities are unchanged."""
    _write_document(graph, "doc-1", "same", "p1")
    _write_document(graph, "doc-1", "same", "p2")
    asked: list[dict] = []
    real_run = graph.run
    graph.run = lambda statement, params=None: (
        (asked.append(params) if statement == queries.DELETE_ORPHANS_AMONG else None) or real_run(statement, params)
    )
    writer.commit_pass(graph, "doc-1", "p2", {"filename": "same"})
    assert asked == []
    _write_document(graph, "doc-1", "new vendor", "p3")
    writer.drop_pass(graph, "doc-1", "p3")  # a failed pass: its own new entity goes, the live ones stay
    assert asked == [{"keys": [entity_key("vendor", "new vendor")]}]
    names = {r["name"] for r in real_run("MATCH (e:Entity) RETURN e.name AS name")}
    assert names == {"same", "EUR"}
    assert real_run(queries.COUNT_DOCUMENT_GRAPH, {"document_id": "doc-1"}) == [{"chunks": 2, "mentions": 2}]


def test_a_batch_of_documents_is_cleaned_with_one_statement_per_kind(graph: FalkorGraph) -> None:
    """FalkorDB's cost of a deleting statement grows with the graph, so the cleanup after a batch of passes
    went live is shared: one statement for all their stale chunks, one per relation type, one for orphans."""
    _write_document(graph, "other", "kept", "p0")
    for doc in ("doc-1", "doc-2", "doc-3"):
        _write_document(graph, doc, f"old {doc}", "p1")
        _write_document(graph, doc, "shared new", "p2", live=False)
    asked: list[str] = []
    real_run = graph.run
    graph.run = lambda statement, params=None: asked.append(statement) or real_run(statement, params)
    superseded = [
        writer.go_live(graph, doc, "p2", {"filename": "v2"}, ["PAID_IN"]) for doc in ("doc-1", "doc-2", "doc-3")
    ]
    assert asked.count(queries.DELETE_STALE_CHUNKS) == 0  # live first, nothing deleted yet
    writer.clean_superseded(graph, superseded)
    assert asked.count(queries.DELETE_STALE_CHUNKS) == 1 and asked.count(queries.DELETE_ORPHANS_AMONG) == 1
    assert asked.count(queries.DELETE_STALE_RELATIONS["PAID_IN"]) == 1
    for doc in ("doc-1", "doc-2", "doc-3"):
        assert real_run(queries.COUNT_CHUNK_PASSES, {"document_id": doc}) == [{"total": 2, "live": 2}]
        relations = writer.document_slice(graph, doc)["relations"]
        assert [(r["type"], r["pass_id"]) for r in relations] == [("PAID_IN", "p2")]
    names = {r["name"] for r in real_run("MATCH (e:Entity) RETURN e.name AS name")}
    assert names == {"shared new", "EUR", "kept"}  # each doc's old vendor went; what others mention stays


def test_purge_removes_only_the_documents_slice_and_unshared_entities(graph: FalkorGraph) -> None:
    _write_document(graph, "other", "kept", "p0")
    _write_document(graph, "doc-1", "gone", "p1")
    before_other = writer.document_slice(graph, "other")
    writer.purge_documents(graph, ["doc-1", "never-indexed"])
    writer.purge_documents(graph, ["doc-1"])  # idempotent
    assert writer.document_slice(graph, "doc-1") == {"nodes": [], "relations": []}
    assert writer.document_slice(graph, "other") == before_other
    names = {r["name"] for r in graph.run("MATCH (e:Entity) RETURN e.name AS name")}
    assert names == {"kept", "EUR"}  # EUR is shared with "other": it stays


def test_cleanup_statements_use_indexes_not_scans(graph: FalkorGraph) -> None:
    """Per-document cleanup must not grow with the graph: every statement starts from an index."""
    params = {
        "document_id": "d",
        "pass_id": "p",
        "document_ids": ["d"],
        "documents": [{"document_id": "d", "pass_id": "p"}],
        "keys": ["k"],
    }
    statements = [
        queries.MENTIONED_KEYS,
        queries.DELETE_STALE_CHUNKS,
        queries.DELETE_ORPHANS_AMONG,
        queries.DELETE_PASS_CHUNKS,
        queries.PURGE_CHUNKS,
        queries.PURGE_DOCUMENTS,
        *queries.DELETE_STALE_RELATIONS.values(),
        *queries.DELETE_PASS_RELATIONS.values(),
        *queries.PURGE_RELATIONS.values(),
    ]
    for statement in statements:
        plan = graph.explain(statement, params)
        assert "Index Scan" in plan and "All Node Scan" not in plan, (statement, plan)


def test_schema_setup_is_idempotent(graph: FalkorGraph) -> None:
    graph.ensure_schema()
    graph.ensure_schema()
    indexed = {(r["label"], p) for r in graph.run(queries.FALKOR_LIST_INDEXES) for p in r["properties"]}
    assert set(queries.KEYED_NODES) | set(queries.INDEXED_PROPERTIES) <= indexed
    assert set(queries.INDEXED_RELATION_PROPERTIES) <= indexed


def test_neo4j_schema_statements_are_idempotent_forms() -> None:
    for statement in queries.neo4j_schema_statements():
        assert "IF NOT EXISTS" in statement


def test_schema_setup_is_safe_when_runs_do_it_at_once(stack_state) -> None:
    """Parallel runs each ensure the schema of a fresh graph; FalkorDB's CREATE INDEX refuses an index another
    connection created meanwhile, which must not fail a run."""
    import threading

    name = f"t_{uuid.uuid4().hex}"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def ensure() -> None:
        store = FalkorGraph(os.environ["FALKORDB_HOST"], int(os.environ["FALKORDB_PORT"]), graph=name)
        try:
            start.wait()
            store.ensure_schema()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = FalkorGraph(os.environ["FALKORDB_HOST"], int(os.environ["FALKORDB_PORT"]), graph=name)
    try:
        assert errors == []
        indexes = store.run(queries.FALKOR_LIST_INDEXES)
        expected = len(queries.KEYED_NODES) + len(queries.INDEXED_PROPERTIES) + len(queries.INDEXED_RELATION_PROPERTIES)
        assert sum(len(r["properties"]) for r in indexes) == expected
    finally:
        store.delete_all()
        store.close()
