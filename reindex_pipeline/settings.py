"""Every environment variable the project reads, resolved in one place.

Nothing here runs at import time: callers pass an environment mapping (usually ``os.environ``)
to :func:`Settings.from_env`. An external service replaces its embedded counterpart when its
variable is set; the embedded one is then not started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reindex_pipeline.minilm import PRECISIONS

#: name -> (what it does, default). The README's table is checked against this, and ``Settings.from_env``
#: takes its defaults from here where the default is a value.
ENV_VARS: dict[str, tuple[str, str]] = {
    "REINDEX_STATE_DIR": ("Folder for embedded services' data, pid files and logs.", "./.reindex-state"),
    "DATABASE_URL": ("Any PostgreSQL for the app schema; no embedded Postgres is started.", "embedded"),
    "DAGSTER_PG_URL": (
        "Postgres for Dagster's instance storage.",
        "embedded `dagster` database, or DATABASE_URL when that is set",
    ),
    "QDRANT_URL": ("A Qdrant server; local mode is not used.", "local mode under the state folder"),
    "QDRANT_API_KEY": ("API key for QDRANT_URL.", "none"),
    "NEO4J_URI": ("A Neo4j server (bolt/neo4j URI); FalkorDB is not started.", "embedded FalkorDB"),
    "NEO4J_USER": ("Neo4j user.", "neo4j"),
    "NEO4J_PASSWORD": ("Neo4j password.", "none"),
    "NEO4J_DATABASE": ("Neo4j database name.", "neo4j"),
    "BUCKET_URL": ("Restores bucket: any fsspec URL (s3://, gs://, file://).", "<state>/bucket"),
    "OPENAI_API_KEY": ("Use OpenAI for extraction, graph entities and embeddings.", "offline models"),
    "OPENAI_MODEL": ("Chat model for structured-output extraction and graph entities.", "gpt-4o-mini"),
    "OPENAI_EMBEDDING_MODEL": ("OpenAI embedding model.", "text-embedding-3-small"),
    "OPENAI_BASE_URL": ("Another OpenAI-compatible endpoint (a proxy, Azure, a local server).", "api.openai.com"),
    "OPENAI_MAX_IN_FLIGHT": ("Documents whose model calls may be in flight at once, paced under the rate limit.", "32"),
    "EMBEDDING_DIMENSIONS": ("Fewer embedding dimensions than the model's own (a new collection).", "the model's"),
    "EMBEDDING_PRECISION": (
        "What the offline model computes in: `auto` (bfloat16 where the CPU has it natively), `float32`, `bfloat16`.",
        "auto",
    ),
    "EMBEDDING_THREADS": ("Torch threads of the offline model.", "one core fewer than the machine has"),
    "REINDEX_OPERATOR_USER_ID": ("Admin user id that UI backfills without a requester run as.", "none"),
    "REINDEX_MAX_ATTEMPTS": ("Queue attempts before a request is failed.", "4"),
    "REINDEX_FULL_CRON": ("Cron of the scheduled full reindex (the schedule starts switched off).", "0 3 * * 0"),
    "REINDEX_MAX_DOCUMENTS_PER_RUN": ("Cap of documents per reindex run (a backfill is split into runs).", "2500"),
    "REINDEX_PARALLEL_RUNS": (
        "Reindex runs at once when Qdrant is a server (local Qdrant: one); requests fill them.",
        "4",
    ),
    "RESTORE_INGEST_RUNS": (
        "Restore ingest runs (parse, OCR, chunk) at once: the `restore_ingest` pool's slots, set by `up`.",
        "2",
    ),
    "REINDEX_RUN_SILENCE_SECONDS": ("A reindex run whose worker stopped beating this long is failed.", "60"),
    "DAGSTER_PORT": ("Port of the Dagster UI started by `up`.", "3000"),
    "FALKORDB_HOST": ("Embedded FalkorDB host (exported by `up` to Dagster).", "127.0.0.1"),
    "FALKORDB_PORT": ("Embedded FalkorDB port (exported by `up` to Dagster).", "chosen at start"),
    "QDRANT_PATH": ("Local-mode Qdrant folder (exported by `up` to Dagster).", "<state>/qdrant"),
    "DAGSTER_EVENT_BATCH_SIZE": (
        "Dagster's own: it hands a run's planned materialisations to the event log in batches (set by `up`).",
        "1000",
    ),
}


#: The Dagster pool of the runs that ingest restored files: its slots are how many run at once.
RESTORE_INGEST_POOL = "restore_ingest"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. ``None`` for an external URL means: use the embedded service."""

    state_dir: Path
    database_url: str | None
    dagster_pg_url: str | None
    qdrant_url: str | None
    qdrant_api_key: str | None
    neo4j_uri: str | None
    neo4j_user: str
    neo4j_password: str | None
    neo4j_database: str
    bucket_url: str | None
    openai_api_key: str | None
    openai_model: str
    openai_embedding_model: str
    openai_base_url: str | None
    openai_max_in_flight: int
    embedding_dimensions: int | None
    embedding_precision: str
    embedding_threads: int | None
    operator_user_id: str | None
    max_attempts: int
    max_documents_per_run: int
    parallel_runs: int
    restore_ingest_runs: int
    full_reindex_cron: str
    dagster_port: int
    run_silence_seconds: int
    falkordb_host: str
    falkordb_port: int = 6379
    qdrant_local_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, cwd: Path | None = None) -> Settings:
        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        def text(name: str) -> str:
            return get(name) or env_default(name)

        def number(name: str) -> int:
            return _positive_int(name, get(name), int(env_default(name)))

        state = Path(get("REINDEX_STATE_DIR") or (cwd or Path.cwd()) / ".reindex-state")
        return cls(
            state_dir=state.expanduser().resolve(),
            database_url=get("DATABASE_URL"),
            dagster_pg_url=get("DAGSTER_PG_URL"),
            qdrant_url=get("QDRANT_URL"),
            qdrant_api_key=get("QDRANT_API_KEY"),
            neo4j_uri=get("NEO4J_URI"),
            neo4j_user=text("NEO4J_USER"),
            neo4j_password=get("NEO4J_PASSWORD"),
            neo4j_database=text("NEO4J_DATABASE"),
            bucket_url=get("BUCKET_URL"),
            openai_api_key=get("OPENAI_API_KEY"),
            openai_model=text("OPENAI_MODEL"),
            openai_embedding_model=text("OPENAI_EMBEDDING_MODEL"),
            openai_base_url=get("OPENAI_BASE_URL"),
            openai_max_in_flight=number("OPENAI_MAX_IN_FLIGHT"),
            embedding_dimensions=_positive_int("EMBEDDING_DIMENSIONS", get("EMBEDDING_DIMENSIONS"), 0) or None,
            embedding_precision=_choice("EMBEDDING_PRECISION", text("EMBEDDING_PRECISION"), PRECISIONS),
            embedding_threads=_positive_int("EMBEDDING_THREADS", get("EMBEDDING_THREADS"), 0) or None,
            operator_user_id=get("REINDEX_OPERATOR_USER_ID"),
            max_attempts=number("REINDEX_MAX_ATTEMPTS"),
            full_reindex_cron=text("REINDEX_FULL_CRON"),
            max_documents_per_run=number("REINDEX_MAX_DOCUMENTS_PER_RUN"),
            parallel_runs=number("REINDEX_PARALLEL_RUNS"),
            restore_ingest_runs=number("RESTORE_INGEST_RUNS"),
            dagster_port=number("DAGSTER_PORT"),
            run_silence_seconds=number("REINDEX_RUN_SILENCE_SECONDS"),
            falkordb_host=text("FALKORDB_HOST"),
            falkordb_port=_positive_int("FALKORDB_PORT", get("FALKORDB_PORT"), 6379),
            qdrant_local_path=get("QDRANT_PATH"),
        )

    @property
    def reindex_pool(self) -> str:
        """The Dagster pool every reindex run holds a slot of: local Qdrant admits one process, so its pool has
        one slot; with a Qdrant server the pool has ``parallel_runs`` slots."""
        return "qdrant" if self.qdrant_url is None else "reindex"

    @property
    def concurrent_runs(self) -> int:
        """Reindex runs that may write at once: one with local Qdrant (one process holds its folder)."""
        return 1 if self.qdrant_url is None else self.parallel_runs

    @property
    def qdrant_path(self) -> Path:
        return Path(self.qdrant_local_path) if self.qdrant_local_path else self.state_dir / "qdrant"

    @property
    def bucket_path(self) -> Path:
        return self.state_dir / "bucket"

    @property
    def effective_bucket_url(self) -> str:
        return self.bucket_url or self.bucket_path.as_uri()


def env_default(name: str) -> str:
    """The default ``ENV_VARS`` gives ``name``: what ``Settings.from_env`` uses when it is unset, for the
    variables whose default is a value (the others' describe what happens instead)."""
    return ENV_VARS[name][1]


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _positive_int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value
