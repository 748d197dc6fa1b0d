"""Alembic migrations: an empty database upgrades to the app schema and downgrades cleanly."""

from __future__ import annotations

import psycopg

from reindex_pipeline.db import migrate

APP_TABLES = {
    "organizations",
    "users",
    "workspaces",
    "documents",
    "pages",
    "chunks",
    "documents_data",
    "documents_data_line_items",
    "document_status_log",
    "audit_events",
    "reindex_queue",
    "restore_objects",
    "document_index_state",
    "source_changes",
    "reindex_run_heartbeats",
    "reindex_run_progress",
    "restore_folders",
    "document_einvoices",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def _columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_empty_database_then_downgrade_cleanly(empty_db: str) -> None:
    assert _tables(empty_db) == set()
    migrate.upgrade(empty_db)
    assert migrate.current(empty_db) == "0007"
    assert _tables(empty_db) == APP_TABLES | {migrate.VERSION_TABLE}

    migrate.downgrade(empty_db, "base")
    assert migrate.current(empty_db) is None
    assert _tables(empty_db) == {migrate.VERSION_TABLE}

    migrate.upgrade(empty_db)  # and back up again: downgrade left nothing in the way
    assert _tables(empty_db) >= APP_TABLES


def test_queue_has_seed_000_columns_and_the_request_flow(app_db: str) -> None:
    seed_000 = {
        "id",
        "org_id",
        "project_id",
        "artifact_id",
        "stored_key",
        "status",
        "attempts",
        "last_error",
        "scheduled_at",
        "updated_at",
    }
    request_flow = {
        "requested_by",
        "scope",
        "document_ids",
        "phases",
        "dry_run",
        "priority",
        "lease_owner",
        "lease_expires_at",
        "heartbeat_at",
        "run_ids",
        "counts",
    }
    assert seed_000 | request_flow <= _columns(app_db, "reindex_queue")


def test_documents_follow_seed_003(app_db: str) -> None:
    assert {
        "workspace_id",
        "owner_id",
        "filename",
        "convert_status",
        "index_status",
        "indexing_details",
        "extraction_status",
        "deleted_at",
        "created_at",
        "updated_at",
    } <= _columns(app_db, "documents")
    assert {"chunk_content", "chunk_metadata", "chunk_index"} <= _columns(app_db, "chunks")
    assert {"org_id", "project_id", "actor_id", "kind", "details", "created_at"} <= _columns(app_db, "audit_events")


def test_roles_and_statuses_are_constrained(app_db: str) -> None:
    with psycopg.connect(app_db) as conn:
        org = conn.execute("INSERT INTO organizations (name, slug) VALUES ('o', 'o') RETURNING id").fetchone()[0]
        try:
            conn.execute("INSERT INTO users (org_id, username, email, role) VALUES (%s, 'x', 'x@x', 'root')", (org,))
        except psycopg.errors.CheckViolation as exc:
            assert "ck_users_role" in str(exc)
        else:
            raise AssertionError("a role outside admin|user was accepted")
