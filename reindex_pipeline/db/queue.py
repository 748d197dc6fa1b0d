"""SQL for ``reindex_queue``: claim, lease, finish, retry, requeue, list."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from reindex_pipeline.domain.queue_rules import PRIORITY, ActiveRequest, RetryDecision

LEASE_SECONDS = 300


def insert_request(
    conn: psycopg.Connection,
    *,
    org_id: str,
    requested_by: str | None,
    scope: str,
    workspace_id: str | None = None,
    document_ids: Iterable[str] | None = None,
    phases: Iterable[str] | None = None,
    dry_run: bool = False,
    source: str = "app",
    stored_key: str | None = None,
    stale_only: bool = False,
) -> str:
    """A new pending request; returns its id."""
    ids = list(document_ids) if document_ids is not None else None
    row = conn.execute(
        """
        INSERT INTO reindex_queue (org_id, project_id, requested_by, scope, document_ids, phases, dry_run, source,
                                   priority, stored_key, artifact_id, stale_only)
        VALUES (%s, %s, %s, %s, %s::uuid[], COALESCE(%s::text[], ARRAY['extraction','vector_indexing',
                'graphrag_indexing']), %s, %s, %s, %s, %s, %s)
        RETURNING id::text
        """,
        (
            org_id,
            workspace_id,
            requested_by,
            scope,
            ids,
            list(phases) if phases is not None else None,
            dry_run,
            source,
            PRIORITY.get(source, 0),
            stored_key,
            ids[0] if ids and scope == "restore" else None,
            stale_only,
        ),
    ).fetchone()
    return row[0]


def claim_due(
    conn: psycopg.Connection,
    owner: str,
    limit: int = 20,
    lease_seconds: int = LEASE_SECONDS,
    skip_scopes: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Take due pending rows, and running rows whose lease expired (a crashed daemon), exactly once; rows of
    ``skip_scopes`` wait (pending ones only: an expired lease is always taken).

    ``FOR UPDATE SKIP LOCKED``: two evaluations racing each get different rows, never the same one.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """
            WITH due AS (
                SELECT id FROM reindex_queue
                 WHERE (status = 'pending' AND scheduled_at <= now() AND NOT scope = ANY(%s::text[]))
                    OR (status = 'running' AND lease_expires_at < now())
                 ORDER BY priority DESC, scheduled_at, created_at
                 LIMIT %s
                 FOR UPDATE SKIP LOCKED
            )
            UPDATE reindex_queue q
               SET status = 'running', lease_owner = %s, heartbeat_at = now(),
                   lease_expires_at = now() + make_interval(secs => %s),
                   started_at = COALESCE(q.started_at, now()), updated_at = now(),
                   counts = (q.counts - 'runs_expected') || jsonb_build_object('reclaimed', q.status = 'running')
              FROM due
             WHERE q.id = due.id
         RETURNING q.id::text, q.org_id::text, q.project_id::text AS workspace_id, q.requested_by::text,
                   q.scope, q.document_ids::text[], q.phases, q.dry_run, q.stale_only, q.source, q.priority, q.attempts,
                   q.stored_key, q.created_at
            """,
            (list(skip_scopes), limit, owner, lease_seconds),
        ).fetchall()


def active_requests(conn: psycopg.Connection, excluding: str, queued: bool = False) -> list[ActiveRequest]:
    """Other requests that are running (the request rules look at these); with ``queued``, also people's
    pending ones, which the queue takes before a request queued now (scheduled ones give way to people's)."""
    rows = conn.execute(
        "SELECT id::text, scope, project_id::text, status = 'pending' FROM reindex_queue WHERE id::text <> %s "
        "AND ((status = 'running' AND (counts->>'runs_expected') IS NOT NULL) "
        "OR (%s AND status = 'pending' AND source <> 'schedule'))",
        (excluding, queued),
    ).fetchall()
    return [ActiveRequest(*r) for r in rows]


def previous_request_at(
    conn: psycopg.Connection, requested_by: str, before: datetime, excluding: str
) -> datetime | None:
    """When ``requested_by`` last asked before the request ``excluding`` made at ``before`` (schedule rows and
    refused rows do not count). Rows made in one transaction share their time; the lower id counts as the
    earlier, so of many rows inserted at once exactly one is first, whichever the sensor decides first."""
    row = conn.execute(
        "SELECT max(created_at) FROM reindex_queue WHERE requested_by::text = %s "
        "AND (created_at < %s OR (created_at = %s AND id::text < %s)) "
        "AND source <> 'schedule' AND status <> 'refused'",
        (requested_by, before, before, excluding),
    ).fetchone()
    return row[0]


def launched(
    conn: psycopg.Connection, request_id: str, owner: str, attempt_tag: str, runs_expected: int, counts: dict
) -> bool:
    """Record the runs of this claim; False when ``owner`` no longer holds the row (its lease ran out while it
    was planned and another claim took it, whose runs count instead). What an earlier claim's shared runs
    recorded goes (``reindex.requests.launched`` says whether this claim's runs are shared)."""
    return (
        conn.execute(
            "UPDATE reindex_queue SET counts = (counts - 'shared_runs' - 'shared_totals' - 'shared_eligible') || %s"
            " || jsonb_build_object('planned_at', extract(epoch FROM now())), "
            "updated_at = now() WHERE id = %s AND status = 'running' AND lease_owner = %s",
            (Jsonb({**counts, "runs_expected": runs_expected, "attempt_tag": attempt_tag}), request_id, owner),
        ).rowcount
        == 1
    )


def heartbeat(
    conn: psycopg.Connection, request_id: str, run_ids: list[str], lease_seconds: int = LEASE_SECONDS
) -> None:
    conn.execute(
        "UPDATE reindex_queue SET heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => %s), "
        "run_ids = %s, updated_at = now() WHERE id = %s AND status = 'running'",
        (lease_seconds, run_ids, request_id),
    )


def running_requests(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id::text, org_id::text, project_id::text AS workspace_id, requested_by::text, scope, attempts, "
            "counts, document_ids::text[], stored_key FROM reindex_queue "
            "WHERE status = 'running' AND (counts->>'runs_expected') IS NOT NULL ORDER BY started_at"
        ).fetchall()


def finish(
    conn: psycopg.Connection, request_id: str, status: str, counts: dict, run_ids: list[str], error: str | None = None
) -> None:
    """done, refused or (not retried) failed."""
    conn.execute(
        "UPDATE reindex_queue SET status = %s, counts = counts || %s, run_ids = %s, last_error = %s, "
        "finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = %s",
        (status, Jsonb(counts), run_ids, error, request_id),
    )


def retry_or_fail(
    conn: psycopg.Connection,
    request_id: str,
    decision: RetryDecision,
    error: str,
    counts: dict,
    run_ids: list[str],
    retry_document_ids: list[str] | None,
) -> None:
    """After failed runs: back to pending with backoff (only the failed documents), or failed for good."""
    conn.execute(
        """
        UPDATE reindex_queue
           SET status = %s, attempts = %s, scheduled_at = %s, last_error = %s, counts = counts || %s,
               run_ids = run_ids || %s::text[], lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
               finished_at = CASE WHEN %s = 'failed' THEN now() END,
               document_ids = COALESCE(%s::uuid[], document_ids),
               scope = CASE WHEN %s::uuid[] IS NULL OR scope = 'restore' THEN scope ELSE 'documents' END
         WHERE id = %s
        """,
        (
            decision.status,
            decision.attempts,
            decision.scheduled_at,
            error,
            Jsonb({**counts, "runs_expected": None}),
            run_ids,
            decision.status,
            retry_document_ids,
            retry_document_ids,
            request_id,
        ),
    )


def postpone(conn: psycopg.Connection, request_id: str, reason: str, seconds: int = 60) -> None:
    """Back to pending for a while (a scheduled reindex waiting for a busy workspace); not an attempt."""
    conn.execute(
        "UPDATE reindex_queue SET status = 'pending', scheduled_at = now() + make_interval(secs => %s), "
        "last_error = %s, lease_owner = NULL, lease_expires_at = NULL, updated_at = now() WHERE id = %s",
        (seconds, reason, request_id),
    )


def requeue(conn: psycopg.Connection, request_id: str) -> bool:
    """A failed (or refused) request goes back to pending with its attempts reset."""
    row = conn.execute(
        "UPDATE reindex_queue SET status = 'pending', attempts = 0, last_error = NULL, scheduled_at = now(), "
        "finished_at = NULL, counts = '{}'::jsonb, updated_at = now() "
        "WHERE id::text = %s AND status IN ('failed', 'refused') RETURNING 1",
        (request_id,),
    ).fetchone()
    return row is not None


def get_request(conn: psycopg.Connection, request_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM reindex_queue WHERE id::text = %s", (request_id,)).fetchone()


def history(conn: psycopg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM reindex_queue ORDER BY created_at DESC LIMIT %s", (limit,)).fetchall()


def resolve_user(conn: psycopg.Connection, name_or_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id::text, org_id::text, username, role, status FROM users WHERE username = %s OR id::text = %s",
            (name_or_id, name_or_id),
        ).fetchone()


def resolve_workspace(conn: psycopg.Connection, name_or_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id::text, org_id::text, name FROM workspaces WHERE name = %s OR id::text = %s",
            (name_or_id, name_or_id),
        ).fetchone()
