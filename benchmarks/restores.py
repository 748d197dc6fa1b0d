"""``./dev bench restores [--files N] [--handled M]``: a restored backup dropped at once into a running stack.

A throwaway stack (embedded PostgreSQL, FalkorDB, local Qdrant, the Dagster daemon and webserver, the offline
models) with the demo corpus's workspaces. ``--files`` real files (the dev sets' PDFs and receipts beside the
repository, repeated under new keys; default 1,000) are written into the restores bucket at once, spread over
the demo's workspaces; then, from the moment the last one is written, the bench follows ``restore_objects``
and the reindex queue and prints when every file was ingested and when every document was indexed: files/s
from drop to indexed, the runs it took, and what failed and why.

Then the sensor's tick with ``--handled`` objects (default 100,000) already in the bucket and recorded as
handled: the first tick after a daemon restart (no cursor) and a tick with nothing new, the sensor function
evaluated in this process against the stack's database.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import psycopg

from reindex_pipeline.db import migrate
from reindex_pipeline.defs.restores import restores_bucket_sensor
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.ingest.bucket_listing import SWEEP_PER_TICK, list_bucket
from reindex_pipeline.invoices.evaluation import DATASETS
from reindex_pipeline.resources import AppDatabase, Bucket
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack import processes
from reindex_pipeline.stack.supervisor import Stack

SEED = 7
SETS = {"invoices-dev": ".pdf", "einvoices-dev": ".pdf", "sroie-dev": ".txt"}


def real_files(root: Path) -> list[Path]:
    files = [p for name, ext in SETS.items() for p in sorted((root / name).glob(f"*{ext}"))]
    if not files:
        raise SystemExit(f"no dev sets under {root} (set DATASETS_DIR)")
    return files


def workspaces(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT org_id::text, id::text FROM workspaces ORDER BY name")]


def drop(bucket: Path, files: list[Path], count: int, targets: list[tuple[str, str]]) -> list[str]:
    """``count`` files under new keys, written as a restore tool writes them (a temporary name, then renamed)."""
    keys = []
    for i in range(count):
        source = files[i % len(files)]
        org, ws = targets[i % len(targets)]
        key = f"org/{org}/project/{ws}/restores/2026-12-03T10-00-00Z__{i:05d}-{source.name}"
        path = bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("." + path.name + ".part")
        tmp.write_bytes(source.read_bytes())
        keys.append(key)
        os.replace(tmp, path)
    return keys


def follow(url: str, keys: list[str], dropped: float, timeout: float) -> dict:
    """Poll until every key is handled and every request for them decided; the times since ``dropped``."""
    seen: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            statuses = dict(
                conn.execute(
                    "SELECT stored_key, status FROM restore_objects WHERE stored_key = ANY(%s)", (keys,)
                ).fetchall()
            )
            handled = sum(s in ("ingested", "failed", "rejected") for s in statuses.values())
            if handled == len(keys) and "ingested" not in seen:
                seen["ingested"] = time.perf_counter() - dropped
            requests = conn.execute(
                "SELECT q.status, count(*) FROM reindex_queue q WHERE q.id IN (SELECT DISTINCT request_id FROM "
                "restore_objects WHERE stored_key = ANY(%s) AND request_id IS NOT NULL) GROUP BY q.status",
                (keys,),
            ).fetchall()
            open_requests = sum(n for status, n in requests if status in ("pending", "running"))
            if "ingested" in seen and open_requests == 0:
                seen["indexed"] = time.perf_counter() - dropped
                break
            if time.perf_counter() - dropped > timeout:
                raise RuntimeError(f"not done after {timeout:.0f} s: {handled} of {len(keys)} handled, {requests}")
            time.sleep(0.5)
        outcome = Counter(statuses.values())
        errors = Counter(
            r[0]
            for r in conn.execute(
                "SELECT error FROM restore_objects WHERE stored_key = ANY(%s) AND status <> 'ingested'", (keys,)
            )
        )
        requests = dict(
            conn.execute(
                "SELECT status, count(*) FROM reindex_queue WHERE id IN (SELECT DISTINCT request_id FROM "
                "restore_objects WHERE stored_key = ANY(%s)) GROUP BY status",
                (keys,),
            ).fetchall()
        )
        indexed = conn.execute(
            "SELECT count(DISTINCT d.document_id) FROM documents_data d JOIN restore_objects o ON o.document_id = "
            "d.document_id WHERE o.stored_key = ANY(%s)",
            (keys,),
        ).fetchone()[0]
    return {**seen, "outcome": dict(outcome), "errors": errors, "requests": requests, "with_fields": indexed}


def runs_of(dagster_url: str, since: float) -> list[tuple[str, str, float | None, float | None, str]]:
    """The runs created since ``since``: job, status, start and end (epoch seconds), run id, in order of start."""
    with psycopg.connect(dagster_url) as conn:
        return conn.execute(
            "SELECT pipeline_name, status, start_time, end_time, run_id FROM runs "
            "WHERE create_timestamp >= to_timestamp(%s) AT TIME ZONE 'UTC' ORDER BY start_time NULLS LAST",
            (since,),
        ).fetchall()


def reindex_steps(app_url: str, run_ids: list[str]) -> dict[str, tuple[int, float, float]]:
    """Per reindex run (its audit entry): documents completed, the step's reindex seconds, and of those the
    seconds spent handing materialisations to Dagster's event log."""
    with psycopg.connect(app_url) as conn:
        rows = conn.execute(
            "SELECT details->>'run_id', (details->>'completed')::int, (details->>'duration_s')::float, "
            "(details->>'event_log_s')::float FROM audit_events WHERE kind IN ('reindex.completed', "
            "'reindex.failed') AND details->>'run_id' = ANY(%s)",
            (run_ids,),
        ).fetchall()
    return {run_id: (n, seconds, events) for run_id, n, seconds, events in rows}


def phase_seconds(dagster_url: str, since: float) -> dict[str, tuple[int, float]]:
    """Per reindexed asset: how many partitions the runs since ``since`` reindexed and the seconds their phase
    took, summed over the documents (each materialisation's ``duration_s``)."""
    out: dict[str, list[float]] = {}
    with psycopg.connect(dagster_url) as conn:
        rows = conn.execute(
            "SELECT event FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
            "AND timestamp >= to_timestamp(%s) AT TIME ZONE 'UTC'",
            (since,),
        )
        for (event,) in rows:
            materialization = dg.deserialize_value(event, dg.EventLogEntry).asset_materialization
            if materialization is None or "duration_s" not in materialization.metadata:
                continue
            seconds = out.setdefault(materialization.asset_key.to_user_string(), [0, 0.0])
            seconds[0] += 1
            seconds[1] += float(materialization.metadata["duration_s"].value)
    return {key: (int(n), total) for key, (n, total) in sorted(out.items())}


def handled_ticks(url: str, bucket: Path, handled: int, targets: list[tuple[str, str]]) -> None:
    """``handled`` tiny objects in the bucket, recorded as handled; then the sensor's ticks over them."""
    started = time.perf_counter()
    org, ws = targets[0]
    folder = bucket / f"org/{org}/project/{ws}/restores"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(handled):
        (folder / f"2026-01-01T00-00-00Z__old-{i:06d}.txt").write_bytes(b"Total 1.00 EUR\n")
    fs, root = Bucket(url=bucket.as_uri()).filesystem()
    objects = [o for o in list_bucket(fs, root, {}, sweep=0, settle=0).objects if "__old-" in o[0]]
    sql = "COPY restore_objects (stored_key, fingerprint, size_bytes, status) FROM STDIN"
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(sql) as copy:
        for key, fp, size in objects:
            copy.write_row((key, fp, size, "ingested"))
    print(f"{len(objects):,} handled objects written and recorded in {time.perf_counter() - started:.0f} s")
    # settle_seconds=0: the handled files were just written, whole (the sensor's default leaves files changed in
    # the last seconds to a later tick)
    resources = {"app_db": AppDatabase(url=url), "bucket": Bucket(url=bucket.as_uri(), settle_seconds=0)}
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None) -> tuple[float, dg.SensorResult]:
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            started = time.perf_counter()
            result = restores_bucket_sensor(context)
            return (time.perf_counter() - started) * 1000, result

        took, result = tick(None)
        print(f"  first tick, its folder never listed (all {handled:,} compared with the database): {took:,.0f} ms")
        took, result = tick(None)
        print(f"  a restarted daemon (no cursor), nothing new: {took:,.0f} ms")
        times, cursor = [took], result.cursor
        while json.loads(cursor).get("sweep_after") is not None:
            took, result = tick(cursor)
            times.append(took)
            cursor = result.cursor
            assert not result.run_requests
        times.sort()
        print(
            f"  ticks with nothing new, until the sweep had checked every object: {len(times)} ticks of "
            f"{SWEEP_PER_TICK:,} objects, median {times[len(times) // 2]:,.0f} ms, slowest {times[-1]:,.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--handled", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("DATASETS_DIR", DATASETS)))
    args = parser.parse_args()
    files = real_files(args.root)
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings.from_env({"REINDEX_STATE_DIR": tmp})) as stack:
        app_url, dagster_url = stack.state.environment["DATABASE_URL"], stack.state.environment["DAGSTER_PG_URL"]
        migrate.upgrade(app_url)
        load_demo_corpus(app_url, 60, seed=SEED)
        targets = workspaces(app_url)
        with psycopg.connect(app_url) as conn:
            admin = conn.execute("SELECT id::text FROM users WHERE role = 'admin' ORDER BY username LIMIT 1").fetchone()
        if args.files:  # --files 0: the tick only
            url = stack.start_dagster(processes.free_port(3300), extra_env={"REINDEX_OPERATOR_USER_ID": admin[0]})
            print(f"stack up: {len(targets)} workspaces, Dagster at {url}; {len(files)} real files to repeat")
            try:
                dropped_backup(args, files, Path(tmp) / "bucket", targets, app_url, dagster_url)
            finally:
                stack.stop_dagster()
        handled_ticks(app_url, Path(tmp) / f"bucket-{uuid.uuid4().hex[:6]}", args.handled, targets)


def dropped_backup(args, files, bucket: Path, targets, app_url: str, dagster_url: str) -> None:
    """``--files`` real files dropped at once; followed until every one is indexed."""
    time.sleep(5)  # the daemon's first sensor ticks (an empty bucket)
    started = time.time()
    t0 = time.perf_counter()
    keys = drop(bucket, files, args.files, targets)
    dropped = time.perf_counter()
    print(f"{len(keys):,} files written into the bucket in {dropped - t0:.1f} s")
    result = follow(app_url, keys, dropped, args.timeout)
    print(
        f"all handled {result['ingested']:.1f} s after the drop, all indexed after {result['indexed']:.1f} s: "
        f"{len(keys) / result['indexed']:.1f} files/s from drop to indexed"
    )
    print(f"  outcome: {json.dumps(result['outcome'])}; reindex requests: {json.dumps(result['requests'])}")
    print(f"  documents with extracted fields: {result['with_fields']:,}")
    for error, n in result["errors"].most_common(5):
        print(f"  {n:5d} x {error}")
    runs = runs_of(dagster_url, started)
    for label, n in sorted(Counter(f"{name} {status}" for name, status, *_ in runs).items()):
        print(f"  runs: {n:4d} {label}")
    at = dropped - t0 + started  # the drop's end, in epoch seconds
    steps = reindex_steps(app_url, [run_id for *_, run_id in runs])
    for name, status, start, end, run_id in runs:
        span = f"{start - at:6.1f} s -> {end - at:6.1f} s" if start and end else "not run"
        step = steps.get(run_id)
        detail = (
            f": {step[0]:,} documents in {step[1]:.1f} s ({step[2]:.1f} s handing events to Dagster)" if step else ""
        )
        print(f"    {span}  {name} {status}{detail}")
    reindex_s = sum(end - start for name, _, start, end, _ in runs if start and end and name != "restore_ingest")
    print(f"  reindex runs: {reindex_s:.1f} s from start to end in all; their phases, summed over the documents:")
    for key, (n, seconds) in phase_seconds(dagster_url, started).items():
        print(f"    {key:<18}{n:6,} documents {seconds:7.1f} s ({seconds / max(n, 1) * 1000:.0f} ms a document)")


if __name__ == "__main__":
    main()
