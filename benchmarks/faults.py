"""``./dev bench faults``: faults in the middle of a real reindex, then the consistency checker over every
document.

A throwaway stack (embedded PostgreSQL, FalkorDB, local Qdrant) with ``--documents`` demo documents, indexed
once. Two experiments reindex every eligible document with the per-document functions the reindex step runs
(a deterministic hash embedder, so the stores' work dominates) and, a third of the way through, break a store:

- ``graph killed``: FalkorDB gets SIGKILL, and is started again on the same data when the pass is over;
- ``postgres connections dropped``: every other connection to the app database is closed by
  ``pg_terminate_backend`` (the run's included).

Failed documents are then retried the way the queue retries them. Two more go through the real Dagster
daemon (webserver, daemon, code server, run workers, the offline MiniLM model): a queue request for every
document whose run worker gets SIGKILL a third of the way through,

- ``run worker killed``: alone (its code server sees it exit and fails the run);
- ``run worker and its code server killed``: as when the machine or the launcher goes (only the heartbeat
  watch can tell).

Printed per experiment: what failed and Dagster's record of it, retries and the time from the fault to a
consistent store (or to the request done); then the checker's figures: documents inconsistent (Postgres
chunks = live Qdrant points = live graph chunks, one slot, extracted rows present), left ``indexing``, whose
earlier index was lost, and reindexed twice by one run, all of which must be 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from benchmarks.launcher_fault import launcher_killed
from benchmarks.queue_load import queue_load
from benchmarks.reindex import SEED, HashEmbedder, admin_of, document_ids, open_stores
from reindex_pipeline.db import migrate
from reindex_pipeline.db import queue as queue_db
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.domain.fingerprints import ALL_PHASES
from reindex_pipeline.reindex import consistency
from reindex_pipeline.reindex.runner import DocumentOutcome, ReindexRunner, resolve_requester, select
from reindex_pipeline.resources import build_resources, close_local_qdrant
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.processes import free_port
from reindex_pipeline.stack.supervisor import Stack


class Attempt:
    """One run's pass over some documents, as the reindex step makes it. A pass that raises (a store lost
    mid-run) ends like a failed run: the documents it had not finished are failed, and the next attempt takes
    over those it left ``indexing`` (Dagster reports the run ended)."""

    def __init__(self, resources: dict, admin: str, keys: list[str], dead_runs: frozenset[str] = frozenset()):
        self.resources, self.admin, self.keys, self.dead_runs = resources, admin, keys, dead_runs
        self.run_id = f"faults-{uuid.uuid4().hex[:8]}"
        self.outcomes: list[DocumentOutcome] = []
        self.eligible: list[str] = []
        self.aborted: str | None = None

    def run(self, on_progress: Callable[[int], None] | None = None) -> Attempt:
        try:
            with self.resources["app_db"].connect(autocommit=True) as conn:
                requester, _ = resolve_requester(conn, self.admin, None)
                docs = select(conn, requester, self.keys, None, None, self.run_id, self.dead_runs).eligible
            self.eligible = [d.id for d in docs]
            with open_stores(self.resources, HashEmbedder()) as stores:
                runner = ReindexRunner(
                    stores, self.run_id, ALL_PHASES, lambda _: None, batch_size=4, dead_runs=self.dead_runs
                )
                for outcome in runner.reindex(docs):
                    self.outcomes.append(outcome)
                    if on_progress:
                        on_progress(len(self.outcomes))
        except Exception as exc:  # noqa: BLE001 - the run fails; its documents are retried
            self.aborted = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:150]}"
        return self

    @property
    def failed(self) -> list[str]:
        done = {o.document_id for o in self.outcomes if o.ok}
        return [d for d in (self.eligible or self.keys) if d not in done]

    def first_error(self) -> str:
        errors = [f"{o.failed_phase}: {o.error}" for o in self.outcomes if not o.ok]
        return (errors[0] if errors else f"the run failed: {self.aborted}")[:170]


def check(resources: dict, keys: list[str], embedder=None) -> dict[str, int]:
    """The checker over every document: inconsistent, left `indexing`."""
    url = resources["app_db"].url
    with open_stores(resources, embedder or HashEmbedder()) as stores, psycopg.connect(url, autocommit=True) as conn:
        inconsistent = 0
        for start in range(0, len(keys), 200):
            facts = consistency.gather(conn, keys[start : start + 200], stores.vectors, stores.graph)
            inconsistent += sum(any(not r.passed for r in consistency.evaluate(f)) for f in facts.values())
        stuck = conn.execute(
            "SELECT count(*) FROM documents WHERE indexing_details ? 'run_id' AND index_status = 'indexing'"
        ).fetchone()[0]
    return {"inconsistent": inconsistent, "stuck_indexing": stuck}


def extracted(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT document_id::text, count(*) FROM documents_data GROUP BY 1").fetchall())


def experiment(
    name: str,
    resources: dict,
    admin: str,
    keys: list[str],
    fault: Callable[[], None],
    recover: Callable[[], None] = lambda: None,
):
    url = resources["app_db"].url
    before = extracted(url)
    fired: dict[str, float] = {}
    eligible_count = len(select_eligible(resources, admin, keys))

    def progress(done: int) -> None:
        if not fired and done >= eligible_count // 3:
            fired["at"] = time.perf_counter()
            fault()

    attempt = Attempt(resources, admin, keys).run(progress)
    failed, dead = attempt.failed, {attempt.run_id} if attempt.aborted else set()
    print(f"\n== {name}: {len(attempt.eligible)} documents, fault after {eligible_count // 3}")
    print(
        f"   first pass: {len(attempt.eligible) - len(failed)} reindexed, {len(failed)} failed"
        + (" (the run failed)" if attempt.aborted else " alone")
        + (f"; first error: {attempt.first_error()}" if failed else "")
    )
    recover()  # the store comes back (or was never down): the first retry is 2 s later
    retries = 0
    while failed and retries < 6:  # the queue's retry: only the failed documents, after a backoff (2, 4, 8, ...)
        retries += 1
        time.sleep(2**retries)
        attempt = Attempt(resources, admin, failed, frozenset(dead)).run()
        if attempt.aborted:
            dead.add(attempt.run_id)
            print(f"   retry {retries}: the run failed: {attempt.aborted}")
        failed = attempt.failed
    figures = check(resources, keys)
    lost = [d for d, n in before.items() if n and not extracted(url).get(d)]
    recovered = time.perf_counter() - fired.get("at", time.perf_counter())
    print(
        f"   after {retries} retr{'y' if retries == 1 else 'ies'}: still failed {len(failed)}, "
        f"inconsistent {figures['inconsistent']}, stuck indexing {figures['stuck_indexing']}, "
        f"earlier index lost {len(lost)}; consistent {recovered:.1f} s after the fault"
    )


def select_eligible(resources: dict, admin: str, keys: list[str]) -> list:
    with resources["app_db"].connect(autocommit=True) as conn:
        requester, _ = resolve_requester(conn, admin, None)
        return select(conn, requester, keys, None, None, "count").eligible


EXPERIMENTS = ["graph", "postgres", "worker", "load", "launcher"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=400)
    parser.add_argument("--only", choices=EXPERIMENTS, action="append", help="run only these experiments (repeatable)")
    args = parser.parse_args()
    only = set(args.only or EXPERIMENTS)
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings.from_env({"REINDEX_STATE_DIR": tmp})) as stack:
        env = stack.state.environment
        url = env["DATABASE_URL"]
        migrate.upgrade(url)
        load_demo_corpus(url, args.documents, seed=SEED)
        admin, keys = admin_of(url), document_ids(url)
        resources = build_resources(env, resolved=True)
        first = Attempt(resources, admin, keys).run()
        print(f"indexed {len(first.outcomes)} documents; checker: {check(resources, keys)}")

        def drop_postgres_connections() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

        if "graph" in only:
            experiment(
                "graph killed (SIGKILL; started again after the pass)",
                resources,
                admin,
                keys,
                stack.kill_graph,
                stack.restart_graph,
            )
        if "postgres" in only:
            experiment("postgres connections dropped", resources, admin, keys, drop_postgres_connections)
        close_local_qdrant(str(Settings.from_env(env).qdrant_path))  # the Dagster runs open it next
        if only & {"worker", "load"}:
            on_dagster(stack, resources, admin, keys, only)
    if "launcher" in only:
        with tempfile.TemporaryDirectory() as tmp:
            launcher_killed(args.documents, Path(tmp), free_port(3400), _wait_for_progress, _wait_for_request)


def on_dagster(stack: Stack, resources: dict, admin: str, keys: list[str], only: set[str]) -> None:
    """The experiments through the real daemon: queue requests whose run worker gets SIGKILL a third of the way
    through, alone (its code server sees it exit and fails the run), then with its code server (as when the
    machine or the launcher goes: only the heartbeat watch can tell); then 1,000 queue rows at once."""
    from benchmarks.dagster_path import DagsterPath

    url = resources["app_db"].url
    eligible = len(select_eligible(resources, admin, keys))
    close_local_qdrant(str(resources["qdrant"].path))
    with DagsterPath(stack, url, admin) as dagster:
        dagster.wait_for_partitions(eligible)
        started = time.perf_counter()
        _request_all(url, admin)  # the daemon builds the index the experiments break (its model's collection)
        print(f"indexed {eligible} documents through the daemon, no fault: {time.perf_counter() - started:.0f} s")
        before = extracted(url)
        if "worker" in only:
            for with_code_server in (False, True):
                _kill_mid_request(dagster, url, admin, eligible, with_code_server)
        if "load" in only:
            queue_load(dagster, url, admin)
        stack.stop_dagster()  # its runs have ended; the checker opens local Qdrant next
    figures = check(resources, keys, resources["embeddings"].embedder())
    close_local_qdrant(str(resources["qdrant"].path))
    lost = [d for d, n in before.items() if n and not extracted(url).get(d)]
    with psycopg.connect(url) as conn:
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT run_id, document_id FROM document_status_log WHERE from_status = 'indexing' "
            "AND to_status = 'indexed' AND run_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d"
        ).fetchone()[0]
    print(
        f"   checker after them: inconsistent {figures['inconsistent']}, stuck indexing {figures['stuck_indexing']}, "
        f"earlier index lost {len(lost)}, documents released twice by one run {twice}"
    )


def _kill_mid_request(dagster, url: str, admin: str, eligible: int, with_code_server: bool) -> None:
    what = "run worker and its code server" if with_code_server else "run worker"
    with psycopg.connect(url, autocommit=True) as conn:
        org = conn.execute("SELECT org_id::text FROM users WHERE id = %s", (admin,)).fetchone()[0]
        requested = time.perf_counter()
        request_id = queue_db.insert_request(conn, org_id=org, requested_by=admin, scope="all", source="app")
        print(f"\n== {what} killed (SIGKILL) during a queue request of {eligible} documents (real daemon)")
        run_id, pid = _wait_for_progress(conn, eligible // 3)
        victims = [pid, _parent_of(pid)] if with_code_server else [pid]
        for victim in victims:
            os.kill(victim, signal.SIGKILL)
        fired = time.perf_counter()
        print(
            f"   run {run_id[:8]} killed {fired - requested:.0f} s after the request (pids {victims}), "
            f"{_reindexed_by(conn, run_id)} documents in"
        )
        row = _wait_for_request(conn, request_id)
        ended = time.perf_counter()
    print(f"   Dagster's record of the killed run: {_failure_message(dagster.client, run_id)[:200]}")
    runs = dagster.client.runs(tags=[{"key": "reindex/request_id", "value": request_id}])
    print(
        f"   request {row['status']}, retried {row['attempts']} time(s), {len(runs)} runs in all; "
        f"{ended - fired:.0f} s from the kill to done"
    )


def _request_all(url: str, admin: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        org = conn.execute("SELECT org_id::text FROM users WHERE id = %s", (admin,)).fetchone()[0]
        # as the schedule asks: the experiments' own requests then meet no per-user rate limit
        request_id = queue_db.insert_request(conn, org_id=org, requested_by=admin, scope="all", source="schedule")
        return _wait_for_request(conn, request_id)


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


FAILURE_EVENTS = """
query ($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor, limit: 500) {
  ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent { message } } } } }
"""


def _failure_message(client, run_id: str) -> str:
    """Why Dagster says the run failed: the code server's note on its worker's exit, or the failure event."""
    cursor, engine, failure = None, None, "(no run failure event)"
    while True:
        page = client.gql(FAILURE_EVENTS, runId=run_id, cursor=cursor)["logsForRun"]
        for event in page["events"]:
            if event["__typename"] == "EngineEvent" and "execution process" in (event["message"] or ""):
                engine = event["message"]
            elif event["__typename"] == "RunFailureEvent":
                failure = event["message"]
        if not page["hasMore"]:
            return " ".join((engine or failure).split())
        cursor = page["cursor"]


def _reindexed_by(conn: psycopg.Connection, run_id: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM document_status_log WHERE run_id = %s AND from_status = 'indexing' "
        "AND to_status = 'indexed'",
        (run_id,),
    ).fetchone()[0]


def _wait_for_progress(conn: psycopg.Connection, documents: int, timeout: float = 600) -> tuple[str, int]:
    """The beating run and its worker's pid, once it has reindexed ``documents``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_id, pid in conn.execute("SELECT run_id, pid FROM reindex_run_heartbeats").fetchall():
            if os.path.exists(f"/proc/{pid}") and _reindexed_by(conn, run_id) >= documents:
                return run_id, pid
        time.sleep(0.2)
    raise TimeoutError(f"no run reindexed {documents} documents in {timeout:.0f} s")


def _wait_for_request(conn: psycopg.Connection, request_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = queue_db.get_request(conn, request_id)
        if row["status"] in ("done", "failed", "refused"):
            return row
        time.sleep(1)
    raise TimeoutError(f"request {request_id} not finished after {timeout:.0f} s")


if __name__ == "__main__":
    main()
