"""One reindex run: request -> selection (eligibility + RBAC) -> per-document phases -> stores -> status/audit.

Per document, every selected phase first computes its result and writes it NEXT TO the live data
(a Postgres transaction, a Qdrant slot, a graph pass); only when all of them succeeded is the new
data made live and the old removed. If anything fails, the new writes are dropped and the document
keeps its previous extracted data, points and graph exactly; it returns to ``indexed`` with the
failure recorded. One document's failure never touches another's data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reindex_pipeline.db import documents as db
from reindex_pipeline.embeddings import Embedder
from reindex_pipeline.graph import writer as graph_writer
from reindex_pipeline.graph.builder import ChunkText, build_document_graph, from_extraction, from_llm
from reindex_pipeline.graph.store import GraphStore
from reindex_pipeline.ingest.chunking import content_hash
from reindex_pipeline.reindex.extraction import Extraction
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.reindex.selection import (
    DocumentRow,
    Requester,
    RequesterRefused,
    Selection,
    check_requester,
    select_documents,
)
from reindex_pipeline.vectors import ChunkPoint, VectorIndex

EXTRACTION, VECTORS, GRAPH = "extraction", "vector_indexing", "graphrag_indexing"
ALL_PHASES = (EXTRACTION, VECTORS, GRAPH)


@dataclass
class DocumentOutcome:
    document_id: str
    ok: bool
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # phase -> metadata
    failed_phase: str | None = None
    error: str | None = None


@dataclass
class Stores:
    """What a run writes to. ``vectors`` / ``graph`` may be None when their phase is not selected."""

    connect: Callable[..., Any]  # AppDatabase.connect
    extractor: Extractor
    embedder: Embedder | None = None
    vectors: VectorIndex | None = None
    graph: GraphStore | None = None


def resolve_requester(conn, requester_id: str | None, operator_id: str | None) -> tuple[Requester, str]:
    """The requester of the run, or the deployment's operator for a UI backfill. Raises when refused."""
    source = "run_config"
    if not requester_id:
        if not operator_id:
            raise RequesterRefused(
                "no requester: put requester_id in the run config, or set REINDEX_OPERATOR_USER_ID to an "
                "admin user id for UI backfills"
            )
        requester_id, source = operator_id, "operator"
    return check_requester(db.load_requester(conn, requester_id), requester_id), source


def select(conn, requester: Requester, partition_keys: Iterable[str], workspace_id: str | None,
           document_ids: list[str] | None, run_id: str | None) -> Selection:
    """Eligible documents among the run's partition keys (intersected with ``document_ids`` when given)."""
    keys = list(partition_keys)
    if document_ids is not None:
        wanted = set(document_ids)
        keys = [k for k in keys if k in wanted]
    return select_documents(requester, db.load_documents(conn, keys), workspace_id, keys, run_id)


class ReindexRunner:
    def __init__(self, stores: Stores, run_id: str, phases: Iterable[str], log: Callable[[str], None]):
        self.stores, self.run_id, self.log = stores, run_id, log
        self.phases = [p for p in ALL_PHASES if p in set(phases)]

    def reindex_document(self, doc: DocumentRow) -> DocumentOutcome:
        outcome = DocumentOutcome(doc.id, ok=False)
        pass_id = uuid.uuid4().hex[:16]
        with self.stores.connect(autocommit=True) as status:
            if not db.claim(status, doc.id, self.run_id, self.phases):
                outcome.failed_phase, outcome.error = "claim", "the document is no longer eligible"
                return outcome
            phase = "prepare"
            written: list[str] = []
            try:
                with self.stores.connect() as conn:
                    pages = db.load_pages(conn, doc.id)
                    chunks = [ChunkText(i, text, content_hash(text)) for i, text in db.load_chunks(conn, doc.id)]
                    extraction: Extraction | None = None
                    for phase in self.phases:
                        db.set_phase(status, doc.id, self.run_id, phase, "running")
                        started = time.monotonic()
                        if extraction is None and (phase == EXTRACTION or not self.stores.extractor.uses_llm):
                            extraction = self.stores.extractor.extract(pages)
                        if phase == EXTRACTION:
                            outcome.metadata[phase] = self._write_extraction(conn, doc, extraction)
                        elif phase == VECTORS:
                            outcome.metadata[phase] = self._write_vectors(doc, chunks, pass_id)
                        else:
                            outcome.metadata[phase] = self._write_graph(doc, pages, chunks, extraction, pass_id)
                        written.append(phase)
                        outcome.metadata[phase]["duration_s"] = round(time.monotonic() - started, 3)
                    if EXTRACTION in written:
                        db.mark_extracted(conn, doc.id, extraction, self.stores.extractor.name,
                                          self.stores.extractor.version)
                    conn.commit()  # extracted data goes live
                phase = "commit"
                if VECTORS in written:
                    self.stores.vectors.commit_pass(doc.id, pass_id)
                if GRAPH in written:
                    graph_writer.commit_pass(self.stores.graph, doc.id, pass_id, _graph_properties(doc))
            except Exception as exc:  # one document's failure stays with that document
                self._drop(doc.id, pass_id, written)
                outcome.failed_phase, outcome.error = phase, f"{type(exc).__name__}: {exc}"
                failure = {"phase": phase, "error": outcome.error, "run_id": self.run_id}
                if phase in self.phases:
                    db.set_phase(status, doc.id, self.run_id, phase, "failed", {"error": outcome.error})
                db.release(status, doc.id, self.run_id, failure)
                self.log(f"document {doc.id} failed in {phase}: {outcome.error}")
                return outcome
            for done in self.phases:
                db.set_phase(status, doc.id, self.run_id, done, "done")
            db.release(status, doc.id, self.run_id)
        outcome.ok = True
        return outcome

    # -- phases ----------------------------------------------------------------------------------------
    def _write_extraction(self, conn, doc: DocumentRow, extraction: Extraction) -> dict[str, Any]:
        fields, items = db.replace_extracted(conn, doc.id, extraction, self.stores.extractor.name,
                                             self.stores.extractor.version)
        preview = ", ".join(f"{k}={v}" for k, v in list(extraction.fields().items())[:4])
        return {"fields": fields, "line_items": items, "extractor": self.stores.extractor.name,
                "extractor_version": self.stores.extractor.version, "document_type": extraction.document_type,
                "preview": preview}

    def _write_vectors(self, doc: DocumentRow, chunks: list[ChunkText], pass_id: str) -> dict[str, Any]:
        embedder, index = self.stores.embedder, self.stores.vectors
        assert embedder is not None and index is not None
        vectors = embedder.embed([c.content for c in chunks])  # the slow, failure-prone part: before any write
        if len(vectors) != len(chunks):
            raise RuntimeError(f"the embedder returned {len(vectors)} vectors for {len(chunks)} chunks")
        payload = {"document_id": doc.id, "workspace_id": doc.workspace_id, "owner_id": doc.owner_id}
        slot = index.write_pass(payload, [ChunkPoint(c.chunk_index, c.content_sha256, v)
                                          for c, v in zip(chunks, vectors, strict=True)], pass_id)
        return {"points": len(chunks), "model": embedder.model, "collection": index.collection, "slot": slot}

    def _write_graph(self, doc: DocumentRow, pages: list[str], chunks: list[ChunkText], extraction: Extraction,
                     pass_id: str) -> dict[str, Any]:
        assert self.stores.graph is not None
        if self.stores.extractor.uses_llm:
            entities, relations = from_llm(self.stores.extractor.extract_graph(pages))
        else:
            entities, relations = from_extraction(extraction)
        graph = build_document_graph(doc.id, pass_id, chunks, entities, relations)
        graph_writer.write_pass(self.stores.graph, doc.id, pass_id, graph)
        return {"chunks": len(graph.chunks), "entities": graph.entity_count,
                "relations": sum(len(r) for r in graph.relations.values()),
                "source": "llm" if self.stores.extractor.uses_llm else "extracted_fields"}

    def _drop(self, document_id: str, pass_id: str, written: list[str]) -> None:
        """Remove a failed pass from every store it reached (the Postgres transaction just rolls back)."""
        try:
            if self.stores.vectors is not None and VECTORS in self.phases:
                self.stores.vectors.drop_pass(document_id, pass_id)
            if self.stores.graph is not None and GRAPH in self.phases:
                graph_writer.drop_pass(self.stores.graph, document_id, pass_id)
        except Exception as exc:  # keep the original failure; say what could not be cleaned
            self.log(f"could not drop the failed pass {pass_id} of {document_id}: {exc}")


def _graph_properties(doc: DocumentRow) -> dict[str, Any]:
    return {"filename": doc.filename, "workspace_id": doc.workspace_id, "owner_id": doc.owner_id or ""}
