"""A store-wide audit: every document in Postgres against every point in Qdrant and every chunk node in
the graph, found by streaming each store once.

Memory holds a few numbers per document (never texts or vectors): 100,000 documents take tens of MB.
``compare`` is pure; the ``scan_*`` functions read one store each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from reindex_pipeline.graph import queries
from reindex_pipeline.graph.store import GraphStore

SCAN_PAGE = 2000


@dataclass(frozen=True)
class SourceDocument:
    deleted: bool
    indexed: bool
    owner_id: str | None
    workspace_id: str | None
    chunks: int
    extracted: bool


@dataclass
class PointTally:
    points: int = 0
    slots: set[int] = field(default_factory=set)
    stale_access: bool = False


@dataclass
class AuditReport:
    documents: int = 0
    differences: dict[str, list[str]] = field(default_factory=dict)  # kind -> document ids

    def add(self, kind: str, document_id: str) -> None:
        self.differences.setdefault(kind, []).append(document_id)

    @property
    def clean(self) -> bool:
        return not self.differences


def scan_postgres(conn) -> dict[str, SourceDocument]:
    out: dict[str, SourceDocument] = {}
    # A server-side cursor lives in a transaction; the CLI's connection is in autocommit mode.
    with conn.transaction(), conn.cursor(name="audit_documents") as cur:
        cur.itersize = SCAN_PAGE
        cur.execute(
            """
            SELECT d.id::text, d.deleted_at IS NOT NULL,
                   d.convert_status = 'converted' AND d.index_status = 'indexed',
                   d.owner_id::text, d.workspace_id::text,
                   (SELECT count(*) FROM chunks c WHERE c.document_id = d.id),
                   s.extraction_fingerprint IS NOT NULL
              FROM documents d LEFT JOIN document_index_state s ON s.document_id = d.id
            """
        )
        for doc_id, deleted, indexed, owner, workspace, chunks, extracted in cur:
            out[doc_id] = SourceDocument(deleted, indexed, owner, workspace, chunks, extracted)
    return out


def scan_points(client, collection: str, source: dict[str, SourceDocument]) -> dict[str, PointTally]:
    """Per document: points, slots, and whether any payload's owner/workspace differs from the source."""
    tallies: dict[str, PointTally] = {}
    for payload in _scroll_payloads(client, collection):
        doc_id = payload.get("document_id")
        tally = tallies.setdefault(doc_id, PointTally())
        tally.points += 1
        tally.slots.add(int(payload.get("slot", 0)))
        doc = source.get(doc_id)
        if doc is not None and (payload.get("owner_id"), payload.get("workspace_id")) != (
            doc.owner_id,
            doc.workspace_id,
        ):
            tally.stale_access = True
    return tallies


def _scroll_payloads(client, collection: str) -> Iterator[dict]:
    offset = None
    while True:
        points, offset = client.scroll(
            collection,
            limit=SCAN_PAGE,
            offset=offset,
            with_vectors=False,
            with_payload=["document_id", "owner_id", "workspace_id", "slot"],
        )
        for point in points:
            yield point.payload or {}
        if offset is None:
            return


def scan_graph(graph: GraphStore) -> tuple[dict[str, int], dict[str, dict]]:
    """(all chunk nodes per document, Document nodes with owner, workspace and live chunk count)."""
    chunks = {r["document_id"]: int(r["chunks"]) for r in graph.run(queries.ALL_DOCUMENT_CHUNKS)}
    nodes = {r["document_id"]: r for r in graph.run(queries.ALL_DOCUMENT_NODES)}
    return chunks, nodes


def compare(
    source: dict[str, SourceDocument],
    points: dict[str, PointTally],
    other_collections: dict[str, int],
    graph_chunks: dict[str, int],
    graph_nodes: dict[str, dict],
) -> AuditReport:
    """Differences by kind. ``other_collections``: points per document in collections of earlier models."""
    report = AuditReport(documents=len(source))
    for doc_id in sorted(set(points) | set(other_collections) | set(graph_chunks) | set(graph_nodes)):
        doc = source.get(doc_id)
        if doc is None or doc.deleted:
            if doc_id in points or doc_id in other_collections:
                report.add("orphaned points (document deleted)", doc_id)
            if doc_id in graph_chunks or doc_id in graph_nodes:
                report.add("orphaned graph nodes (document deleted)", doc_id)
    for doc_id, doc in source.items():
        if doc.deleted or not doc.indexed:
            continue
        tally = points.get(doc_id, PointTally())
        if tally.points < doc.chunks:
            report.add("missing points", doc_id)
        elif tally.points > doc.chunks or len(tally.slots) > 1:
            report.add("duplicate points", doc_id)
        if tally.stale_access:
            report.add("stale payload owner/workspace", doc_id)
        node = graph_nodes.get(doc_id)
        if node is None or int(node["live_chunks"]) < doc.chunks:
            report.add("missing graph chunks", doc_id)
        elif graph_chunks.get(doc_id, 0) > doc.chunks:
            report.add("leftover graph chunks", doc_id)
        if node is not None and ((node.get("owner_id") or None), node.get("workspace_id")) != (
            doc.owner_id,
            doc.workspace_id,
        ):
            report.add("stale graph owner/workspace", doc_id)
        if not doc.extracted:
            report.add("missing extraction", doc_id)
    return report
