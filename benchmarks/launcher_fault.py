"""The launcher killed mid-request (part of ``./dev bench faults``): ``reindex-pipeline up`` as a user runs it,
a queue request for every document, SIGKILL to the launcher a third of the way through (its services die
with it), then ``up`` again on the same state: what it says it found, how long until the request is done,
and the product's own store audit (``reindex-pipeline audit``) afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from reindex_pipeline.db import queue as queue_db
from reindex_pipeline.demo.corpus import stable_id
from reindex_pipeline.stack.supervisor import StackState

SEED = 7


class Launcher:
    """``reindex-pipeline up`` in a child process; its output kept line by line."""

    def __init__(self, env: dict[str, str], documents: int, port: int):
        command = [
            sys.executable,
            "-m",
            "reindex_pipeline.cli",
            "up",
            "--documents",
            str(documents),
            "--port",
            str(port),
        ]
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if "Dagster UI:" in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 300) -> None:
        if not self.ready.wait(timeout):
            raise TimeoutError("up did not start Dagster:\n" + "\n".join(self.lines[-20:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=120)


def database_url(state_dir: Path) -> str:
    state = StackState.read(state_dir / "stack.json")
    assert state is not None, "no stack.json"
    return state.environment["DATABASE_URL"]


def launcher_killed(documents: int, state_dir: Path, port: int, wait_for_progress, wait_for_request) -> None:
    env = {**os.environ, "REINDEX_STATE_DIR": str(state_dir), "COLUMNS": "250", "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    first = Launcher(env, documents, port)
    first.wait_ready()
    url = database_url(state_dir)
    admin = str(stable_id(SEED, "user", "admin"))
    with psycopg.connect(url, autocommit=True) as conn:
        org = conn.execute("SELECT org_id::text FROM users WHERE id = %s", (admin,)).fetchone()[0]
        eligible = conn.execute(
            "SELECT count(*) FROM documents WHERE deleted_at IS NULL AND convert_status = 'converted' "
            "AND index_status = 'indexed'"
        ).fetchone()[0]
        requested = time.perf_counter()
        request_id = queue_db.insert_request(conn, org_id=org, requested_by=admin, scope="all", source="app")
        print(f"\n== launcher (`up`) killed (SIGKILL) during a queue request of {eligible} documents")
        run_id, _ = wait_for_progress(conn, eligible // 3)
        done_before = conn.execute(
            "SELECT count(*) FROM document_status_log WHERE run_id = %s AND to_status = 'indexed'", (run_id,)
        ).fetchone()[0]
    os.kill(first.proc.pid, signal.SIGKILL)
    fired = time.perf_counter()
    first.proc.wait()
    print(
        f"   launcher pid {first.proc.pid} killed {fired - requested:.0f} s after the request, "
        f"{done_before} documents in"
    )
    time.sleep(3)
    second = Launcher(env, documents, port)
    try:
        second.wait_ready()
        said = [line.strip() for line in second.lines if "Recovering" in line or "Found from before" in line]
        for line in said:
            print(f"   up again says: {line}")
        with psycopg.connect(database_url(state_dir), autocommit=True) as conn:
            row = wait_for_request(conn, request_id)
        ended = time.perf_counter()
        print(
            f"   request {row['status']}, retried {row['attempts']} time(s); "
            f"{ended - fired:.0f} s from the kill to done"
        )
        audit = subprocess.run(
            [sys.executable, "-m", "reindex_pipeline.cli", "audit"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        summary = " ".join((audit.stdout + audit.stderr).split())
        print(f"   reindex-pipeline audit (exit {audit.returncode}): {summary[:300]}")
    finally:
        second.stop()
