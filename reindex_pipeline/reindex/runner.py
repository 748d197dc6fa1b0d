"""One reindex run: request -> selection (eligibility + RBAC) -> per-document phases -> stores -> status/audit.

Documents go through in batches. Per batch: one query computes every document's source hashes and
reads its recorded fingerprints; a "stale only" run drops the phases whose output is up to date (a
document with nothing to do is not touched at all); one statement claims the rest; one query each
loads their pages and chunks; one embedding call embeds the chunks of every document that needs
vectors. Then, per document, every phase writes its result NEXT TO the live data (a Postgres
transaction, a Qdrant slot, a graph pass); only when all of them succeeded is the new data made live
and the old removed. If anything fails, the new writes are dropped and the document keeps its previous
extracted data, points and graph exactly; it returns to ``indexed`` with the failure recorded. One
document's failure never touches another's data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from reindex_pipeline.db import documents as db
from reindex_pipeline.embeddings import Embedder
from reindex_pipeline.graph import writer as graph_writer
from reindex_pipeline.graph.builder import ChunkText, build_document_graph, from_extraction, from_llm
from reindex_pipeline.graph.store import GraphStore
from reindex_pipeline.ingest.chunking import content_hash
from reindex_pipeline.reindex.extraction import Extraction
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.reindex.fingerprints import (
    ALL_PHASES,
    EXTRACTION,
    GRAPH,
    VECTORS,
    Producers,
    SourceHashes,
    phase_fingerprints,
    phases_to_run,
)
from reindex_pipeline.reindex.selection import (
    DocumentRow,
    Requester,
    RequesterRefused,
    Selection,
    check_requester,
    select_documents,
)
from reindex_pipeline.vectors import ChunkPoint, VectorIndex, VectorPass

__all__ = ["ALL_PHASES", "EXTRACTION", "GRAPH", "VECTORS", "DocumentOutcome", "ReindexRunner", "Stores"]

#: Documents per batch: one claim, one load, one embedding call for all of them.
BATCH_SIZE = 16


@dataclass
class DocumentOutcome:
    document_id: str
    ok: bool
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # phase run -> metadata
    unchanged: list[str] = field(default_factory=list)  # phases skipped: their fingerprint had not changed
    fingerprints: dict[str, str] = field(default_factory=dict)
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

    def producers(self) -> Producers:
        embedder = self.embedder
        model = f"{embedder.model}/{embedder.dimensions}" if embedder is not None else ""
        return Producers(extractor=self.extractor.identity, embedding_model=model)


def resolve_requester(conn, requester_id: str | None, operator_id: str | None) -> tuple[Requester, str]:
    """The requester of the run, or the deployment's operator for a UI backfill. Raises when refused.

    A person reindexes within their organisation; the operator (named or by default) acts for the deployment,
    across organisations, as the UI (whose partitions span them) and the restores of every organisation do."""
    source = "run_config"
    if not requester_id:
        if not operator_id:
            raise RequesterRefused(
                "no requester: put requester_id in the run config, or set REINDEX_OPERATOR_USER_ID to an "
                "admin user id for UI backfills"
            )
        requester_id = operator_id
    requester = check_requester(db.load_requester(conn, requester_id), requester_id)
    if requester_id == operator_id:
        return replace(requester, org_id=None), "operator"
    return requester, source


def select(
    conn,
    requester: Requester,
    partition_keys: Iterable[str],
    workspace_id: str | None,
    document_ids: list[str] | None,
    run_id: str | None,
    dead_runs: frozenset[str] = frozenset(),
) -> Selection:
    """Eligible documents among the run's partition keys (intersected with ``document_ids`` when given)."""
    keys = list(partition_keys)
    if document_ids is not None:
        wanted = set(document_ids)
        keys = [k for k in keys if k in wanted]
    return select_documents(requester, db.load_documents(conn, keys), workspace_id, keys, run_id, dead_runs)


@dataclass
class _Work:
    doc: DocumentRow
    phases: list[str]
    fingerprints: dict[str, str]
    pages: list[str] = field(default_factory=list)
    chunks: list[ChunkText] = field(default_factory=list)
    vectors: list[list[float]] | None = None
    embed_error: str | None = None


class ReindexRunner:
    def __init__(
        self,
        stores: Stores,
        run_id: str,
        phases: Iterable[str],
        log: Callable[[str], None],
        force: bool = True,
        batch_size: int = BATCH_SIZE,
        dead_runs: frozenset[str] = frozenset(),
    ):
        self.stores, self.run_id, self.log, self.force, self.batch_size = stores, run_id, log, force, batch_size
        self.dead_runs = dead_runs  # runs known to have ended: documents they left ``indexing`` are taken over
        self.phases = [p for p in ALL_PHASES if p in set(phases)]
        self.producers = stores.producers()

    def reindex(self, docs: list[DocumentRow]) -> Iterator[DocumentOutcome]:
        for start in range(0, len(docs), self.batch_size):
            yield from self._batch(docs[start : start + self.batch_size])

    def reindex_document(self, doc: DocumentRow) -> DocumentOutcome:
        return next(iter(self.reindex([doc])))

    # -- one batch ---------------------------------------------------------------------------------------
    def _batch(self, docs: list[DocumentRow]) -> Iterator[DocumentOutcome]:
        ids = [d.id for d in docs]
        with self.stores.connect(autocommit=True) as conn:
            hashes = db.source_hashes(conn, ids)
            plans: dict[str, _Work] = {}
            for doc in docs:
                found = hashes[doc.id]
                fingerprints = phase_fingerprints(SourceHashes(found["pages"], found["chunks"]), self.producers)
                todo = phases_to_run(self.phases, fingerprints, found["recorded"], self.force)
                if not todo:  # a stale-only run with nothing to do writes nothing, not even a status
                    yield DocumentOutcome(doc.id, ok=True, unchanged=list(self.phases), fingerprints=fingerprints)
                    continue
                plans[doc.id] = _Work(doc, todo, fingerprints)
            claimed = db.claim_many(
                conn,
                self.run_id,
                {
                    i: {
                        "run_id": self.run_id,
                        **{p: {"status": "pending"} if p in w.phases else {"status": "unchanged"} for p in self.phases},
                    }
                    for i, w in plans.items()
                },
                self.dead_runs,
            )
            for doc_id in [i for i in plans if i not in claimed]:
                plans.pop(doc_id)
                yield DocumentOutcome(
                    doc_id, ok=False, failed_phase="claim", error="the document is no longer eligible"
                )
            if not plans:
                return
            pages = db.load_pages_of(conn, list(plans))
            chunks = db.load_chunks_of(conn, list(plans))
        for doc_id, work in plans.items():
            work.pages = pages.get(doc_id, [])
            work.chunks = [ChunkText(i, text, content_hash(text)) for i, text in chunks.get(doc_id, [])]
        self._embed([w for w in plans.values() if VECTORS in w.phases])
        done: list[tuple[DocumentOutcome, graph_writer.Superseded | None]] = []
        with self.stores.connect(autocommit=True) as status:
            for work in plans.values():
                done.append(self._document(status, work))
        self._clean_graph(done)
        for outcome, _ in done:
            yield outcome

    def _clean_graph(self, done: list[tuple[DocumentOutcome, graph_writer.Superseded | None]]) -> None:
        """Drop what the batch's earlier graph passes left, for all its documents at once; each document's
        graph time gets its share. Their new passes are live already: if this fails, the leftovers are
        invisible to readers, reported by the consistency check and removed by the document's next pass."""
        superseded = [(outcome, s) for outcome, s in done if s is not None]
        if not superseded:
            return
        started = time.monotonic()
        try:
            graph_writer.clean_superseded(self.stores.graph, [s for _, s in superseded])
        except Exception as exc:
            self.log(
                f"graph cleanup of {len(superseded)} documents' earlier passes failed ({type(exc).__name__}: "
                f"{exc}); their new passes are live, the leftovers go with their next pass"
            )
        share = (time.monotonic() - started) / len(superseded)
        for outcome, _ in superseded:
            outcome.metadata[GRAPH]["duration_s"] = round(outcome.metadata[GRAPH]["duration_s"] + share, 4)

    def _embed(self, works: list[_Work]) -> None:
        """One embedding call for the batch; if it fails, each document alone, so a failure stays with
        the document that caused it."""
        if not works:
            return
        embedder = self.stores.embedder
        assert embedder is not None
        texts = [c.content for w in works for c in w.chunks]
        try:
            vectors = embedder.embed(texts)
            if len(vectors) != len(texts):
                raise RuntimeError(f"the embedder returned {len(vectors)} vectors for {len(texts)} chunks")
        except Exception:
            for work in works:
                try:
                    work.vectors = embedder.embed([c.content for c in work.chunks])
                except Exception as exc:
                    work.embed_error = f"{type(exc).__name__}: {exc}"
            return
        at = 0
        for work in works:
            work.vectors, at = vectors[at : at + len(work.chunks)], at + len(work.chunks)

    # -- one document: write next to the live data, then swap, or drop -----------------------------------
    def _document(self, status, work: _Work) -> tuple[DocumentOutcome, graph_writer.Superseded | None]:
        """The document's phases, all or nothing. Returns its outcome and, when its graph pass went live,
        what earlier passes left in the graph (cleaned for the whole batch by ``_clean_graph``)."""
        doc, phases = work.doc, work.phases
        outcome = DocumentOutcome(
            doc.id, ok=False, fingerprints=work.fingerprints, unchanged=[p for p in self.phases if p not in phases]
        )
        pass_id = uuid.uuid4().hex[:16]
        vector_pass: VectorPass | None = None
        superseded: graph_writer.Superseded | None = None
        written: list[str] = []
        phase = "prepare"
        db.set_running(status, doc.id, self.run_id, phases)
        try:
            with self.stores.connect() as conn:
                extraction: Extraction | None = None
                for phase in phases:
                    started = time.monotonic()
                    if extraction is None and (phase == EXTRACTION or not self.stores.extractor.uses_llm):
                        extraction = self.stores.extractor.extract(work.pages)
                    if phase == EXTRACTION:
                        outcome.metadata[phase] = self._write_extraction(conn, doc, extraction)
                    elif phase == VECTORS:
                        vector_pass = self.stores.vectors.plan_pass(doc.id, len(work.chunks), pass_id)
                        outcome.metadata[phase] = self._write_vectors(doc, work, vector_pass)
                    else:
                        outcome.metadata[phase] = self._write_graph(doc, work, extraction, pass_id)
                    written.append(phase)
                    outcome.metadata[phase]["duration_s"] = round(time.monotonic() - started, 4)
                if EXTRACTION in written:
                    db.mark_extracted(
                        conn, doc.id, extraction, self.stores.extractor.name, self.stores.extractor.version
                    )
                conn.commit()  # extracted data goes live
            phase = "commit"
            if vector_pass is not None:
                started = time.monotonic()
                self.stores.vectors.commit_pass(vector_pass)
                _add_duration(outcome.metadata[VECTORS], started)
            if GRAPH in written:
                started = time.monotonic()
                relation_types = outcome.metadata[GRAPH]["relation_types"]
                superseded = graph_writer.go_live(
                    self.stores.graph, doc.id, pass_id, _graph_properties(doc), relation_types
                )
                _add_duration(outcome.metadata[GRAPH], started)
        except Exception as exc:  # one document's failure stays with that document
            self._drop(doc.id, pass_id, vector_pass, phases)
            outcome.failed_phase, outcome.error = phase, f"{type(exc).__name__}: {exc}"
            db.release(
                status, doc.id, self.run_id, phases, {"phase": phase, "error": outcome.error, "run_id": self.run_id}
            )
            self.log(f"document {doc.id} failed in {phase}: {outcome.error}")
            return outcome, None
        db.release(status, doc.id, self.run_id, phases, state=self._state(work, vector_pass, pass_id))
        outcome.ok = True
        return outcome, superseded

    def _state(self, work: _Work, vector_pass: VectorPass | None, pass_id: str) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if EXTRACTION in work.phases:
            state["extraction_fingerprint"] = work.fingerprints[EXTRACTION]
        if VECTORS in work.phases and vector_pass is not None:
            state.update(
                vectors_fingerprint=work.fingerprints[VECTORS],
                vector_points=len(vector_pass.written),
                vector_collection=self.stores.vectors.collection,
                embedding_model=self.producers.embedding_model,
            )
        if GRAPH in work.phases:
            state.update(graph_fingerprint=work.fingerprints[GRAPH], graph_pass_id=pass_id)
        return state

    # -- phases ----------------------------------------------------------------------------------------
    def _write_extraction(self, conn, doc: DocumentRow, extraction: Extraction) -> dict[str, Any]:
        fields, items = db.replace_extracted(
            conn, doc.id, extraction, self.stores.extractor.name, self.stores.extractor.version
        )
        preview = ", ".join(f"{k}={v}" for k, v in list(extraction.fields().items())[:4])
        return {
            "fields": fields,
            "line_items": items,
            "extractor": self.stores.extractor.name,
            "extractor_version": self.stores.extractor.version,
            "document_type": extraction.document_type,
            "preview": preview,
        }

    def _write_vectors(self, doc: DocumentRow, work: _Work, vector_pass: VectorPass) -> dict[str, Any]:
        index = self.stores.vectors
        assert index is not None
        if work.embed_error is not None:
            raise RuntimeError(work.embed_error)
        payload = {"document_id": doc.id, "workspace_id": doc.workspace_id, "owner_id": doc.owner_id}
        points = [
            ChunkPoint(c.chunk_index, c.content_sha256, v, c.content)
            for c, v in zip(work.chunks, work.vectors or [], strict=True)
        ]
        index.write_pass(vector_pass, payload, points)
        return {"points": len(points), "model": index.model, "collection": index.collection, "slot": vector_pass.slot}

    def _write_graph(
        self, doc: DocumentRow, work: _Work, extraction: Extraction | None, pass_id: str
    ) -> dict[str, Any]:
        assert self.stores.graph is not None
        if self.stores.extractor.uses_llm:
            entities, relations = from_llm(self.stores.extractor.extract_graph(work.pages))
        else:
            entities, relations = from_extraction(extraction, doc.id, doc.filename)
        graph = build_document_graph(doc.id, pass_id, work.chunks, entities, relations)
        graph_writer.write_pass(self.stores.graph, doc.id, pass_id, graph)
        return {
            "chunks": len(graph.chunks),
            "entities": graph.entity_count,
            "relations": sum(len(r) for r in graph.relations.values()),
            "relation_types": sorted(graph.relations),
            "source": "llm" if self.stores.extractor.uses_llm else "extracted_fields",
        }

    def _drop(self, document_id: str, pass_id: str, vector_pass: VectorPass | None, phases: list[str]) -> None:
        """Remove a failed pass from every store it reached (the Postgres transaction just rolls back)."""
        try:
            if vector_pass is not None:
                self.stores.vectors.drop_pass(vector_pass)
            if self.stores.graph is not None and GRAPH in phases:
                graph_writer.drop_pass(self.stores.graph, document_id, pass_id)
        except Exception as exc:  # keep the original failure; say what could not be cleaned
            self.log(f"could not drop the failed pass {pass_id} of {document_id}: {exc}")


def _add_duration(metadata: dict[str, Any], started: float) -> None:
    """A phase's duration includes making its output live (the commit of its pass)."""
    metadata["duration_s"] = round(metadata.get("duration_s", 0.0) + time.monotonic() - started, 4)


def _graph_properties(doc: DocumentRow) -> dict[str, Any]:
    return {"filename": doc.filename, "workspace_id": doc.workspace_id, "owner_id": doc.owner_id or ""}
