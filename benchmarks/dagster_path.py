"""The Dagster path of the reindex benchmark: the Dagster webserver and daemon on the benchmark's stack, driven
like a user drives them (a queue row for the daemon's sensor, a backfill and single runs through GraphQL)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from reindex_pipeline.db import queue as queue_db
from reindex_pipeline.stack import processes
from reindex_pipeline.stack.dagster_client import DagsterClient
from reindex_pipeline.stack.supervisor import Stack


@dataclass
class Timing:
    """What one way in cost: ``end_to_end`` from the request to its last run's end, ``in_runs`` from the first
    run's start to the last run's end, ``event_log_s`` spent storing materialisations (from the audit)."""

    runs: int
    first_start: float
    last_end: float
    event_log_s: float
    first_created: float = 0.0
    end_to_end: float = 0.0
    status_after: float = 0.0
    pickup: float = 0.0  # from the request to its first run's creation (sensor or backfill daemon)
    run_ids: tuple[str, ...] = ()
    documents: int = 0  # documents the runs reindexed, and the seconds their steps took (from the audit)
    step_s: float = 0.0

    @property
    def in_runs(self) -> float:
        return self.last_end - self.first_start


class DagsterPath:
    def __init__(self, stack: Stack, database_url: str, admin_id: str):
        self.stack, self.database_url, self.admin_id = stack, database_url, admin_id
        self.client: DagsterClient | None = None
        self.verbose = False

    def __enter__(self) -> DagsterPath:
        started = time.perf_counter()
        url = self.stack.start_dagster(processes.free_port(3300), extra_env={"REINDEX_OPERATOR_USER_ID": self.admin_id})
        self.client = DagsterClient(url)
        print(f"dagster webserver and daemon up in {time.perf_counter() - started:.0f} s ({url})")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()

    def wait_for_partitions(self, count: int, timeout: float = 300) -> None:
        """The documents_partition_sync sensor adds the corpus's partitions (every 30 s)."""
        deadline = time.monotonic() + timeout
        while len(self.client.partition_keys()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {len(self.client.partition_keys())} of {count} partitions after {timeout:.0f} s"
                )
            time.sleep(2)

    def wait_runs(self, run_ids: list[str], timeout: float = 3600) -> Timing:
        """Wait until every run finished and succeeded."""
        runs = self.client.wait_runs(run_ids, timeout)
        if self.verbose:
            origin = min(r["creationTime"] for r in runs)
            for r in sorted(runs, key=lambda r: r["creationTime"]):
                print(
                    f"    run {r['runId'][:8]}: created +{r['creationTime'] - origin:.1f} s, started "
                    f"+{r['startTime'] - origin:.1f} s, ended +{r['endTime'] - origin:.1f} s"
                )
        failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
        if failed:
            raise RuntimeError(f"runs failed: {failed}")
        with psycopg.connect(self.database_url) as conn:
            events, documents, step_s = conn.execute(
                "SELECT coalesce(sum((details->>'event_log_s')::float), 0), "
                "coalesce(sum((details->>'document_count')::int), 0), "
                "coalesce(sum((details->>'duration_s')::float), 0) FROM audit_events "
                "WHERE kind = 'reindex.completed' AND details->>'run_id' = ANY(%s)",
                (run_ids,),
            ).fetchone()
        return Timing(
            runs=len(runs),
            first_created=min(r["creationTime"] for r in runs),
            first_start=min(r["startTime"] for r in runs),
            last_end=max(r["endTime"] for r in runs),
            event_log_s=events,
            run_ids=tuple(run_ids),
            documents=documents,
            step_s=step_s,
        )

    # -- the three ways in ------------------------------------------------------------------------------
    def queue_request(self) -> Timing:
        """A request for every document, as the app inserts it."""
        started, epoch = time.perf_counter(), time.time()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            org = conn.execute("SELECT org_id::text FROM users WHERE id = %s", (self.admin_id,)).fetchone()[0]
            request_id = queue_db.insert_request(
                conn, org_id=org, requested_by=self.admin_id, scope="all", source="app"
            )
            while True:
                row = queue_db.get_request(conn, request_id)
                if row["status"] in ("done", "failed"):
                    break
                time.sleep(0.5)
        elapsed = time.perf_counter() - started
        if row["status"] != "done":
            raise RuntimeError(f"request {request_id} ended {row['status']}: {row.get('last_error')}")
        timing = self.wait_runs(list(row["run_ids"]))
        timing.end_to_end, timing.status_after = timing.last_end - epoch, elapsed
        timing.pickup = timing.first_created - epoch
        return timing

    def backfill(self, keys: list[str]) -> Timing:
        """A UI backfill of the three derived assets over ``keys``; ineligible partitions among them are
        reported skipped (with their reason), so the backfill ends COMPLETED_SUCCESS."""
        started, epoch = time.perf_counter(), time.time()
        backfill_id = self.client.launch_backfill(keys)
        # Asked every 2 s, not 0.5 s: each answer costs the webserver a GraphQL query, and at 2 Hz that was
        # ~2 % of a core taken from the runs (the UI's own backfill page asks less often).
        status = self.client.wait_backfill(backfill_id, poll=2.0)
        elapsed = time.perf_counter() - started
        if status != "COMPLETED_SUCCESS":
            raise RuntimeError(f"backfill {backfill_id} ended {status}")
        timing = self.wait_runs([r["runId"] for r in self.client.backfill_runs(backfill_id)])
        timing.end_to_end, timing.status_after = timing.last_end - epoch, elapsed
        timing.pickup = timing.first_created - epoch
        return timing

    def restore_one(self, text: str) -> tuple[float, float, float]:
        """Drop one file into the restores bucket; seconds until its queue row exists (the bucket sensor),
        until its run started, and until the request is done (the document indexed)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            org, workspace = conn.execute(
                "SELECT w.org_id::text, w.id::text FROM workspaces w JOIN users u ON u.org_id = w.org_id "
                "WHERE u.id = %s ORDER BY w.name LIMIT 1",
                (self.admin_id,),
            ).fetchone()
            key = f"org/{org}/project/{workspace}/restores/{time.strftime('%Y-%m-%dT%H-%M-%SZ')}__bench-restore.txt"
            target = self.stack.settings.bucket_path / key
            target.parent.mkdir(parents=True, exist_ok=True)
            epoch = time.time()
            target.write_text(text)
            queued = None
            while True:
                row = conn.execute(
                    "SELECT id::text, status, run_ids FROM reindex_queue WHERE stored_key = %s", (key,)
                ).fetchone()
                if row and queued is None:
                    queued = time.time() - epoch
                if row and row[1] in ("done", "failed"):
                    break
                if time.time() - epoch > 600:
                    raise TimeoutError("the restored file was not indexed within 10 minutes")
                time.sleep(0.25)
        done = time.time() - epoch
        if row[1] != "done":
            raise RuntimeError(f"the restore's request ended {row[1]}")
        started = min(r["startTime"] for r in self.client.wait_runs(list(row[2])))
        return queued, started - epoch, done

    def all_partitions(self) -> list[str]:
        return self.client.partition_keys()

    def one_run_per_partition(self, keys: list[str]) -> float:
        """One run per document (what a partitioned asset without ranged runs does); seconds for all."""
        started = time.perf_counter()
        self.wait_runs([self.client.launch_partition_run(key) for key in keys])
        return time.perf_counter() - started
