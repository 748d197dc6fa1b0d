"""Build one document's lexical graph from its chunks and extracted fields (pure, offline default).

Entities: the vendor, the customer, the invoice (by number), the currency and each line item's product.
Typed relations: vendor ISSUED invoice, invoice BILLED_TO customer, invoice INCLUDES product,
invoice PAID_IN currency. A chunk MENTIONS an entity whose normalised name occurs in its text; an
entity no chunk names is attached to the first chunk, so every entity hangs off the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reindex_pipeline.graph.keys import chunk_node_id, entity_key, normalise_name
from reindex_pipeline.reindex.extraction import Extraction


@dataclass(frozen=True)
class ChunkText:
    chunk_index: int
    content: str
    content_sha256: str


@dataclass(frozen=True)
class Entity:
    key: str
    name: str
    type: str


@dataclass
class DocumentGraph:
    chunks: list[dict] = field(default_factory=list)
    mentions: list[dict] = field(default_factory=list)
    relations: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def entity_count(self) -> int:
        return len({m["key"] for m in self.mentions})


def _entity(kind: str, name: str | None) -> Entity | None:
    if not name or not normalise_name(name):
        return None
    return Entity(entity_key(kind, name), name, kind)


def build_document_graph(document_id: str, pass_id: str, chunks: list[ChunkText],
                         extraction: Extraction) -> DocumentGraph:
    graph = DocumentGraph()
    node_ids = {c.chunk_index: chunk_node_id(document_id, c.chunk_index, pass_id) for c in chunks}
    graph.chunks = [{"id": node_ids[c.chunk_index], "chunk_index": c.chunk_index, "text": c.content,
                     "content_sha256": c.content_sha256} for c in chunks]
    vendor = _entity("organization", extraction.vendor_name)
    customer = _entity("organization", extraction.customer_name)
    invoice = _entity(extraction.document_type, extraction.invoice_number)
    currency = _entity("currency", extraction.currency)
    products = [p for p in (_entity("product", item.description) for item in extraction.line_items) if p]
    entities = {e.key: e for e in [vendor, customer, invoice, currency, *products] if e is not None}
    if not chunks:
        return graph
    normalised_text = {c.chunk_index: normalise_name(c.content) for c in chunks}
    for entity in entities.values():
        needle = normalise_name(entity.name)
        hits = [i for i, text in normalised_text.items() if needle in text] or [chunks[0].chunk_index]
        graph.mentions += [{"chunk_id": node_ids[i], "key": entity.key, "name": entity.name, "type": entity.type}
                           for i in hits]

    def relate(rel_type: str, source: Entity | None, target: Entity | None) -> None:
        if source is not None and target is not None and source.key != target.key:
            graph.relations.setdefault(rel_type, []).append({"source": source.key, "target": target.key})

    relate("ISSUED", vendor, invoice)
    relate("BILLED_TO", invoice, customer)
    relate("PAID_IN", invoice, currency)
    for product in {p.key: p for p in products}.values():
        relate("INCLUDES", invoice, product)
    return graph
