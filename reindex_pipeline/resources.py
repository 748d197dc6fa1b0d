"""Dagster resources: every store the pipeline reads or writes, configured, never read from env here.

``build_resources`` (called when Definitions load, not at import) wires them to the environment the
launcher exports; secrets are passed as ``dg.EnvVar`` so the UI shows the variable, not the value.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from reindex_pipeline.domain.fingerprints import GRAPH, VECTORS
from reindex_pipeline.embeddings import EmbeddingModel
from reindex_pipeline.graph.store import FalkorGraph, GraphStore, Neo4jGraph
from reindex_pipeline.ingest.bucket_listing import SETTLE_S
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.reindex.runner import Stores
from reindex_pipeline.settings import Settings, env_default
from reindex_pipeline.vectors import VectorIndex, collection_name

_local_qdrant: dict[str, Any] = {}
_local_qdrant_lock = threading.Lock()


class AppDatabase(dg.ConfigurableResource):
    """The app's PostgreSQL (documents, chunks, derived data, audit, queue)."""

    url: str = Field(description="postgresql:// URL of the app database")

    @contextmanager
    def connect(self, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.url, autocommit=autocommit) as conn:
            yield conn


#: Seconds a run waits for a local-mode Qdrant folder another process still holds.
LOCAL_QDRANT_WAIT_S = 30.0


class QdrantStore(dg.ConfigurableResource):
    """Qdrant: a server at ``url``, or local mode at ``path`` (one client per process, see below)."""

    url: str | None = Field(default=None, description="Qdrant server URL; unset means local mode")
    api_key: str | None = Field(default=None, description="API key for the server")
    path: str | None = Field(default=None, description="local-mode storage folder")
    collection: str = Field(default="document_chunks", description="collection (alias) name")

    def client(self):
        """A client. Local mode allows ONE client per folder per process: it is shared here, and
        across processes the ``qdrant`` concurrency pool (dagster.yaml) keeps a second one out."""
        from qdrant_client import QdrantClient

        if self.url:
            return QdrantClient(url=self.url, api_key=self.api_key)
        if not self.path:
            raise ValueError("QdrantStore needs a url (QDRANT_URL) or a local path (QDRANT_PATH)")
        with _local_qdrant_lock:
            client = _local_qdrant.get(self.path)
            if client is None:
                client = _local_qdrant[self.path] = _SerializedClient(_open_local(QdrantClient, self.path))
            return client


def _open_local(qdrant_client: Any, path: str, wait_s: float = LOCAL_QDRANT_WAIT_S) -> Any:
    """Open a local-mode folder, waiting while another process still holds it. The pool lets the next run
    start when the previous one has *finished*; its process may still be exiting, with the folder locked,
    for a few seconds (measured: a run that started 2 s after the previous one's end failed here)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return qdrant_client(path=path)
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the local Qdrant folder {path} stayed in use by another process for {wait_s:.0f} s "
                    "(local mode admits one process at a time; set QDRANT_URL to a server for concurrent use)"
                ) from None
            time.sleep(0.5)


class _SerializedClient:
    """A local-mode client whose calls take turns. Local mode is not thread-safe: a count running
    while another thread upserts can fail inside its numpy arrays. A server client needs none of this."""

    def __init__(self, client: Any):
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def close_local_qdrant(path: str) -> None:
    """Release a local-mode folder held by this process (tests and the CLI)."""
    with _local_qdrant_lock:
        client = _local_qdrant.pop(path, None)
    if client is not None:
        client.close()


class GraphDatabase(dg.ConfigurableResource):
    """The graph store: Neo4j when ``neo4j_uri`` is set, otherwise FalkorDB."""

    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: str | None = None
    neo4j_database: str = "neo4j"
    falkordb_host: str = "127.0.0.1"
    falkordb_port: int = 6379
    graph_name: str = "reindex"

    @property
    def backend(self) -> str:
        return "neo4j" if self.neo4j_uri else "falkordb"

    @contextmanager
    def open(self) -> Iterator[GraphStore]:
        store: GraphStore
        if self.neo4j_uri:
            store = Neo4jGraph(self.neo4j_uri, self.neo4j_user, self.neo4j_password, self.neo4j_database)
        else:
            store = FalkorGraph(self.falkordb_host, self.falkordb_port, self.graph_name)
        try:
            yield store
        finally:
            store.close()


def vector_index(qdrant: QdrantStore, embeddings: EmbeddingModel) -> VectorIndex:
    """The current embedding model's index: its collection (one per model) in the resource's Qdrant."""
    model, dimensions = embeddings.model_and_dimensions
    return VectorIndex(qdrant.client(), collection_name(qdrant.collection, model), model, dimensions)


@contextmanager
def reindex_stores(
    app_db: AppDatabase,
    extractor: Extractor,
    embeddings: EmbeddingModel,
    qdrant: QdrantStore,
    graph: GraphDatabase,
    phases: list[str],
) -> Iterator[Stores]:
    """What a reindex of ``phases`` writes to, opened and ready (collection and graph schema created): the
    one place the runner's stores are built."""
    stores = Stores(connect=app_db.connect, extractor=extractor)
    if VECTORS in phases:
        stores.embedder = embeddings.embedder()
        stores.vectors = vector_index(qdrant, embeddings)
        stores.vectors.ensure_collection()
    with graph.open() as graph_store:
        if GRAPH in phases:
            graph_store.ensure_schema()
            stores.graph = graph_store
        yield stores


class Bucket(dg.ConfigurableResource):
    """The restores bucket: any fsspec URL (a local folder by default)."""

    url: str = Field(description="fsspec URL, e.g. file:///srv/bucket or s3://bucket/prefix")
    settle_seconds: float = Field(
        default=SETTLE_S,
        description="a local file changed more lately than this is recorded by a later tick (it may be being "
        "written in place)",
    )

    def filesystem(self):
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.url)
        return fs, root.rstrip("/")

    def read(self, key: str) -> bytes:
        """The bytes of the object at ``key`` (relative to the bucket's root)."""
        fs, root = self.filesystem()
        return fs.cat_file(f"{root}/{key}")


class ReindexPolicy(dg.ConfigurableResource):
    """Deployment-wide reindex settings."""

    operator_user_id: str | None = Field(default=None, description="admin id UI backfills run as")
    max_documents_per_run: int = Field(
        default=int(env_default("REINDEX_MAX_DOCUMENTS_PER_RUN")), description="cap of documents per reindex run"
    )
    parallel_runs: int = Field(
        default=1, description="reindex runs that may write at once (1 with local Qdrant); requests fill them"
    )
    max_attempts: int = Field(
        default=int(env_default("REINDEX_MAX_ATTEMPTS")), description="queue attempts before a request is failed"
    )
    run_silence_seconds: int = Field(
        default=int(env_default("REINDEX_RUN_SILENCE_SECONDS")),
        description="a reindex run whose worker has not beaten for this long is failed (its worker died)",
    )


def build_resources(environ: Mapping[str, str], resolved: bool = False) -> dict[str, dg.ConfigurableResource]:
    """Resources for the environment the launcher (or the operator) set up.

    Secrets and the database URL are ``dg.EnvVar``s (the UI shows the variable, not the value), or with
    ``resolved`` their values, for use outside Dagster (the CLI)."""
    settings = Settings.from_env(environ)

    def secret(name: str) -> dg.EnvVar | str | None:
        if not environ.get(name):
            return None
        return environ[name] if resolved else dg.EnvVar(name)

    database = environ.get("DATABASE_URL", "") if resolved else dg.EnvVar("DATABASE_URL")
    return {
        # An unset DATABASE_URL fails when first used, naming the variable.
        "app_db": AppDatabase(url=database),
        "qdrant": QdrantStore(
            url=settings.qdrant_url,
            api_key=secret("QDRANT_API_KEY"),
            path=None if settings.qdrant_url else str(settings.qdrant_path),
        ),
        "graph": GraphDatabase(
            neo4j_uri=settings.neo4j_uri,
            neo4j_user=settings.neo4j_user,
            neo4j_password=secret("NEO4J_PASSWORD"),
            neo4j_database=settings.neo4j_database,
            falkordb_host=settings.falkordb_host,
            falkordb_port=settings.falkordb_port,
        ),
        "bucket": Bucket(url=settings.effective_bucket_url),
        "extractor": Extractor(
            openai_api_key=secret("OPENAI_API_KEY"),
            openai_model=settings.openai_model,
            openai_base_url=settings.openai_base_url,
            max_in_flight=settings.openai_max_in_flight,
        ),
        "embeddings": EmbeddingModel(
            openai_api_key=secret("OPENAI_API_KEY"),
            openai_model=settings.openai_embedding_model,
            openai_base_url=settings.openai_base_url,
            dimensions=settings.embedding_dimensions,
            precision=settings.embedding_precision,
            threads=settings.embedding_threads,
        ),
        "reindex_policy": ReindexPolicy(
            operator_user_id=settings.operator_user_id,
            max_documents_per_run=settings.max_documents_per_run,
            parallel_runs=settings.concurrent_runs,
            max_attempts=settings.max_attempts,
            run_silence_seconds=settings.run_silence_seconds,
        ),
    }
