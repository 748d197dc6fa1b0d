"""Build one document's lexical graph from its chunks and its entities (pure).

Entities come from the extracted fields (offline default, ``from_extraction``) or from an LLM's
structured output (``from_llm``, with OPENAI_API_KEY).

Entities: the vendor, the customer, the invoice (by number), the currency, each line item's product, the
invoice's dates (ISO, e.g. ``2024-03-01``) and amounts (plain decimal and currency, e.g. ``1234.50 EUR``).
Typed relations: vendor ISSUED invoice, invoice BILLED_TO customer, invoice INCLUDES product,
invoice PAID_IN currency, invoice DATED / DUE_ON date, invoice HAS_SUBTOTAL / HAS_TAX / HAS_TOTAL amount.
Dates and amounts are shared entities like the others: "every invoice of 2024-03-01", "every total of
1234.50 EUR" are one hop from them. A chunk MENTIONS an entity whose normalised name occurs in its text; an
entity no chunk names is attached to the first chunk, so every entity hangs off the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel
from pydantic import Field as PydanticField

from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.graph.keys import chunk_node_id, entity_key, normalise_name
from reindex_pipeline.graph.queries import RELATION_TYPES
from reindex_pipeline.invoices.items import plausible_item
from reindex_pipeline.invoices.parties import org_key, plausible_party


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


class GraphEntity(BaseModel):
    name: str
    type: str = PydanticField(
        description="organization, invoice, receipt, product, currency, date (ISO 8601), "
        "amount (plain decimal then ISO currency, e.g. 1234.50 EUR), person, ..."
    )


class GraphRelation(BaseModel):
    source: str = PydanticField(description="name of an entity in `entities`")
    relation: Literal[RELATION_TYPES]  # type: ignore[valid-type]
    target: str = PydanticField(description="name of an entity in `entities`")


class GraphExtraction(BaseModel):
    """What an LLM returns for a document's graph (the OpenAI structured-output schema)."""

    entities: list[GraphEntity] = PydanticField(default_factory=list)
    relations: list[GraphRelation] = PydanticField(default_factory=list)


Relation = tuple[str, Entity, Entity]


def _entity(kind: str, name: str | None) -> Entity | None:
    """Organisations are keyed without their legal form and punctuation, so "ACME GmbH", "Acme Gmbh." and
    "ACME" are one entity; other entities by their normalised name."""
    if not name or not normalise_name(name):
        return None
    if kind.casefold() in ("organization", "organisation", "company"):
        return Entity(entity_key("organization", org_key(name) or name), name, "organization")
    return Entity(entity_key(kind, name), name, kind)


def _amount(value: str | None, currency: str | None) -> Entity | None:
    """``1234.50 EUR``: the extracted plain decimal and the document's currency, so equal sums in different
    currencies stay apart."""
    if not value:
        return None
    return _entity("amount", f"{value} {currency}" if currency else value)


def from_extraction(
    extraction: Extraction, document_id: str | None = None, filename: str | None = None
) -> tuple[list[Entity], list[Relation]]:
    """The offline default: entities and relations read off the extracted fields.

    The invoice is keyed by its issuer and its number (two issuers' invoice "1001" are two invoices). One whose
    number was not found is still an entity, keyed by its document and named by its file with a note that
    the number is missing, so its vendor, customer, dates and amounts stay linked to it. A party that reads
    as a label or an address ("Address", "Ship To", "Fremont CA 94538") is no entity, and only line items
    that are products or services become products (not "BTW 21%" or "Exclusief BTW")."""
    vendor_name = extraction.vendor_name if extraction.vendor_name and plausible_party(extraction.vendor_name) else None
    customer_name = extraction.customer_name
    customer_name = customer_name if customer_name and plausible_party(customer_name) else None
    vendor = _entity("organization", vendor_name)
    customer = _entity("organization", customer_name)
    invoice = None
    kind = extraction.document_type if extraction.document_type in ("invoice", "receipt") else "document"
    number = (extraction.invoice_number or "").strip()
    if number and normalise_name(number):
        issuer = org_key(vendor_name) if vendor_name else ""
        numbered = kind if kind != "document" else "invoice"  # a document with an invoice number is an invoice
        invoice = Entity(entity_key(numbered, f"{issuer} {number}"), number, numbered)
    elif document_id:
        name = f"{filename or document_id} (no invoice number found)"
        invoice = Entity(entity_key(kind, f"document {document_id}"), name, kind)
    currency = _entity("currency", extraction.currency)
    products = [
        p
        for p in (
            _entity("product", item.description) for item in extraction.line_items if plausible_item(item.description)
        )
        if p
    ]
    facts = {
        "DATED": _entity("date", extraction.invoice_date),
        "DUE_ON": _entity("date", extraction.due_date),
        "HAS_SUBTOTAL": _amount(extraction.subtotal, extraction.currency),
        "HAS_TAX": _amount(extraction.tax, extraction.currency),
        "HAS_TOTAL": _amount(extraction.total, extraction.currency),
    }
    relations: list[Relation] = []
    for rel_type, source, target in (
        ("ISSUED", vendor, invoice),
        ("BILLED_TO", invoice, customer),
        ("PAID_IN", invoice, currency),
        *(("INCLUDES", invoice, p) for p in products),
        *((rel_type, invoice, fact) for rel_type, fact in facts.items()),
    ):
        if source is not None and target is not None:
            relations.append((rel_type, source, target))
    entities = (vendor, customer, invoice, currency, *products, *facts.values())
    return [e for e in entities if e is not None], relations


def from_llm(result: GraphExtraction) -> tuple[list[Entity], list[Relation]]:
    """Entities and relations an LLM named; relations to entities it did not list are dropped."""
    entities = [e for e in (_entity(x.type, x.name) for x in result.entities) if e is not None]
    by_name = {normalise_name(e.name): e for e in entities}
    relations = [
        (r.relation, by_name[normalise_name(r.source)], by_name[normalise_name(r.target)])
        for r in result.relations
        if normalise_name(r.source) in by_name and normalise_name(r.target) in by_name
    ]
    return entities, relations


def build_document_graph(
    document_id: str, pass_id: str, chunks: list[ChunkText], entities: list[Entity], relations: list[Relation]
) -> DocumentGraph:
    """Chunks, the chunks' mentions of ``entities``, and ``relations``, for one pass of one document."""
    graph = DocumentGraph()
    node_ids = {c.chunk_index: chunk_node_id(document_id, c.chunk_index, pass_id) for c in chunks}
    graph.chunks = [
        {
            "id": node_ids[c.chunk_index],
            "chunk_index": c.chunk_index,
            "text": c.content,
            "content_sha256": c.content_sha256,
        }
        for c in chunks
    ]
    if not chunks:
        return graph
    normalised_text = {c.chunk_index: normalise_name(c.content) for c in chunks}
    for entity in {e.key: e for e in entities}.values():
        needle = normalise_name(entity.name)
        hits = [i for i, text in normalised_text.items() if needle in text] or [chunks[0].chunk_index]
        graph.mentions += [
            {"chunk_id": node_ids[i], "key": entity.key, "name": entity.name, "type": entity.type} for i in hits
        ]
    seen: set[tuple[str, str, str]] = set()
    for rel_type, source, target in relations:
        if source.key != target.key and (rel_type, source.key, target.key) not in seen:
            seen.add((rel_type, source.key, target.key))
            graph.relations.setdefault(rel_type, []).append({"source": source.key, "target": target.key})
    return graph
