"""Heartbeats of running reindex steps (table ``reindex_run_heartbeats``).

A run worker killed together with the code server that started it (a lost machine, a killed launcher) leaves
its run ``STARTED`` for ever: no process is left to report it, and the default launcher gives Dagster's run
monitoring no way to check. The reindex step therefore beats from a background thread, and the
``reindex_run_watch`` sensor fails a run whose beats stopped.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime
from types import TracebackType
from typing import NamedTuple

import psycopg

#: Seconds between two beats of a running step.
BEAT_INTERVAL_S = 5.0


class RunBeat(NamedTuple):
    run_id: str
    host: str
    pid: int
    beat_at: datetime
    silent_s: float


def beat(conn: psycopg.Connection, run_id: str, host: str, pid: int) -> None:
    conn.execute(
        """
        INSERT INTO reindex_run_heartbeats (run_id, host, pid) VALUES (%s, %s, %s)
        ON CONFLICT (run_id) DO UPDATE SET beat_at = now(), host = EXCLUDED.host, pid = EXCLUDED.pid
        """,
        (run_id, host, pid),
    )


def forget(conn: psycopg.Connection, run_id: str) -> None:
    conn.execute("DELETE FROM reindex_run_heartbeats WHERE run_id = %s", (run_id,))


def beating_runs(conn: psycopg.Connection, limit: int = 500) -> list[RunBeat]:
    """Every run with a heartbeat row (one per reindex run in progress, plus the dead), the longest silent
    first, with the seconds since its last beat."""
    rows = conn.execute(
        """
        SELECT run_id, host, pid, beat_at, extract(epoch FROM now() - beat_at)::float
          FROM reindex_run_heartbeats
         ORDER BY beat_at
         LIMIT %s
        """,
        (limit,),
    ).fetchall()
    return [RunBeat(*r) for r in rows]


def unfinished_work(conn: psycopg.Connection) -> dict[str, int]:
    """What a stopped stack left in flight: queue requests not yet decided or still running, documents left
    ``indexing`` by reindex runs, and runs that were beating (each picked up again once Dagster is back)."""
    requests = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status = 'pending') "
        "FROM reindex_queue"
    ).fetchone()
    indexing = conn.execute(
        "SELECT count(*) FROM documents WHERE index_status = 'indexing' AND indexing_details ? 'run_id'"
    ).fetchone()[0]
    runs = conn.execute("SELECT count(*) FROM reindex_run_heartbeats").fetchone()[0]
    return {"running_requests": requests[0], "pending_requests": requests[1], "indexing": indexing, "runs": runs}


class Heartbeat:
    """Beats for ``run_id`` every ``interval_s`` from a daemon thread, on its own connection, until closed.

    A beat that fails (the database away for a moment) is retried at the next interval; the step's own
    statements report the outage. Closing removes the row: the run ended, well or not, by itself."""

    def __init__(self, url: str, run_id: str, interval_s: float = BEAT_INTERVAL_S):
        self.url, self.run_id, self.interval_s = url, run_id, interval_s
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        with psycopg.connect(self.url, autocommit=True) as conn:
            beat(conn, self.run_id, self.host, self.pid)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                forget(conn, self.run_id)
        except psycopg.Error:
            pass  # left behind, the row is removed by the watch once Dagster has the run finished

    def _beat(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.wait(self.interval_s):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                beat(conn, self.run_id, self.host, self.pid)
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
