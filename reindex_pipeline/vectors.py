"""Chunk embeddings in Qdrant, replaced per document without a moment of fewer points.

Point ids are deterministic: uuid5 of (document id, chunk index, embedding model, slot). Each
document has two slots; a pass writes the slot that is not live, then deletes the live one. So a
reader always finds at least the old pass's points, a failed pass is removed (``drop_pass``) leaving
the old points exactly as they were, and a retried pass overwrites its own ids (idempotent).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from qdrant_client import QdrantClient, models

POINT_NAMESPACE = uuid.UUID("0c6b8e4e-7f3a-4c1e-9a55-3b1f2d6a9e10")


def point_id(document_id: str, chunk_index: int, model: str, slot: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}/{chunk_index}/{model}/{slot}"))


def collection_name(base: str, model: str) -> str:
    """One collection per embedding model (dimensions differ between models)."""
    slug = "".join(c if c.isalnum() else "_" for c in model.lower()).strip("_")
    return f"{base}__{slug}"


@dataclass(frozen=True)
class ChunkPoint:
    chunk_index: int
    content_sha256: str
    vector: Sequence[float]


class VectorIndex:
    def __init__(self, client: QdrantClient, collection: str, model: str, dimensions: int):
        self.client, self.collection, self.model, self.dimensions = client, collection, model, dimensions

    def ensure_collection(self) -> None:
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.dimensions, distance=models.Distance.COSINE),
            )
            for field in ("document_id", "workspace_id", "owner_id", "pass_id"):
                self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.KEYWORD)

    def live_slot(self, document_id: str) -> int | None:
        points, _ = self.client.scroll(self.collection, scroll_filter=_doc(document_id), limit=1,
                                       with_payload=["slot"], with_vectors=False)
        return int(points[0].payload["slot"]) if points else None

    def write_pass(self, document: dict, points: list[ChunkPoint], pass_id: str) -> int:
        """Upsert the pass into the non-live slot; returns the slot written."""
        live = self.live_slot(document["document_id"])
        slot = 0 if live is None else 1 - live
        self.client.upsert(self.collection, wait=True, points=[
            models.PointStruct(
                id=point_id(document["document_id"], p.chunk_index, self.model, slot),
                vector=list(p.vector),
                payload={**document, "chunk_index": p.chunk_index, "content_sha256": p.content_sha256,
                         "model": self.model, "pass_id": pass_id, "slot": slot},
            ) for p in points
        ])
        return slot

    def commit_pass(self, document_id: str, pass_id: str) -> None:
        """Delete every point of the document that this pass did not write."""
        self.client.delete(self.collection, wait=True, points_selector=models.FilterSelector(filter=models.Filter(
            must=[_match("document_id", document_id)], must_not=[_match("pass_id", pass_id)])))

    def drop_pass(self, document_id: str, pass_id: str) -> None:
        self.client.delete(self.collection, wait=True, points_selector=models.FilterSelector(filter=models.Filter(
            must=[_match("document_id", document_id), _match("pass_id", pass_id)])))

    def count(self, document_id: str) -> int:
        return self.client.count(self.collection, count_filter=_doc(document_id), exact=True).count

    def points(self, document_id: str) -> list[models.Record]:
        records, _ = self.client.scroll(self.collection, scroll_filter=_doc(document_id), limit=10_000,
                                        with_payload=True, with_vectors=True)
        return sorted(records, key=lambda r: str(r.id))


def _match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _doc(document_id: str) -> models.Filter:
    return models.Filter(must=[_match("document_id", document_id)])
