"""What each reindex run has done so far (table ``reindex_run_progress``), written as its batches commit.

A run writes its row when it starts (the documents it plans to reindex, those it skips and why) and again
after every batch: completed (of which unchanged: nothing was stale), failed, each failure with its phase
and error. Counts are written whole each time, not added to, so writing one twice is harmless. The queue's
outcomes sensor decides a request from its runs' rows; ``status`` reads them while the runs work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


@dataclass
class RunProgress:
    """One run's counts so far; ``failures`` holds ``{"document_id", "phase", "error"}`` per failed document."""

    planned: int
    completed: int = 0
    unchanged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    model_usage: dict[str, int] | None = None

    @property
    def failed(self) -> int:
        return len(self.failures)


@dataclass
class RequestProgress:
    """The runs of a request together: their counts summed, and how many of them reported their end."""

    runs: int = 0
    finished_runs: int = 0
    planned: int = 0
    completed: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    model_usage: list[dict[str, int]] = field(default_factory=list)


def start(
    conn: psycopg.Connection, run_id: str, request_id: str | None, attempt: str | None, progress: RunProgress
) -> None:
    """The run's row before its first document: what it plans and what it skips (``request_id`` and
    ``attempt`` from the queue's tags; none for a run launched from the UI)."""
    conn.execute(
        """
        INSERT INTO reindex_run_progress (run_id, request_id, attempt, planned, skipped) VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (run_id) DO UPDATE SET planned = EXCLUDED.planned, skipped = EXCLUDED.skipped,
               updated_at = now()
        """,
        (run_id, request_id, attempt, progress.planned, Jsonb(progress.skipped)),
    )


def report(conn: psycopg.Connection, run_id: str, progress: RunProgress, finished: bool = False) -> None:
    """The run's counts after a committed batch (``finished``: its last report)."""
    conn.execute(
        """
        UPDATE reindex_run_progress
           SET completed = %s, unchanged = %s, failed = %s, failures = %s, model_usage = %s,
               reports = reports + 1, updated_at = now(),
               finished_at = CASE WHEN %s THEN now() ELSE finished_at END
         WHERE run_id = %s
        """,
        (
            progress.completed,
            progress.unchanged,
            progress.failed,
            Jsonb(progress.failures),
            Jsonb(progress.model_usage) if progress.model_usage else None,
            finished,
            run_id,
        ),
    )


def of_runs(conn: psycopg.Connection, run_ids: list[str]) -> RequestProgress:
    """The rows of these runs summed (a run that has not started yet has no row)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT planned, completed, unchanged, failed, skipped, failures, model_usage, finished_at "
            "FROM reindex_run_progress WHERE run_id = ANY(%s)",
            (list(run_ids),),
        ).fetchall()
    return _summed(rows)


def of_attempt(conn: psycopg.Connection, request_id: str, attempt: str) -> RequestProgress:
    """The rows of a request's runs of one attempt (one claim of it by the queue), summed."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT planned, completed, unchanged, failed, skipped, failures, model_usage, finished_at "
            "FROM reindex_run_progress WHERE request_id = %s AND attempt = %s",
            (request_id, attempt),
        ).fetchall()
    return _summed(rows)


def _summed(rows: list[dict[str, Any]]) -> RequestProgress:
    total = RequestProgress(runs=len(rows))
    for row in rows:
        total.finished_runs += row["finished_at"] is not None
        total.planned += row["planned"]
        total.completed += row["completed"]
        total.unchanged += row["unchanged"]
        total.failed += row["failed"]
        for reason, n in (row["skipped"] or {}).items():
            total.skipped[reason] = total.skipped.get(reason, 0) + int(n)
        total.failures += row["failures"] or []
        if row["model_usage"]:
            total.model_usage.append(row["model_usage"])
    return total
