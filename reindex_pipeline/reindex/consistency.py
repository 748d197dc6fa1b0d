"""Cross-store consistency of one document: Postgres (the source) against Qdrant and the graph.

``gather`` reads the facts of many documents (a few queries, id lookups in Qdrant, indexed lookups in
the graph); ``evaluate`` turns one document's facts into check results (pure). The checks:

- ``extracted_rows_present`` (extracted_data): an indexed live document's extraction has run and its
  rows are there; a deleted one has none.
- ``points_match_chunks`` (chunk_embeddings): the live Qdrant pass has one point per chunk, one slot
  only, and every payload's owner and workspace are the document's; a deleted one has no points.
- ``graph_matches_chunks`` (graph_entities): the live graph pass has one chunk node per chunk and the
  Document node carries the document's owner and workspace; a deleted one has no node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reindex_pipeline.graph import queries
from reindex_pipeline.graph.store import GraphStore
from reindex_pipeline.vectors import VectorIndex

EXTRACTED_CHECK, POINTS_CHECK, GRAPH_CHECK = "extracted_rows_present", "points_match_chunks", "graph_matches_chunks"


@dataclass
class DocumentFacts:
    document_id: str
    exists: bool = True
    deleted: bool = False
    indexed: bool = False  # converted and index_status indexed (documents being indexed are not judged)
    owner_id: str | None = None
    workspace_id: str | None = None
    chunks: int = 0
    extracted_rows: int = 0
    extraction_recorded: bool = False
    # Qdrant: live slots -> their points' (owner, workspace) pairs; None when not looked at
    slots: dict[int, list[tuple[str | None, str | None]]] | None = None
    # graph: the Document node's properties (None: no node) and its live / all chunk nodes
    graph_document: dict[str, Any] | None = None
    graph_live_chunks: int = 0
    graph_all_chunks: int = 0


@dataclass
class CheckResult:
    check: str
    passed: bool
    problems: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return "consistent" if self.passed else "; ".join(self.problems)


def evaluate(f: DocumentFacts, with_vectors: bool = True, with_graph: bool = True) -> list[CheckResult]:
    gone = f.deleted or not f.exists
    results = [CheckResult(EXTRACTED_CHECK, True)]
    if gone and f.extracted_rows:
        results[0].problems.append(f"{f.extracted_rows} extracted rows of a deleted document")
    elif not gone and f.indexed and not f.extraction_recorded:
        results[0].problems.append("extraction has not run for this indexed document (missing)")
    if with_vectors:
        results.append(CheckResult(POINTS_CHECK, True, _points_problems(f, gone)))
    if with_graph:
        results.append(CheckResult(GRAPH_CHECK, True, _graph_problems(f, gone)))
    for r in results:
        r.passed = not r.problems
    return results


def _points_problems(f: DocumentFacts, gone: bool) -> list[str]:
    slots = f.slots or {}
    points = sum(len(p) for p in slots.values())
    if gone:
        return [f"{points} Qdrant points of a deleted document (orphaned)"] if points else []
    if not f.indexed:
        return []
    problems = []
    if len(slots) > 1:
        problems.append(f"points in {len(slots)} slots (a pass was not committed): {points} points")
    if points != f.chunks:
        problems.append(
            f"{points} live Qdrant points for {f.chunks} chunks"
            + (" (missing)" if points < f.chunks else " (duplicates)")
        )
    stale = {pair for p in slots.values() for pair in p if pair != (f.owner_id, f.workspace_id)}
    if stale:
        owner, workspace = sorted(stale, key=str)[0]
        problems.append(
            f"payload owner/workspace {owner}/{workspace} differ from the document's "
            f"{f.owner_id}/{f.workspace_id} (stale)"
        )
    return problems


def _graph_problems(f: DocumentFacts, gone: bool) -> list[str]:
    if gone:
        left = f.graph_all_chunks + (f.graph_document is not None)
        return [f"{left} graph nodes of a deleted document (orphaned)"] if left else []
    if not f.indexed:
        return []
    if f.graph_document is None:
        return [f"no Document node for {f.chunks} chunks (missing)"]
    problems = []
    if f.graph_live_chunks != f.chunks:
        problems.append(f"{f.graph_live_chunks} live graph chunks for {f.chunks} chunks")
    if f.graph_all_chunks != f.graph_live_chunks:
        problems.append(f"{f.graph_all_chunks - f.graph_live_chunks} chunk nodes of an old pass (leftovers)")
    props = f.graph_document
    if (props.get("owner_id") or None, props.get("workspace_id")) != (f.owner_id, f.workspace_id):
        problems.append(
            f"Document node owner/workspace {props.get('owner_id')}/{props.get('workspace_id')} "
            f"differ from the document's {f.owner_id}/{f.workspace_id} (stale)"
        )
    return problems


def gather(
    conn, document_ids: list[str], vectors: VectorIndex | None, graph: GraphStore | None
) -> dict[str, DocumentFacts]:
    """The facts of these documents in every store (bounded by the documents' own size)."""
    facts = {d: DocumentFacts(d, exists=False) for d in document_ids}
    rows = conn.execute(
        """
        SELECT d.id::text, d.deleted_at IS NOT NULL, d.convert_status = 'converted'
                                                     AND d.index_status = 'indexed',
               d.owner_id::text, d.workspace_id::text,
               (SELECT count(*) FROM chunks c WHERE c.document_id = d.id),
               (SELECT count(*) FROM documents_data x WHERE x.document_id = d.id),
               s.extraction_fingerprint IS NOT NULL
          FROM documents d LEFT JOIN document_index_state s ON s.document_id = d.id
         WHERE d.id = ANY(%s::uuid[])
        """,
        (document_ids,),
    ).fetchall()
    for doc_id, deleted, indexed, owner, workspace, chunks, extracted, recorded in rows:
        facts[doc_id] = DocumentFacts(doc_id, True, deleted, indexed, owner, workspace, chunks, extracted, recorded)
    for f in facts.values():
        if vectors is not None:
            f.slots = {}
            for point in vectors.live_points(f.document_id):
                payload = point.payload or {}
                f.slots.setdefault(int(payload.get("slot", 0)), []).append(
                    (payload.get("owner_id"), payload.get("workspace_id"))
                )
        if graph is not None:
            document = graph.run(queries.GET_DOCUMENT, {"document_id": f.document_id})
            f.graph_document = document[0]["properties"] if document else None
            counts = graph.run(queries.COUNT_CHUNK_PASSES, {"document_id": f.document_id})[0]
            f.graph_live_chunks, f.graph_all_chunks = int(counts["live"] or 0), int(counts["total"] or 0)
    return facts
