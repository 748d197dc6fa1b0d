"""Write one document's graph pass (blue/green, see ``graph.queries``)."""

from __future__ import annotations

from reindex_pipeline.graph import queries
from reindex_pipeline.graph.builder import DocumentGraph
from reindex_pipeline.graph.store import GraphStore


def write_pass(store: GraphStore, document_id: str, pass_id: str, graph: DocumentGraph) -> None:
    """Write the pass next to the live one. Nothing the live pass reads is changed."""
    params = {"document_id": document_id, "pass_id": pass_id}
    store.run(queries.ENSURE_DOCUMENT, {"document_id": document_id})
    store.run(queries.UPSERT_CHUNKS, {**params, "chunks": graph.chunks})
    if graph.mentions:
        store.run(queries.UPSERT_MENTIONS, {"pass_id": pass_id, "mentions": graph.mentions})
    for rel_type, relations in graph.relations.items():
        store.run(queries.UPSERT_RELATION[rel_type], {**params, "relations": relations})


def commit_pass(store: GraphStore, document_id: str, pass_id: str, properties: dict) -> None:
    """Make the pass live (document properties last), then drop what earlier passes left."""
    params = {"document_id": document_id, "pass_id": pass_id}
    store.run(queries.SET_DOCUMENT_PROPERTIES, {**params, "properties": properties})
    store.run(queries.DELETE_STALE_CHUNKS, params)
    store.run(queries.DELETE_STALE_RELATIONS, params)
    store.run(queries.DELETE_ORPHAN_ENTITIES)


def drop_pass(store: GraphStore, document_id: str, pass_id: str) -> None:
    """Remove a failed pass; the live pass stays exactly as it was."""
    params = {"document_id": document_id, "pass_id": pass_id}
    store.run(queries.DELETE_PASS_CHUNKS, params)
    store.run(queries.DELETE_PASS_RELATIONS, params)
    store.run(queries.DELETE_ORPHAN_ENTITIES)


def document_slice(store: GraphStore, document_id: str) -> dict:
    """Everything the graph holds for one document (for comparisons)."""
    return {"nodes": store.run(queries.DOCUMENT_SLICE, {"document_id": document_id}),
            "relations": store.run(queries.DOCUMENT_RELATIONS, {"document_id": document_id})}
