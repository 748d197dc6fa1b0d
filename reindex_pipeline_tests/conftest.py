"""Session fixtures: one throwaway embedded stack (PostgreSQL, FalkorDB, local Qdrant, bucket folder)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from reindex_pipeline.db import migrate
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.resources import QdrantStore, close_local_qdrant
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.supervisor import Stack, StackState

# Keep the tests' own services away from any real configuration of the machine running them.
EXTERNAL_VARS = (
    "DATABASE_URL",
    "DAGSTER_PG_URL",
    "QDRANT_URL",
    "QDRANT_API_KEY",
    "NEO4J_URI",
    "NEO4J_USER",
    "NEO4J_PASSWORD",
    "BUCKET_URL",
    "OPENAI_API_KEY",
    "FALKORDB_HOST",
    "FALKORDB_PORT",
    "QDRANT_PATH",
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The session's stack; its environment is exported to os.environ like `up` exports it to Dagster."""
    saved = {name: os.environ.pop(name) for name in EXTERNAL_VARS if name in os.environ}
    state_dir = tmp_path_factory.mktemp("stack")
    stack = Stack(Settings.from_env({"REINDEX_STATE_DIR": str(state_dir)}))
    state = stack.start()
    os.environ.update(state.environment)
    try:
        yield stack
    finally:
        stack.stop()
        for name in state.environment:
            os.environ.pop(name, None)
        os.environ.update(saved)


@pytest.fixture(scope="session")
def stack_state(stack: Stack) -> StackState:
    assert stack.state is not None
    return stack.state


@pytest.fixture(scope="session")
def server_url(stack_state: StackState) -> str:
    """URL of the session server's maintenance database (for creating throwaway databases)."""
    return stack_state.environment["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"


@contextlib.contextmanager
def _throwaway_db(server_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture()
def empty_db(server_url: str) -> Iterator[str]:
    """A new, empty database on the session server; dropped afterwards."""
    with _throwaway_db(server_url) as url:
        yield url


@pytest.fixture()
def second_empty_db(server_url: str) -> Iterator[str]:
    """Another one, for comparing two configurations side by side."""
    with _throwaway_db(server_url) as url:
        yield url


@pytest.fixture()
def app_db(empty_db: str) -> str:
    """A freshly migrated app database."""
    migrate.upgrade(empty_db)
    return empty_db


@pytest.fixture()
def env(app_db: str):
    """The demo corpus (60 documents) with one partition each, on the session's real stores; a graph and
    a Qdrant collection of its own, removed afterwards."""
    import dagster as dg

    from reindex_pipeline_tests.corpus_env import SEED, Env

    load_demo_corpus(app_db, 60, SEED)
    instance = dg.DagsterInstance.ephemeral()
    with psycopg.connect(app_db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id::text FROM documents ORDER BY created_at")]
    instance.add_dynamic_partitions("documents", ids)
    e = Env(app_db, f"g_{uuid.uuid4().hex[:10]}", f"c_{uuid.uuid4().hex[:10]}", instance, ids)
    yield e
    with e.graph() as g:
        g.delete_all()
    client = QdrantStore(path=os.environ["QDRANT_PATH"]).client()
    for c in client.get_collections().collections:
        if c.name.startswith(e.collection):
            client.delete_collection(c.name)


@pytest.fixture(scope="module", autouse=True)
def _release_qdrant():
    """Each module ends by releasing the local Qdrant folder (one client per folder per process)."""
    yield
    close_local_qdrant(os.environ.get("QDRANT_PATH", ""))


def pids_alive(pids: list[int]) -> list[int]:
    import psutil

    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
