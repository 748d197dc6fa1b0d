"""SQL for ``source_changes``: the outbox that triggers on ``documents`` fill (deletions, re-owning, moves)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from reindex_pipeline.domain.queue_rules import backoff_seconds


def due(conn: psycopg.Connection, limit: int) -> list[dict[str, Any]]:
    """Changes waiting to be propagated, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, document_id::text, kind, attempts, created_at FROM source_changes "
            "WHERE done_at IS NULL AND next_attempt_at <= now() ORDER BY id LIMIT %s",
            (limit,),
        ).fetchall()


def due_count(conn: psycopg.Connection) -> int:
    """How many changes are due now (an index-only count of the open ones)."""
    return conn.execute(
        "SELECT count(*) FROM source_changes WHERE done_at IS NULL AND next_attempt_at <= now()"
    ).fetchone()[0]


def purges_after(conn: psycopg.Connection, after_id: int, limit: int) -> list[tuple[int, str]]:
    """(id, document_id) of purge changes recorded after ``after_id`` (the partition cursor)."""
    return conn.execute(
        "SELECT id, document_id::text FROM source_changes WHERE kind = 'purge' AND id > %s ORDER BY id LIMIT %s",
        (after_id, limit),
    ).fetchall()


def documents_now(conn: psycopg.Connection, document_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents as they are now (absent: hard-deleted), with their organisation."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT d.id::text AS id, d.owner_id::text AS owner_id, d.workspace_id::text AS workspace_id, "
            "d.deleted_at, d.index_status, d.filename, w.org_id::text AS org_id FROM documents d "
            "JOIN workspaces w ON w.id = d.workspace_id WHERE d.id = ANY(%s::uuid[])",
            (document_ids,),
        ).fetchall()
    return {r["id"]: r for r in rows}


def purge_derived_rows(conn: psycopg.Connection, document_ids: list[str]) -> None:
    """Extracted rows and index state of these documents (inside the caller's transaction)."""
    for table in ("documents_data_line_items", "documents_data", "document_index_state"):
        conn.execute(f"DELETE FROM {table} WHERE document_id = ANY(%s::uuid[])", (document_ids,))  # noqa: S608


def mark_done(conn: psycopg.Connection, change_ids: list[int], run_id: str, note: str | None = None) -> None:
    conn.execute(
        "UPDATE source_changes SET done_at = now(), run_id = %s, last_error = %s WHERE id = ANY(%s)",
        (run_id, note, change_ids),
    )


def defer(conn: psycopg.Connection, change_ids: list[int], seconds: int, reason: str) -> None:
    """Not now, and not a failure (e.g. the document is still being indexed by a run)."""
    conn.execute(
        "UPDATE source_changes SET next_attempt_at = now() + make_interval(secs => %s), last_error = %s "
        "WHERE id = ANY(%s)",
        (seconds, reason, change_ids),
    )


def mark_failed(conn: psycopg.Connection, changes: list[dict[str, Any]], error: str, run_id: str) -> None:
    """One more attempt, the error, and a backoff; the change stays due and visible until it succeeds."""
    for change in changes:
        attempts = change["attempts"] + 1
        conn.execute(
            "UPDATE source_changes SET attempts = %s, last_error = %s, run_id = %s, "
            "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
            (attempts, error[:2000], run_id, backoff_seconds(attempts), change["id"]),
        )


def log_purged(conn: psycopg.Connection, documents: list[dict[str, Any]], run_id: str) -> None:
    """A status-log row per purged document that still has a row (a hard-deleted one has none)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO document_status_log (document_id, from_status, to_status, phase, run_id, details) "
            "VALUES (%s, %s, 'purged', NULL, %s, %s)",
            [
                (d["id"], d["index_status"], run_id, Jsonb({"reason": "deleted", "deleted_at": str(d["deleted_at"])}))
                for d in documents
            ],
        )
