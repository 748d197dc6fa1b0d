"""DATABASE_URL switches to any PostgreSQL: no embedded server starts and the schema lands there."""

from __future__ import annotations

from pathlib import Path

import psutil
import psycopg

from reindex_pipeline.db import migrate
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.postgres import EmbeddedPostgres, url_for
from reindex_pipeline.stack.supervisor import Stack


def _postgres_processes_on(data_dir: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if str(data_dir) in " ".join(proc.info["cmdline"] or []):
            found.append(proc.info["pid"])
    return found


def test_database_url_points_at_a_separately_started_postgres(tmp_path: Path) -> None:
    external = EmbeddedPostgres(tmp_path / "other-server", tmp_path / "other.log").start()
    try:
        external_url = url_for(external.port, "postgres")
        state_dir = tmp_path / "state"
        with Stack(Settings.from_env({"REINDEX_STATE_DIR": str(state_dir), "DATABASE_URL": external_url})) as stack:
            assert "postgres" not in stack.state.services
            assert stack.state.environment["DATABASE_URL"] == external_url
            assert stack.state.environment["DAGSTER_PG_URL"] == external_url
            assert not (state_dir / "postgres").exists()
            assert _postgres_processes_on(state_dir / "postgres") == []

            migrate.upgrade(stack.state.environment["DATABASE_URL"])
        with psycopg.connect(external_url) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"documents", "chunks", "reindex_queue", migrate.VERSION_TABLE} <= tables
    finally:
        EmbeddedPostgres.stop(external)
