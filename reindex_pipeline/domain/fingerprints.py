"""What produced each derived index of a document, as one hash per phase (pure).

A phase's fingerprint covers everything its output depends on:

- extraction: the pages' text and the extractor (name and version);
- vector_indexing: the chunks' text, the embedding model (name and dimensions) and :data:`VECTOR_LAYOUT`;
- graphrag_indexing: the chunks' and pages' text, the extractor (the graph is built from its output)
  and :data:`GRAPH_RULES_VERSION`.

A "stale only" reindex skips a phase whose fingerprint equals the one recorded when the phase last
succeeded; the fingerprint is also the Dagster data version of the partition's materialization.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

EXTRACTION, VECTORS, GRAPH = "extraction", "vector_indexing", "graphrag_indexing"
ALL_PHASES = (EXTRACTION, VECTORS, GRAPH)

#: What a chunk's point holds besides its payload; bump when that changes (a new collection is built).
VECTOR_LAYOUT = "hybrid-1"  # the dense embedding and a lexical sparse vector (reindex_pipeline.lexical)

#: Bump when the graph building rules (entities, relations, mentions) change.
#: 3: organisations keyed without legal form; 4: dates and amounts as entities; 5: invoices keyed by issuer and
#: number, no label or address as a party, no tax or subtotal row as a product
GRAPH_RULES_VERSION = "graph-5"


@dataclass(frozen=True)
class Producers:
    """The code and models that produce each phase (also the assets' Dagster code versions)."""

    extractor: str  # "name@version"
    embedding_model: str  # "model/dimensions"
    graph_rules: str = GRAPH_RULES_VERSION
    vector_layout: str = VECTOR_LAYOUT

    def code_version(self, phase: str) -> str:
        return {
            EXTRACTION: self.extractor,
            VECTORS: f"{self.embedding_model}+{self.vector_layout}",
            GRAPH: f"{self.graph_rules}+{self.extractor}",
        }[phase]


@dataclass(frozen=True)
class SourceHashes:
    """sha256 of a document's pages and of its chunks, as stored (computed by the database)."""

    pages: str
    chunks: str


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def phase_fingerprints(source: SourceHashes, producers: Producers) -> dict[str, str]:
    return {
        EXTRACTION: _hash(EXTRACTION, source.pages, producers.extractor),
        VECTORS: _hash(VECTORS, source.chunks, producers.embedding_model, producers.vector_layout),
        GRAPH: _hash(GRAPH, source.chunks, source.pages, producers.extractor, producers.graph_rules),
    }


def phases_to_run(
    wanted: list[str], current: dict[str, str], recorded: dict[str, str | None], force: bool
) -> list[str]:
    """The wanted phases whose output is out of date (all of them when ``force``), in phase order."""
    return [p for p in ALL_PHASES if p in wanted and (force or recorded.get(p) != current[p])]
