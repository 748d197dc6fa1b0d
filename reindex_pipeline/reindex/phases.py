"""The store phases of a document's reindex, one class each, all of one shape.

A phase ``plan``s where its pass goes, ``write``s it next to the live data (nothing a reader sees changes),
``commit``s it (the pass goes live, what it replaces goes) or ``drop``s it (the live data stays exactly as it
was), and says what the document's row records of it (``state``). ``write`` returns the phase's typed
result, whose ``metadata()`` is what the UI shows on the partition's materialisation.

- ``ExtractionPhase``: extracted fields and line items in the document's Postgres transaction;
- ``VectorsPhase``: the chunks' points in the document's free Qdrant slot;
- ``GraphPhase``: the document's graph pass beside its live one (Neo4j / FalkorDB).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from reindex_pipeline.db import documents as db
from reindex_pipeline.domain.fingerprints import EXTRACTION, GRAPH, VECTORS
from reindex_pipeline.domain.selection import DocumentRow
from reindex_pipeline.graph import writer as graph_writer
from reindex_pipeline.graph.builder import ChunkText, build_document_graph, from_extraction, from_llm
from reindex_pipeline.graph.store import GraphStore
from reindex_pipeline.reindex.extractors import Extractor, ModelAnswer
from reindex_pipeline.vectors import ChunkPoint, VectorIndex, VectorPass


@dataclass
class DocumentPass:
    """One document's pass through its phases: its inputs, the model's answer, and the Postgres transaction
    the extraction writes in (committed by the extraction phase, rolled back if anything fails)."""

    doc: DocumentRow
    pass_id: str
    conn: Any
    pages: list[str]
    chunks: list[ChunkText]
    fingerprints: dict[str, str]
    vectors: list[list[float]] | None = None
    embed_error: str | None = None
    answer: ModelAnswer | None = None


@dataclass
class PhaseResult:
    """What a phase did for a document. Fields after ``duration_s`` are the phase's own."""

    duration_s: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)  # model calls, tokens (nothing offline)

    #: fields kept out of the metadata: how the phase finds its pass again
    internal: ClassVar[frozenset[str]] = frozenset({"calls", "duration_s"})

    def metadata(self) -> dict[str, Any]:
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.internal}
        return {**own, **self.calls, "duration_s": round(self.duration_s, 4)}

    def timed(self, started: float) -> None:
        self.duration_s += time.monotonic() - started


@dataclass
class ExtractionResult(PhaseResult):
    fields: int = 0
    line_items: int = 0
    extractor: str = ""
    extractor_version: str = ""
    document_type: str = ""
    preview: str = ""


@dataclass
class VectorsResult(PhaseResult):
    points: int = 0
    model: str = ""
    collection: str = ""
    slot: int = 0
    vector_pass: VectorPass | None = None

    internal: ClassVar[frozenset[str]] = PhaseResult.internal | {"vector_pass"}


@dataclass
class GraphResult(PhaseResult):
    chunks: int = 0
    entities: int = 0
    relations: int = 0
    relation_types: list[str] = field(default_factory=list)
    source: str = ""
    superseded: graph_writer.Superseded | None = None  # what earlier passes left, once this one is live

    internal: ClassVar[frozenset[str]] = PhaseResult.internal | {"superseded"}


class Phase(Protocol):
    name: ClassVar[str]

    def write(self, p: DocumentPass) -> PhaseResult:
        """Plan the pass and write it next to the live data."""

    def commit(self, p: DocumentPass, result: PhaseResult) -> None:
        """Make the pass live."""

    def drop(self, p: DocumentPass, result: PhaseResult | None) -> None:
        """Remove what a failed pass wrote (``result`` None: its write did not return)."""

    def state(self, p: DocumentPass, result: PhaseResult) -> dict[str, Any]:
        """What the document's row records once the pass is live (its fingerprint, where it lives)."""


class ExtractionPhase:
    name: ClassVar[str] = EXTRACTION

    def __init__(self, extractor: Extractor):
        self.extractor = extractor

    def write(self, p: DocumentPass) -> ExtractionResult:
        extraction = p.answer.extraction if p.answer else None
        if extraction is None:
            raise RuntimeError("the extractor returned no extraction")
        name, version = self.extractor.name, self.extractor.recorded_version
        n_fields, items = db.replace_extracted(p.conn, p.doc.id, extraction, name, version)
        preview = ", ".join(f"{k}={v}" for k, v in list(extraction.fields().items())[:4])
        return ExtractionResult(
            fields=n_fields,
            line_items=items,
            extractor=name,
            extractor_version=version,
            document_type=extraction.document_type,
            preview=preview,
        )

    def commit(self, p: DocumentPass, result: PhaseResult) -> None:
        assert p.answer is not None and p.answer.extraction is not None
        db.mark_extracted(p.conn, p.doc.id, p.answer.extraction, self.extractor.name, self.extractor.recorded_version)
        p.conn.commit()  # extracted data goes live

    def drop(self, p: DocumentPass, result: PhaseResult | None) -> None:
        """Nothing to do: the document's transaction rolls back."""

    def state(self, p: DocumentPass, result: PhaseResult) -> dict[str, Any]:
        return {"extraction_fingerprint": p.fingerprints[EXTRACTION]}


class VectorsPhase:
    name: ClassVar[str] = VECTORS

    def __init__(self, index: VectorIndex, embedding_model: str):
        self.index, self.embedding_model = index, embedding_model
        self._planned: dict[str, VectorPass] = {}  # pass id -> its vector pass, until it is committed or dropped

    def write(self, p: DocumentPass) -> VectorsResult:
        vector_pass = self._planned[p.pass_id] = self.index.plan_pass(p.doc.id, len(p.chunks), p.pass_id)
        if p.embed_error is not None:
            raise RuntimeError(p.embed_error)
        payload = {"document_id": p.doc.id, "workspace_id": p.doc.workspace_id, "owner_id": p.doc.owner_id}
        points = [
            ChunkPoint(c.chunk_index, c.content_sha256, v, c.content)
            for c, v in zip(p.chunks, p.vectors or [], strict=True)
        ]
        self.index.write_pass(vector_pass, payload, points)
        return VectorsResult(
            points=len(points),
            model=self.index.model,
            collection=self.index.collection,
            slot=vector_pass.slot,
            vector_pass=vector_pass,
        )

    def commit(self, p: DocumentPass, result: PhaseResult) -> None:
        self.index.commit_pass(self._planned.pop(p.pass_id))

    def drop(self, p: DocumentPass, result: PhaseResult | None) -> None:
        planned = self._planned.pop(p.pass_id, None)
        if planned is not None:
            self.index.drop_pass(planned)

    def state(self, p: DocumentPass, result: PhaseResult) -> dict[str, Any]:
        assert isinstance(result, VectorsResult) and result.vector_pass is not None
        return {
            "vectors_fingerprint": p.fingerprints[VECTORS],
            "vector_points": len(result.vector_pass.written),
            "vector_collection": self.index.collection,
            "embedding_model": self.embedding_model,
        }


class GraphPhase:
    name: ClassVar[str] = GRAPH

    def __init__(self, store: GraphStore):
        self.store = store

    def write(self, p: DocumentPass) -> GraphResult:
        answer = p.answer
        if answer is None:
            raise RuntimeError("the extractor returned no answer")
        if answer.graph is not None:
            entities, relations = from_llm(answer.graph)
        elif answer.extraction is not None:
            entities, relations = from_extraction(answer.extraction, p.doc.id, p.doc.filename)
        else:
            raise RuntimeError("the extractor returned neither graph entities nor an extraction")
        graph = build_document_graph(p.doc.id, p.pass_id, p.chunks, entities, relations)
        graph_writer.write_pass(self.store, p.doc.id, p.pass_id, graph)
        return GraphResult(
            chunks=len(graph.chunks),
            entities=graph.entity_count,
            relations=sum(len(r) for r in graph.relations.values()),
            relation_types=sorted(graph.relations),
            source="llm" if answer.graph is not None else "extracted_fields",
        )

    def commit(self, p: DocumentPass, result: PhaseResult) -> None:
        assert isinstance(result, GraphResult)
        properties = {"filename": p.doc.filename, "workspace_id": p.doc.workspace_id, "owner_id": p.doc.owner_id or ""}
        result.superseded = graph_writer.go_live(self.store, p.doc.id, p.pass_id, properties, result.relation_types)

    def drop(self, p: DocumentPass, result: PhaseResult | None) -> None:
        graph_writer.drop_pass(self.store, p.doc.id, p.pass_id)

    def state(self, p: DocumentPass, result: PhaseResult) -> dict[str, Any]:
        return {"graph_fingerprint": p.fingerprints[GRAPH], "graph_pass_id": p.pass_id}
