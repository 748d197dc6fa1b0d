"""Write, commit, drop and purge document graph slices (blue/green, see ``graph.queries``).

Every cleanup starts from the document's own chunks or from an indexed relation key, and orphan
entities are looked for only among the entities this document mentioned. The cleanup after passes go live
takes a batch of documents per statement: FalkorDB's cost of a deleting statement grows with the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Superseded:
    """What a document's earlier passes left once its pass ``pass_id`` is live, to be cleaned."""

    document_id: str
    pass_id: str
    relation_types: tuple[str, ...]  # the types to look for stale relations of


def go_live(
    store: GraphStore, document_id: str, pass_id: str, properties: dict, relation_types: list[str] | None = None
) -> Superseded:
    """Make the pass live (the Document node's properties, its last write). Readers now read this pass.

    ``relation_types``: the types this pass wrote. Stale relations are looked for only among those and the
    types the previous pass recorded (all types when it recorded none), one indexed statement per type."""
    rows = store.run(
        queries.SET_DOCUMENT_PROPERTIES,
        {
            "document_id": document_id,
            "pass_id": pass_id,
            "properties": properties,
            "relation_types": sorted(relation_types or []),
        },
    )
    previous = rows[0]["previous"] if rows else None
    stale_types = queries.RELATION_TYPES if previous is None else {*previous, *(relation_types or [])}
    return Superseded(document_id, pass_id, tuple(sorted(stale_types)))


def clean_superseded(store: GraphStore, superseded: list[Superseded]) -> None:
    """Drop what earlier passes of these documents left: their chunks and mentions, their relations, and the
    entities nothing mentions any more. A few statements for all the documents: in FalkorDB a statement that
    deletes costs time in proportion to the graph's size, so a batch of documents shares one."""
    if not superseded:
        return
    documents = [{"document_id": s.document_id, "pass_id": s.pass_id} for s in superseded]
    keys = _no_longer_mentioned(store, documents, given_pass_is_removed=False)
    store.run(queries.DELETE_STALE_CHUNKS, {"documents": documents})
    for rel_type in queries.RELATION_TYPES:
        stated = [d for s, d in zip(superseded, documents, strict=True) if rel_type in s.relation_types]
        if stated:
            store.run(queries.DELETE_STALE_RELATIONS[rel_type], {"documents": stated})
    _delete_orphans(store, keys)


def commit_pass(
    store: GraphStore, document_id: str, pass_id: str, properties: dict, relation_types: list[str] | None = None
) -> None:
    """One document: make its pass live, then drop what earlier passes left."""
    clean_superseded(store, [go_live(store, document_id, pass_id, properties, relation_types)])


def drop_pass(store: GraphStore, document_id: str, pass_id: str) -> None:
    """Remove a failed pass; the live pass stays exactly as it was."""
    params = {"document_id": document_id, "pass_id": pass_id}
    keys = _no_longer_mentioned(store, [params], given_pass_is_removed=True)
    store.run(queries.DELETE_PASS_CHUNKS, params)
    for statement in queries.DELETE_PASS_RELATIONS.values():
        store.run(statement, params)
    _delete_orphans(store, keys)


def purge_documents(store: GraphStore, document_ids: list[str]) -> None:
    """Remove the documents' whole slices; shared entities go only when nothing mentions them any more.

    Idempotent: purging a document that has nothing left in the graph does nothing."""
    params = {"document_ids": document_ids}
    keys = _mentioned_keys(store, queries.PURGE_MENTIONED_KEYS, params)
    store.run(queries.PURGE_CHUNKS, params)
    for statement in queries.PURGE_RELATIONS.values():
        store.run(statement, params)
    store.run(queries.PURGE_DOCUMENTS, params)
    _delete_orphans(store, keys)


def set_access(store: GraphStore, documents: list[dict]) -> None:
    """``documents``: ``{"id", "owner_id", "workspace_id"}`` each; only those Document nodes change."""
    store.run(queries.SET_ACCESS, {"documents": documents})


def document_slice(store: GraphStore, document_id: str) -> dict:
    """Everything the graph holds for one document (for comparisons)."""
    relations = [
        row
        for statement in queries.DOCUMENT_RELATIONS.values()
        for row in store.run(statement, {"document_id": document_id})
    ]
    return {
        "nodes": store.run(queries.DOCUMENT_SLICE, {"document_id": document_id}),
        "relations": sorted(relations, key=lambda r: (r["source"], r["type"], r["target"])),
    }


def _mentioned_keys(store: GraphStore, statement: str, params: dict) -> list[str]:
    return [row["key"] for row in store.run(statement, params)]


def _no_longer_mentioned(store: GraphStore, documents: list[dict], given_pass_is_removed: bool) -> list[str]:
    """Keys a removed pass mentions and no kept pass does: an unchanged document has none, so its reindex never
    asks whether a shared entity (a currency, a frequent vendor) is still mentioned. ``documents``: document_id
    and pass_id each; that pass is the one removed (a failed pass) or the one kept (the live pass)."""
    removed, kept = set(), set()
    for row in store.run(queries.MENTIONED_KEYS, {"documents": documents}):
        (removed if bool(row["in_pass"]) == given_pass_is_removed else kept).add(row["key"])
    return sorted(removed - kept)


def _delete_orphans(store: GraphStore, keys: list[str]) -> None:
    if keys:
        store.run(queries.DELETE_ORPHANS_AMONG, {"keys": keys})
