"""A demo corpus on the session's real stores, and the ways tests look into them (shared by test modules)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import psycopg

from reindex_pipeline.db import documents as db
from reindex_pipeline.defs.ocr import preserved_ocr_output
from reindex_pipeline.defs.reindex import build_reindex_asset
from reindex_pipeline.demo.corpus import build_users
from reindex_pipeline.embeddings import EmbeddingModel, LocalEmbedder
from reindex_pipeline.graph import queries
from reindex_pipeline.graph.store import FalkorGraph
from reindex_pipeline.graph.writer import document_slice
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore, ReindexPolicy
from reindex_pipeline.vectors import VectorIndex, collection_name

SEED = 7
USERS = {u.username: u for u in build_users(SEED)}
ASSET = build_reindex_asset(max_documents_per_run=100)


class FailingEmbeddingModel(EmbeddingModel):
    """Fault injection at the model boundary: the real embedder, except for one document's text."""

    poison: str = ""

    def embedder(self):
        real, poison = LocalEmbedder(self.batch_size), self.poison

        class Poisoned:
            model, dimensions = real.model, real.dimensions

            def embed(self, texts):
                if any(poison in t for t in texts):
                    raise ConnectionError("embedding service dropped the connection")
                return real.embed(texts)

        return Poisoned()


class FailingGraphDatabase(GraphDatabase):
    """Fault injection at the store boundary: a real FalkorDB whose relation writes fail for one document."""

    poison_document: str = ""
    fail_cleanup: bool = False  # the batch cleanup of earlier passes fails (after the new passes went live)

    @contextmanager
    def open(self):
        with super().open() as store:
            real_run, poison, fail_cleanup = store.run, self.poison_document, self.fail_cleanup

            def run(statement, params=None):
                if "MERGE (a)-[r:" in statement and (params or {}).get("document_id") == poison:
                    raise RuntimeError("graph write failed mid-pass")
                if fail_cleanup and statement == queries.DELETE_STALE_CHUNKS:
                    raise ConnectionError("graph connection lost during cleanup")
                return real_run(statement, params)

            store.run = run
            yield store


@dataclass
class Env:
    db_url: str
    graph_name: str
    collection: str
    instance: dg.DagsterInstance
    doc_ids: list[str]

    def resources(
        self, version: str = "rules-1.0", operator: str | None = None, embeddings=None, graph=None, extractor=None
    ):
        return {
            "app_db": AppDatabase(url=self.db_url),
            "qdrant": QdrantStore(path=os.environ["QDRANT_PATH"], collection=self.collection),
            "graph": graph or GraphDatabase(falkordb_port=int(os.environ["FALKORDB_PORT"]), graph_name=self.graph_name),
            "extractor": extractor or Extractor(version=version),
            "embeddings": embeddings or EmbeddingModel(),
            "reindex_policy": ReindexPolicy(operator_user_id=operator),
        }

    def run(self, keys: list[str] | None = None, raise_on_error: bool = True, **config) -> dg.ExecuteInProcessResult:
        keys = keys or self.doc_ids
        resources = config.pop("resources", None) or self.resources()
        return dg.materialize(
            [ASSET, preserved_ocr_output],
            selection=[ASSET],
            instance=self.instance,
            resources=resources,
            run_config={"ops": {"reindex_documents": {"config": config}}},
            raise_on_error=raise_on_error,
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        )

    def vectors(self) -> VectorIndex:
        client = QdrantStore(path=os.environ["QDRANT_PATH"]).client()
        return VectorIndex(client, collection_name(self.collection, "all-MiniLM-L6-v2"), "all-MiniLM-L6-v2", 384)

    @contextmanager
    def graph(self) -> Iterator[FalkorGraph]:
        store = FalkorGraph("127.0.0.1", int(os.environ["FALKORDB_PORT"]), graph=self.graph_name)
        try:
            yield store
        finally:
            store.close()

    def docs(self, where: str = "TRUE", params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(
                f"SELECT id::text, owner_id::text, workspace_id::text, index_status FROM documents "  # noqa: S608
                f"WHERE {where} ORDER BY created_at",
                params,
            ).fetchall()

    def eligible(self, owner: str | None = None) -> list[str]:
        rows = self.docs("convert_status = 'converted' AND index_status = 'indexed' AND deleted_at IS NULL")
        return [r[0] for r in rows if owner is None or r[1] == owner]

    def snapshot(self, document_id: str) -> dict:
        with psycopg.connect(self.db_url) as conn:
            derived = db.extracted_snapshot(conn, document_id)
            ocr = conn.execute(
                "SELECT md5(string_agg(markdown, '|' ORDER BY page_number)) FROM pages WHERE document_id = %s",
                (document_id,),
            ).fetchone()[0]
            chunks = conn.execute(
                "SELECT md5(string_agg(chunk_content || chunk_metadata::text, '|' "
                "ORDER BY chunk_index)) FROM chunks WHERE document_id = %s",
                (document_id,),
            ).fetchone()[0]
        index = self.vectors()
        points = (
            [(str(p.id), p.payload, Vectors(_canonical(p.vector))) for p in index.points(document_id)]
            if index.client.collection_exists(index.collection)
            else []
        )
        with self.graph() as g:
            graph = document_slice(g, document_id)
        return {"derived": derived, "ocr": ocr, "chunks": chunks, "points": points, "graph": graph}


def chunk_count(env: Env, document_id: str) -> int:
    with psycopg.connect(env.db_url) as conn:
        return conn.execute("SELECT count(*) FROM chunks WHERE document_id = %s", (document_id,)).fetchone()[0]


def reindexed_events(result) -> list:
    """The run's materialisations of partitions it really rebuilt (not those it reported skipped or
    unchanged)."""
    return [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.metadata["outcome"].value == "reindexed"
    ]


def _canonical(vector: object) -> list:
    """A point's vectors as one flat list: names, a sparse vector's (index, value) pairs sorted, floats."""
    if isinstance(vector, dict):
        return [x for name, v in sorted(vector.items()) for x in (name, *_canonical(v))]
    if hasattr(vector, "indices") and hasattr(vector, "values"):
        return [x for pair in sorted(zip(vector.indices, vector.values, strict=True)) for x in pair]
    return list(vector) if isinstance(vector, list) else [vector]


class Vectors:
    """A point's vectors, equal to another's within 1e-4 per number. Local Qdrant hands back an untouched
    point's dense vector with differences of ~1e-6 after a delete in the same collection; the snapshot asks
    whether the point was rewritten, not for the last bits of its floats."""

    def __init__(self, values: list) -> None:
        self.values = values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vectors) or len(self.values) != len(other.values):
            return False
        return all(
            abs(a - b) <= 1e-4 if isinstance(a, float) and isinstance(b, float) else a == b
            for a, b in zip(self.values, other.values, strict=True)
        )

    def __hash__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"Vectors({len(self.values)} numbers)"
