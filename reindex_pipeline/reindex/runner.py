"""One reindex run: request -> selection (eligibility + RBAC) -> per-document phases -> stores -> status/audit.

Documents go through in batches. Per batch: one query computes every document's source hashes and
reads its recorded fingerprints; a "stale only" run drops the phases whose output is up to date (a
document with nothing to do is not touched at all); one statement claims the rest; one query each
loads their pages and chunks; one embedding call embeds the chunks of every document that needs
vectors. When the models are remote (an API), their calls run in a thread pool, up to the extractor's
``max_in_flight`` at once, and the next batch is prepared (claimed, loaded, its calls sent) while this one
is written, so the stores' work and the API's latency overlap; commits keep their order. A local embedding
model embeds the next batch in one thread the same way (torch leaves the GIL while it computes: the model's
arithmetic overlaps the extraction and the stores' round trips, 10-30 % more documents a second). Then, per
document, every phase (``reindex.phases``: one object per store, built by ``Stores.phases``) writes its
result NEXT TO the live data (a Postgres transaction, a Qdrant slot, a graph pass); only when all of them
succeeded is the new data made live and the old removed. If anything fails, the new writes are dropped and
the document keeps its previous extracted data, points and graph exactly; it returns to ``indexed`` with the
failure recorded. One document's failure never touches another's data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from reindex_pipeline.db import documents as db
from reindex_pipeline.domain.fingerprints import (
    ALL_PHASES,
    EXTRACTION,
    GRAPH,
    VECTORS,
    Producers,
    SourceHashes,
    phase_fingerprints,
    phases_to_run,
)
from reindex_pipeline.domain.selection import (
    DocumentRow,
    Requester,
    RequesterRefused,
    Selection,
    acting_as,
    check_requester,
    select_documents,
)
from reindex_pipeline.embeddings import Embedder
from reindex_pipeline.graph import writer as graph_writer
from reindex_pipeline.graph.builder import ChunkText
from reindex_pipeline.graph.store import GraphStore
from reindex_pipeline.ingest.chunking import content_hash
from reindex_pipeline.llm.calls import Usage
from reindex_pipeline.reindex.extractors import ExtractionFailed, Extractor, ModelAnswer
from reindex_pipeline.reindex.phases import (
    DocumentPass,
    ExtractionPhase,
    GraphPhase,
    GraphResult,
    Phase,
    PhaseResult,
    VectorsPhase,
)
from reindex_pipeline.vectors import VectorIndex

__all__ = ["ALL_PHASES", "EXTRACTION", "GRAPH", "VECTORS", "DocumentOutcome", "ReindexRunner", "Stores"]

#: Documents per batch: one claim, one load, one embedding call for all of them.
BATCH_SIZE = 16


@dataclass
class DocumentOutcome:
    document_id: str
    ok: bool
    results: dict[str, PhaseResult] = field(default_factory=dict)  # phase run -> what it did
    unchanged: list[str] = field(default_factory=list)  # phases skipped: their fingerprint had not changed
    fingerprints: dict[str, str] = field(default_factory=dict)
    failed_phase: str | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)  # the model calls its extraction / graph entities cost

    @property
    def metadata(self) -> dict[str, dict[str, Any]]:
        """Phase run -> what the UI shows on its materialisation."""
        return {phase: result.metadata() for phase, result in self.results.items()}


@dataclass
class Stores:
    """What a run writes to. ``vectors`` / ``graph`` may be None when their phase is not selected."""

    connect: Callable[..., Any]  # AppDatabase.connect
    extractor: Extractor
    embedder: Embedder | None = None
    vectors: VectorIndex | None = None
    graph: GraphStore | None = None

    def phases(self, names: Iterable[str]) -> list[Phase]:
        """The phase objects of ``names``, in their order (extraction, vectors, graph), over these stores."""
        wanted, built = set(names), []
        if EXTRACTION in wanted:
            built.append(ExtractionPhase(self.extractor))
        if VECTORS in wanted:
            if self.vectors is None:
                raise ValueError("the vector phase needs a vector index (Stores.vectors)")
            built.append(VectorsPhase(self.vectors, self.producers().embedding_model))
        if GRAPH in wanted:
            if self.graph is None:
                raise ValueError("the graph phase needs a graph store (Stores.graph)")
            built.append(GraphPhase(self.graph))
        return built

    def producers(self) -> Producers:
        embedder = self.embedder
        model = f"{embedder.model}/{embedder.dimensions}" if embedder is not None else ""
        return Producers(extractor=self.extractor.identity, embedding_model=model)


def resolve_requester(conn, requester_id: str | None, operator_id: str | None) -> tuple[Requester, str]:
    """The requester of the run, or the deployment's operator for a UI backfill. Raises when refused.

    A person reindexes within their organisation; the operator (named or by default) acts for the deployment,
    across organisations, as the UI (whose partitions span them) and the restores of every organisation do."""
    if not requester_id:
        if not operator_id:
            raise RequesterRefused(
                "no requester: put requester_id in the run config, or set REINDEX_OPERATOR_USER_ID to an "
                "admin user id for UI backfills"
            )
        requester_id = operator_id
    return acting_as(check_requester(db.load_requester(conn, requester_id), requester_id), operator_id)


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
    einvoice: bytes | None = None  # the e-invoice XML preserved beside the pages, if any
    chunks: list[ChunkText] = field(default_factory=list)
    vectors: list[list[float]] | None = None
    embed_error: str | None = None
    answer: Future[ModelAnswer] | None = None  # the model's answer, when its calls were sent ahead


@dataclass
class _Batch:
    plans: dict[str, _Work]
    embedding: Future[None] | None = None  # the batch's embedding calls, when sent ahead


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
        send_ahead: bool = True,
    ):
        """``send_ahead=False``: remote models are called one call at a time, as each document is written, and a
        local model embeds each batch just before it is written (the ways before; kept to measure against)."""
        self.stores, self.run_id, self.log, self.force, self.batch_size = stores, run_id, log, force, batch_size
        self.dead_runs = dead_runs  # runs known to have ended: documents they left ``indexing`` are taken over
        self.phases = [p for p in ALL_PHASES if p in set(phases)]
        self._phases = stores.phases(self.phases)
        self.producers = stores.producers()
        self.remote = send_ahead and (stores.extractor.uses_llm or bool(getattr(stores.embedder, "remote", False)))
        # A local model embeds the next batch in a thread while this one is written (torch leaves the GIL
        # while it computes, so the model's arithmetic and the stores' round trips overlap).
        self.ahead = self.remote or (send_ahead and stores.embedder is not None and VECTORS in self.phases)

    def reindex(self, docs: list[DocumentRow]) -> Iterator[DocumentOutcome]:
        if not self.ahead:
            for start in range(0, len(docs), self.batch_size):
                batch = yield from self._prepare(docs[start : start + self.batch_size], None)
                yield from self._write(batch)
            return
        # The next batch's model calls are sent before this one is written. Remote models: a batch holds as many
        # documents as may be in flight. A local model: one thread, so one batch is embedded at a time.
        if self.remote:
            size = max(self.batch_size, self.stores.extractor.max_in_flight)
            pool = ThreadPoolExecutor(self.stores.extractor.max_in_flight + 1, thread_name_prefix="model-calls")
        else:
            size, pool = self.batch_size, ThreadPoolExecutor(1, thread_name_prefix="embedding")
        try:
            ahead: _Batch | None = None
            for start in range(0, len(docs), size):
                batch = yield from self._prepare(docs[start : start + size], pool)
                if ahead is not None:
                    yield from self._write(ahead)
                ahead = batch
            if ahead is not None:
                yield from self._write(ahead)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def reindex_document(self, doc: DocumentRow) -> DocumentOutcome:
        return next(iter(self.reindex([doc])))

    # -- one batch ---------------------------------------------------------------------------------------
    def _prepare(
        self, docs: list[DocumentRow], pool: ThreadPoolExecutor | None
    ) -> Generator[DocumentOutcome, None, _Batch]:
        """Plan, claim and load a batch, and start its model calls (in ``pool`` when given, else the
        embedding now); yields the outcomes of documents with nothing to do or no longer claimable."""
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
                return _Batch(plans)
            pages = db.load_pages_of(conn, list(plans))
            einvoices = db.load_einvoices_of(conn, list(plans))
            chunks = db.load_chunks_of(conn, list(plans))
        for doc_id, work in plans.items():
            work.pages = pages.get(doc_id, [])
            work.einvoice = einvoices.get(doc_id)
            work.chunks = [ChunkText(i, text, content_hash(text)) for i, text in chunks.get(doc_id, [])]
        batch = _Batch(plans)
        to_embed = [w for w in plans.values() if VECTORS in w.phases]
        if pool is None:
            self._embed(to_embed)
            return batch
        batch.embedding = pool.submit(self._embed, to_embed)
        if self.stores.extractor.uses_llm:
            for work in plans.values():
                fields, graph = EXTRACTION in work.phases, GRAPH in work.phases
                if fields or graph:
                    work.answer = pool.submit(self.stores.extractor.answer, work.pages, fields, graph, work.einvoice)
        return batch

    def _write(self, batch: _Batch) -> Iterator[DocumentOutcome]:
        """Each document of a prepared batch, all or nothing, in order; then the batch's graph cleanup."""
        if not batch.plans:
            return
        if batch.embedding is not None:
            batch.embedding.result()  # _embed records failures per document; it does not raise
        done: list[tuple[DocumentOutcome, graph_writer.Superseded | None]] = []
        with self.stores.connect(autocommit=True) as status, _Transactions(self.stores.connect) as transactions:
            for work in batch.plans.values():
                done.append(self._document(status, transactions, work))
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
            outcome.results[GRAPH].duration_s += share

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
    def _document(
        self, status, transactions: _Transactions, work: _Work
    ) -> tuple[DocumentOutcome, graph_writer.Superseded | None]:
        """The document's phases, all or nothing. Returns its outcome and, when its graph pass went live,
        what earlier passes left in the graph (cleaned for the whole batch by ``_clean_graph``)."""
        doc = work.doc
        outcome = DocumentOutcome(
            doc.id, ok=False, fingerprints=work.fingerprints, unchanged=[p for p in self.phases if p not in work.phases]
        )
        phases = [phase for phase in self._phases if phase.name in work.phases]
        results: dict[str, PhaseResult] = {}
        p = DocumentPass(
            doc, uuid.uuid4().hex[:16], None, work.pages, work.chunks, work.fingerprints, work.vectors, work.embed_error
        )
        step = "prepare"
        db.set_running(status, doc.id, self.run_id, work.phases)
        try:
            with transactions.transaction() as p.conn:
                for phase in phases:
                    step = phase.name
                    started = time.monotonic()
                    calls: dict[str, int] = {}
                    if p.answer is None and phase.name in (EXTRACTION, GRAPH):
                        p.answer = self._answer(work)
                        outcome.usage = p.answer.usage
                        calls = _usage_metadata(p.answer.usage)
                    result = results[phase.name] = phase.write(p)
                    result.calls = calls
                    result.timed(started)
                step = "commit"
                for phase in phases:  # in order: extracted data, then points, then the graph pass go live
                    started = time.monotonic()
                    phase.commit(p, results[phase.name])
                    results[phase.name].timed(started)
        except Exception as exc:  # one document's failure stays with that document
            if isinstance(exc, ExtractionFailed):
                outcome.usage = exc.usage  # its calls cost all the same
            self._drop(p, phases, results)
            outcome.failed_phase, outcome.error = step, f"{type(exc).__name__}: {exc}"
            db.release(
                status, doc.id, self.run_id, work.phases, {"phase": step, "error": outcome.error, "run_id": self.run_id}
            )
            self.log(f"document {doc.id} failed in {step}: {outcome.error}")
            return outcome, None
        state: dict[str, Any] = {}
        for phase in phases:
            state.update(phase.state(p, results[phase.name]))
        db.release(status, doc.id, self.run_id, work.phases, state=state)
        outcome.ok, outcome.results = True, results
        graph = results.get(GRAPH)
        return outcome, graph.superseded if isinstance(graph, GraphResult) else None

    def _answer(self, work: _Work) -> ModelAnswer:
        """The model's answer for the document: the one sent ahead, or asked now (offline rules)."""
        if work.answer is not None:
            return work.answer.result()
        return self.stores.extractor.answer(work.pages, EXTRACTION in work.phases, GRAPH in work.phases, work.einvoice)

    def _drop(self, p: DocumentPass, phases: list[Phase], results: dict[str, PhaseResult]) -> None:
        """Remove a failed pass from every store it reached (the Postgres transaction just rolls back)."""
        for phase in phases:
            try:
                phase.drop(p, results.get(phase.name))
            except Exception as exc:  # keep the original failure; say what could not be cleaned
                self.log(f"could not drop the failed {phase.name} pass {p.pass_id} of {p.doc.id}: {exc}")


class _Transactions:
    """One connection for the per-document transactions of a batch, each committed or rolled back on its own.
    A connection per document cost a connection's setup (~3 ms here) and a new server process each time. A
    connection that broke is closed and the next document gets a new one."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Any]]):
        self._connect = connect
        self._open: ExitStack | None = None
        self._conn: Any = None

    def __enter__(self) -> _Transactions:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The connection, in a transaction committed when the block ends, rolled back if it raises."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._close()
            self._open = ExitStack()
            self._conn = self._open.enter_context(self._connect())
        try:
            yield self._conn
        except BaseException:
            try:
                self._conn.rollback()
            except Exception:  # noqa: BLE001 (the connection is gone; the next document opens another)
                self._close()
            raise
        self._conn.commit()

    def _close(self) -> None:
        opened, self._open, self._conn = self._open, None, None
        if opened is not None:
            with suppress(Exception):  # closing a broken connection may raise; nothing is left to keep
                opened.close()


def _usage_metadata(usage: Usage) -> dict[str, int]:
    """A document's model calls in its phase's metadata (nothing when no call was made)."""
    if not usage.calls:
        return {}
    return {
        "model_calls": usage.calls,
        "tokens_in": usage.tokens_in,
        "tokens_out": usage.tokens_out,
        **({"retries": usage.retries} if usage.retries else {}),
    }
