"""``./dev bench scale --documents 1000000``: the product at the size of a real tenant base, on a throwaway stack.

In one run, on one stack (embedded Postgres for the app and for Dagster, the Dagster webserver and daemon):
1. the demo corpus of ``--documents`` documents is loaded;
2. ``preview --as admin --all`` runs as a person runs it (a subprocess): seconds, peak memory, bytes printed;
3. the daemon's ``documents_partition_sync`` sensor adds a partition per live document: minutes to be in sync;
4. a reindex of everything is launched the UI's way for large reindexes (the ``reindex_request`` job through
   GraphQL, as the Launchpad does), which queues a request that the queue sensor plans into runs: seconds
   from the click to the request, to the first run created and to every run created (runs/s). Runs are kept
   queued (the ``qdrant`` pool gets no slot), so nothing is indexed and the figures are Dagster's alone;
5. the Dagster database's growth per 1,000 documents from creating those runs (planned materialisations), and
   with ``--execute``, from the first run reindexing its documents (its materialisations);
6. the partition health the UI's asset page asks for over GraphQL: seconds and megabytes;
7. with ``--backfill``, a UI backfill of every partition, for comparison: seconds to its first runs;
   with ``--subset-planned-events``, Dagster plans one event per asset and run instead of one per partition;
and the peak memory of the daemon, the webserver and every process they started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from reindex_pipeline.db import migrate
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack import processes
from reindex_pipeline.stack.dagster_client import DERIVED_ASSETS, DagsterClient
from reindex_pipeline.stack.supervisor import Stack, dagster_environment, dagster_instance

HEALTH = """
query { assetNodeOrError(assetKey: {path: ["extracted_data"]}) { ... on AssetNode {
  partitionStats { numMaterialized numPartitions numFailed numMaterializing }
  assetPartitionStatuses { __typename ... on DefaultPartitionStatuses {
    materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions } } } } }"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
PREVIEW = ["preview", "--as", "admin", "--all"]
STATUS = """query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


def peak_memory_mb(pid: int) -> dict[str, float]:
    """Peak resident memory (VmHWM) of a process and of each process under it, by command name."""
    peaks: dict[str, float] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            cmdline = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        name = " ".join(Path(a.decode()).name for a in cmdline[:3] if a)[:60]
        peaks[f"{current} {name}"] = hwm / 1024
        todo += [int(c) for c in children]
    return peaks


def dagster_db_mb(url: str) -> float:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6


def table_sizes(url: str) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace"
        ).fetchall()
    return {name: size / 1e6 for name, size in rows}


def preview(env: dict[str, str]) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            sys.executable,
            "-m",
            "reindex_pipeline.cli",
            "preview",
            "--as",
            "admin",
            "--all",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    last = [line for line in result.stdout.splitlines() if " eligible, " in line]
    print(
        f"preview --as admin --all: {elapsed:.1f} s, peak {peak_kb / 1024:.0f} MB, "
        f"{len(result.stdout.encode()) / 1024:.1f} KB printed ({last[0].strip() if last else '?'})"
    )


def wait_for_sync(dagster_url: str, live: int, started: float, timeout: float) -> None:
    with psycopg.connect(dagster_url, autocommit=True) as conn:
        seen, last_print = 0, 0.0
        while seen < live:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{seen} of {live} partitions after {timeout:.0f} s")
            time.sleep(1.0)
            seen = conn.execute(
                "SELECT count(*) FROM dynamic_partitions WHERE partitions_def_name = 'documents'"
            ).fetchone()[0]
            if time.perf_counter() - last_print > 30:
                last_print = time.perf_counter()
                print(f"  {time.perf_counter() - started:6.0f} s: {seen:,} partitions")
    elapsed = time.perf_counter() - started
    print(
        f"partition sync (the daemon's sensor): {live:,} partitions in {elapsed:.0f} s "
        f"({live / elapsed * 60:,.0f} a minute)"
    )


def launch_request_job(client: DagsterClient) -> str:
    params = {
        "selector": {**client.repository(), "jobName": "reindex_request"},
        "runConfigData": {"ops": {"queue_reindex_request": {"config": {"requester": "admin", "all_workspaces": True}}}},
    }
    launched = client.gql(LAUNCH, params=params)["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"reindex_request not launched: {launched}")
    return launched["run"]["runId"]


def runs_created(conn: psycopg.Connection, tag: str, value: str) -> tuple[int, float | None, float | None]:
    """(count, first, last creation epoch) of the runs tagged ``tag=value``."""
    count, first, last = conn.execute(
        "SELECT count(*), extract(epoch FROM min(r.create_timestamp)), extract(epoch FROM max(r.create_timestamp)) "
        "FROM runs r JOIN run_tags t ON t.run_id = r.run_id WHERE t.key = %s AND t.value = %s",
        (tag, value),
    ).fetchone()
    return count, first and float(first), last and float(last)


def db_epoch_offset(conn: psycopg.Connection) -> float:
    """Seconds to add to this machine's time.time() to get the database's naive-UTC epoch of now()."""
    db_now = conn.execute("SELECT extract(epoch FROM now() AT TIME ZONE 'UTC')").fetchone()[0]
    return float(db_now) - time.time()


def whole_tenant_request(client: DagsterClient, app_url: str, dagster_url: str, timeout: float) -> int:
    """Launch ``reindex_request`` as the UI does; print the seconds to the request, to its runs; return runs."""
    with psycopg.connect(dagster_url, autocommit=True) as dconn, psycopg.connect(app_url, autocommit=True) as aconn:
        offset = db_epoch_offset(dconn)
        clicked = time.time()
        job_run = launch_request_job(client)
        request_id = None
        while request_id is None and time.time() - clicked < timeout:
            row = aconn.execute(
                "SELECT id::text, extract(epoch FROM created_at) FROM reindex_queue WHERE source = 'ui' "
                "ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
            request_id, queued_at = (row[0], float(row[1])) if row else (None, None)
            time.sleep(0.2)
        if request_id is None:
            raise TimeoutError("the reindex_request job queued nothing")
        expected = None
        while time.time() - clicked < timeout:
            counts = aconn.execute("SELECT counts FROM reindex_queue WHERE id = %s", (request_id,)).fetchone()[0]
            expected = counts.get("runs_expected", expected)
            count, first, last = runs_created(dconn, "reindex/request_id", request_id)
            if expected and count >= expected:
                break
            time.sleep(1.0)
        else:
            raise TimeoutError(f"{count} of {expected} runs created after {timeout:.0f} s")
        job_status = client.gql(STATUS, id=job_run)["runOrError"]["status"]
    first_s, last_s = first - offset - clicked, last - offset - clicked
    print(
        f"whole-tenant reindex from the UI (reindex_request job, {job_status}): request queued after "
        f"{queued_at - clicked:.1f} s, first run created after {first_s:.1f} s (from the queue row: "
        f"{first_s - (queued_at - clicked):.1f} s), all {count} runs after "
        f"{last_s:.1f} s ({count / max(last_s - first_s, 1e-9):.2f} runs/s; {counts.get('eligible', 0):,} documents)"
    )
    return count


def partition_health(client: DagsterClient) -> None:
    started = time.perf_counter()
    response = client.http.post(f"{client.url}/graphql", json={"query": HEALTH})
    response.raise_for_status()
    elapsed = time.perf_counter() - started
    stats = response.json()["data"]["assetNodeOrError"]["partitionStats"]
    print(
        f"partition health over GraphQL (the asset page): {elapsed:.1f} s, {len(response.content) / 1e6:.1f} MB "
        f"({json.dumps(stats)})"
    )


def backfill_everything(client: DagsterClient, dagster_url: str, watch_s: float) -> None:
    started = time.perf_counter()
    keys = client.partition_keys()
    listed = time.perf_counter() - started
    clicked = time.time()
    backfill_id = client.launch_backfill(keys, DERIVED_ASSETS)
    launched = time.time() - clicked
    with psycopg.connect(dagster_url, autocommit=True) as conn:
        offset = db_epoch_offset(conn)
        count, first, last = 0, None, None
        while time.time() - clicked < watch_s:
            count, first, last = runs_created(conn, "dagster/backfill", backfill_id)
            time.sleep(2.0)
        size = conn.execute("SELECT coalesce(sum(length(body)), 0) FROM bulk_actions").fetchone()[0]
    first_s = f"{first - offset - clicked:.0f} s" if first else f"none within {watch_s:.0f} s"
    rate = f", {count / (last - first):.2f} runs/s" if count > 1 else ""
    print(
        f"UI backfill of all {len(keys):,} partitions: keys listed in {listed:.0f} s, launched in {launched:.0f} s, "
        f"first run {first_s}, {count} runs in {watch_s:.0f} s{rate}; its bulk_actions row {size / 1e6:.0f} MB"
    )
    cancelled = client.gql(
        "mutation($id: String!) { cancelPartitionBackfill(backfillId: $id) { __typename } }", id=backfill_id
    )["cancelPartitionBackfill"]["__typename"]
    asked = time.perf_counter()
    with psycopg.connect(dagster_url, autocommit=True) as conn:
        status = "CANCELING"
        while status == "CANCELING" and time.perf_counter() - asked < 600:
            time.sleep(2.0)
            status = conn.execute("SELECT status FROM bulk_actions WHERE key = %s", (backfill_id,)).fetchone()[0]
        count, _, _ = runs_created(conn, "dagster/backfill", backfill_id)
    print(f"  cancelled ({cancelled}): {status} after {time.perf_counter() - asked:.0f} s, {count} runs created in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds any one step may take")
    parser.add_argument("--backfill", action="store_true", help="also launch a UI backfill of every partition")
    parser.add_argument("--backfill-watch", type=float, default=180, help="seconds the backfill is watched")
    parser.add_argument(
        "--execute",
        action="store_true",
        help="then let the first run reindex its documents: the Dagster database's growth per 1,000 documents",
    )
    parser.add_argument(
        "--subset-planned-events",
        action="store_true",
        help="run Dagster with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true (one planned event per asset "
        "and run instead of one per partition; a failed run's partitions are then not marked failed)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings.from_env({"REINDEX_STATE_DIR": tmp})) as stack:
        app_url, dagster_url = stack.state.environment["DATABASE_URL"], stack.state.environment["DAGSTER_PG_URL"]
        migrate.upgrade(app_url)
        started = time.perf_counter()
        report = load_demo_corpus(app_url, args.documents, seed=7)
        with psycopg.connect(app_url) as conn:
            live = conn.execute("SELECT count(*) FROM documents WHERE deleted_at IS NULL").fetchone()[0]
        print(f"demo corpus: {report.documents:,} documents ({live:,} live) in {time.perf_counter() - started:.0f} s")
        env = {**os.environ, "DATABASE_URL": app_url, "COLUMNS": "200"}
        preview(env)

        before_mb = dagster_db_mb(dagster_url)
        started = time.perf_counter()
        extra = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"} if args.subset_planned_events else {}
        url = stack.start_dagster(processes.free_port(3300), extra_env=extra)
        hold_runs(stack)
        print(f"dagster webserver and daemon up in {time.perf_counter() - started:.0f} s; runs held queued")
        client = DagsterClient(url, timeout=600)
        try:
            wait_for_sync(dagster_url, live, started, args.timeout)
            synced_mb = dagster_db_mb(dagster_url)
            runs = whole_tenant_request(client, app_url, dagster_url, args.timeout)
            created_mb = dagster_db_mb(dagster_url)
            per_thousand = (created_mb - synced_mb) / (live / 1000)
            print(
                f"dagster database: {before_mb:.0f} MB -> {synced_mb:.0f} MB with the partitions -> "
                f"{created_mb:.0f} MB with {runs} queued runs ({per_thousand:.2f} MB per 1,000 documents planned)"
            )
            partition_health(client)
            if args.backfill:
                backfill_everything(client, dagster_url, args.backfill_watch)
            if args.execute:
                execute_first_run(stack, client, app_url, dagster_url, args.timeout)
            if args.backfill or args.execute:
                partition_health(client)  # again, with a backfill's runs or a run's materialisations stored
            biggest = {**peak_memory_mb(stack.state.services["dagster-daemon"]["pid"])}
            biggest.update(peak_memory_mb(stack.state.services["dagster"]["pid"]))
            for name, mb in sorted(biggest.items(), key=lambda kv: -kv[1])[:5]:
                print(f"peak memory {mb:7.0f} MB  {name}")
        finally:
            client.close()
            stack.stop_dagster()


def execute_first_run(stack: Stack, client: DagsterClient, app_url: str, dagster_url: str, timeout: float) -> None:
    """Give the ``qdrant`` pool its slot; once the first reindex run succeeded, cancel the rest and print what
    the run's documents added to Dagster's database (materialisations, their tags, the run's own events)."""
    before, tables_before = dagster_db_mb(dagster_url), table_sizes(dagster_url)
    hold_runs(stack, slots=1)
    started = time.perf_counter()
    with psycopg.connect(dagster_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT r.run_id, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
                "WHERE t.key = 'reindex/request_id' AND r.status IN ('SUCCESS', 'FAILURE') "
                "ORDER BY r.create_timestamp LIMIT 1"
            ).fetchone()
            if row or time.perf_counter() - started > timeout:
                break
            time.sleep(2.0)
    hold_runs(stack, slots=0)
    if not row or row[1] != "SUCCESS":
        raise RuntimeError(f"the first reindex run did not succeed: {row}")
    with psycopg.connect(app_url) as conn:
        documents = conn.execute(
            "SELECT coalesce(sum((details->>'document_count')::int), 0) FROM audit_events "
            "WHERE kind = 'reindex.completed' AND details->>'run_id' = %s",
            (row[0],),
        ).fetchone()[0]
    time.sleep(2.0)  # the event log's write-behind
    after, tables_after = dagster_db_mb(dagster_url), table_sizes(dagster_url)
    growth = {t: tables_after[t] - tables_before.get(t, 0) for t in tables_after}
    top = ", ".join(f"{t} {mb:.2f}" for t, mb in sorted(growth.items(), key=lambda kv: -kv[1])[:4])
    print(
        f"one reindex run of {documents:,} documents in {time.perf_counter() - started:.0f} s: the Dagster database "
        f"grew {after - before:.1f} MB ({(after - before) / max(documents, 1) * 1000:.2f} MB per 1,000 documents; "
        f"MB by table: {top})"
    )


def hold_runs(stack: Stack, slots: int = 0) -> None:
    """Slots of the ``qdrant`` pool: with none, every reindex run is created and stays queued."""
    env = dagster_environment(stack.state_dir, stack.state.environment)
    with dagster_instance(Path(env["DAGSTER_HOME"]), env) as instance:
        instance.event_log_storage.set_concurrency_slots("qdrant", slots)


if __name__ == "__main__":
    main()
