"""Chunk embeddings in Qdrant, replaced per document without a moment of fewer points.

Point ids are deterministic: uuid5 of (document id, chunk index, embedding model, slot). Each
document has two slots; a pass writes the slot that is not live, then deletes the live one. So a
reader always finds at least the old pass's points, a failed pass is removed (``drop_pass``) leaving
the old points exactly as they were, and a retried pass overwrites its own ids (idempotent).

Each point holds two vectors: the chunk's dense embedding (the collection's default vector) and a lexical
sparse vector of its words (``text``, weighted by IDF at query time), so readers can search both at once
(``search``: hybrid, fused by weighted reciprocal rank).

Every point carries ``pass_points`` (how many points its pass wrote), so the live slot and its ids are
found by retrieving two ids: a document's vector work touches only its own points and never filters
the collection (local mode filters by scanning every point). Purges and access changes, which are
batched, do filter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from qdrant_client import QdrantClient, models

from reindex_pipeline.domain.fingerprints import VECTOR_LAYOUT
from reindex_pipeline.lexical import document_terms, query_terms

POINT_NAMESPACE = uuid.UUID("0c6b8e4e-7f3a-4c1e-9a55-3b1f2d6a9e10")
#: The sparse vector of a point's words.
LEXICAL = "text"


def point_id(document_id: str, chunk_index: int, model: str, slot: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}/{chunk_index}/{model}/{slot}"))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def collection_name(base: str, model: str) -> str:
    """One collection per embedding model (dimensions differ between models) and point layout."""
    return f"{base}__{_slug(model)}__{_slug(VECTOR_LAYOUT)}"


@dataclass(frozen=True)
class ChunkPoint:
    chunk_index: int
    content_sha256: str
    vector: Sequence[float]
    text: str = ""


@dataclass
class VectorPass:
    """One document's pass: the slot it wrote, its ids, and the ids it replaces when it goes live.

    ``stale is None`` means the live points predate ``pass_points`` and are found by a filter instead."""

    document_id: str
    pass_id: str
    slot: int
    written: list[str] = field(default_factory=list)
    stale: list[str] | None = field(default_factory=list)


class VectorIndex:
    def __init__(self, client: QdrantClient, collection: str, model: str, dimensions: int):
        self.client, self.collection, self.model, self.dimensions = client, collection, model, dimensions

    def ensure_collection(self) -> None:
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.dimensions, distance=models.Distance.COSINE),
                sparse_vectors_config={LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            for name in ("document_id", "workspace_id", "owner_id", "pass_id"):  # no-ops in local mode
                self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.KEYWORD)

    def ids(self, document_id: str, slot: int, count: int, start: int = 0) -> list[str]:
        return [point_id(document_id, i, self.model, slot) for i in range(start, count)]

    def live_slots(self, document_id: str) -> dict[int, int | None]:
        """slot -> how many points its pass wrote (None: written before passes recorded it), for slots
        whose first point exists. Two id lookups, whatever the size of the collection."""
        heads = self.client.retrieve(
            self.collection,
            ids=[point_id(document_id, 0, self.model, s) for s in (0, 1)],
            with_payload=["slot", "pass_points"],
            with_vectors=False,
        )
        return {int(p.payload["slot"]): p.payload.get("pass_points") for p in heads}

    def plan_pass(self, document_id: str, points: int, pass_id: str) -> VectorPass:
        """Where a pass of ``points`` points goes: the slot that is not live, and what it will replace."""
        live = self.live_slots(document_id)
        if len(live) == 1:
            ((old_slot, old_count),) = live.items()
            slot = 1 - old_slot
            stale = None if old_count is None else self.ids(document_id, old_slot, old_count)
        else:
            # No live pass yet, or both slots left by a pass that died between write and commit:
            # write slot 0 and drop slot 1 and whatever of slot 0 lies past this pass.
            slot = 0
            stale = (
                None
                if None in live.values()
                else (
                    self.ids(document_id, 1, live.get(1) or 0)
                    + self.ids(document_id, 0, live.get(0) or 0, start=points)
                )
            )
        return VectorPass(document_id, pass_id, slot, self.ids(document_id, slot, points), stale)

    def write_pass(self, vector_pass: VectorPass, document: dict, points: list[ChunkPoint]) -> None:
        """Upsert the pass into its slot; nothing a reader sees goes away yet."""
        if not points:
            return
        self.client.upsert(
            self.collection,
            wait=True,
            points=[
                models.PointStruct(
                    id=vector_pass.written[n],
                    vector={"": list(p.vector), LEXICAL: _sparse(*document_terms(p.text))},
                    payload={
                        **document,
                        "chunk_index": p.chunk_index,
                        "content_sha256": p.content_sha256,
                        "model": self.model,
                        "pass_id": vector_pass.pass_id,
                        "slot": vector_pass.slot,
                        "pass_points": len(points),
                    },
                )
                for n, p in enumerate(points)
            ],
        )

    def commit_pass(self, vector_pass: VectorPass) -> None:
        """The pass is live: delete the points it replaces."""
        if vector_pass.stale is None:
            self.client.delete(
                self.collection,
                wait=True,
                points_selector=models.FilterSelector(
                    filter=models.Filter(
                        must=[_match("document_id", vector_pass.document_id)],
                        must_not=[_match("pass_id", vector_pass.pass_id)],
                    )
                ),
            )
        elif vector_pass.stale:
            self.client.delete(
                self.collection, wait=True, points_selector=models.PointIdsList(points=vector_pass.stale)
            )

    def drop_pass(self, vector_pass: VectorPass) -> None:
        if vector_pass.written:
            self.client.delete(
                self.collection, wait=True, points_selector=models.PointIdsList(points=vector_pass.written)
            )

    def live_points(self, document_id: str) -> list[models.Record]:
        """The points of the document's live pass, found by id (no filter)."""
        live = self.live_slots(document_id)
        out: list[models.Record] = []
        for slot, count in live.items():
            ids = self.ids(document_id, slot, count if count is not None else 10_000)
            out += self.client.retrieve(self.collection, ids=ids, with_payload=True, with_vectors=False)
        return out

    def count(self, document_id: str) -> int:
        """Every point of the document, by filter (tests and the store-wide audit)."""
        return self.client.count(self.collection, count_filter=_doc(document_id), exact=True).count

    def points(self, document_id: str) -> list[models.Record]:
        records, _ = self.client.scroll(
            self.collection, scroll_filter=_doc(document_id), limit=10_000, with_payload=True, with_vectors=True
        )
        return sorted(records, key=lambda r: str(r.id))


# -- what readers use: an alias that only ever points at a complete collection ---------------------------
def alias_target(client: QdrantClient, alias: str) -> str | None:
    for a in client.get_aliases().aliases:
        if a.alias_name == alias:
            return a.collection_name
    return None


def publish(client: QdrantClient, alias: str, collection: str, documents_missing: int) -> str:
    """Point ``alias`` at ``collection`` when no eligible document is missing from it (one atomic alias
    update: a reader sees the old complete collection, then the new complete one). Returns what happened."""
    current = alias_target(client, alias)
    if current == collection:
        return f"readers use {collection}"
    if documents_missing:
        where = f"stay on {current}" if current else "have no collection yet"
        return f"readers {where}: {documents_missing} eligible documents are not yet in {collection}"
    actions: list[models.AliasOperations] = []
    if current is not None:
        actions.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    actions.append(
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias))
    )
    client.update_collection_aliases(change_aliases_operations=actions)
    return f"readers switched from {current} to {collection}" if current else f"readers now use {collection}"


def drop_unpublished(client: QdrantClient, alias: str) -> list[str]:
    """Drop every model collection under ``alias`` that readers do not use (after a model switch, on request)."""
    current = alias_target(client, alias)
    if current is None:
        raise RuntimeError(f"no collection is published under {alias!r} yet: nothing is dropped")
    dropped = [c for c in model_collections(client, alias) if c != current]
    for collection in dropped:
        client.delete_collection(collection)
    return dropped


# -- many documents at once (purge, access changes): batched filters over every model's collection ------
def model_collections(client: QdrantClient, base: str) -> list[str]:
    """Every per-model collection of ``base`` (the live one and any left from an earlier model)."""
    return sorted(c.name for c in client.get_collections().collections if c.name.startswith(f"{base}__"))


def purge_documents(client: QdrantClient, base: str, document_ids: list[str]) -> None:
    """Delete every point of these documents in every model's collection (idempotent)."""
    for collection in model_collections(client, base):
        client.delete(collection, wait=True, points_selector=models.FilterSelector(filter=_docs(document_ids)))


def set_access(client: QdrantClient, base: str, documents: Iterable[dict]) -> None:
    """Rewrite ``owner_id`` / ``workspace_id`` in the payload of these documents' points; no vector changes.

    ``documents``: ``{"id", "owner_id", "workspace_id"}`` each; grouped so documents that moved to the
    same place share one filtered update."""
    groups: dict[tuple[str | None, str], list[str]] = {}
    for doc in documents:
        groups.setdefault((doc["owner_id"], doc["workspace_id"]), []).append(doc["id"])
    for collection in model_collections(client, base):
        for (owner_id, workspace_id), ids in groups.items():
            client.set_payload(
                collection, payload={"owner_id": owner_id, "workspace_id": workspace_id}, points=_docs(ids), wait=True
            )


def search(
    client: QdrantClient,
    collection: str,
    dense: Sequence[float],
    text: str,
    limit: int = 10,
    query_filter: models.Filter | None = None,
    lexical_weight: float = 2.0,
) -> list[models.ScoredPoint]:
    """Hybrid search: the dense neighbours of ``dense`` and the lexical matches of ``text``, fused by
    reciprocal rank with the lexical side weighted ``lexical_weight`` (names and numbers decide)."""
    candidates = max(limit * 4, 20)
    prefetch = [
        models.Prefetch(query=list(dense), limit=candidates, filter=query_filter),
        models.Prefetch(query=_sparse(*query_terms(text)), using=LEXICAL, limit=candidates, filter=query_filter),
    ]
    fusion = models.RrfQuery(rrf=models.Rrf(weights=[1.0, lexical_weight]))
    return client.query_points(collection, prefetch=prefetch, query=fusion, limit=limit, with_payload=True).points


def _sparse(indices: list[int], values: list[float]) -> models.SparseVector:
    return models.SparseVector(indices=indices, values=values)


def _match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _doc(document_id: str) -> models.Filter:
    return models.Filter(must=[_match("document_id", document_id)])


def _docs(document_ids: list[str]) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="document_id", match=models.MatchAny(any=document_ids))])
