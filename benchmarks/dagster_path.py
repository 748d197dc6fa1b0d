"""The Dagster path of the reindex benchmark: ``dagster dev`` on the benchmark's stack, driven like a user
drives it (a queue row for the daemon's sensor, a backfill and single runs through the webserver's GraphQL)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from reindex_pipeline.db import queue as queue_db
from reindex_pipeline.stack import processes
from reindex_pipeline.stack.supervisor import Stack

ASSETS = [{"path": ["extracted_data"]}, {"path": ["chunk_embeddings"]}, {"path": ["graph_entities"]}]
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status creationTime startTime endTime } } }
}"""
PARTITIONS = """
query { assetNodeOrError(assetKey: {path: ["extracted_data"]}) {
  ... on AssetNode { partitionKeysByDimension { partitionKeys } } } }"""
REPOSITORIES = """
query { repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"""
BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  }
}"""


@dataclass
class Timing:
    """What one way in cost: ``end_to_end`` from the request to its last run's end, ``in_runs`` from the first
    run's start to the last run's end, ``event_log_s`` spent storing materialisations (from the audit)."""

    runs: int
    first_start: float
    last_end: float
    event_log_s: float
    end_to_end: float = 0.0
    status_after: float = 0.0

    @property
    def in_runs(self) -> float:
        return self.last_end - self.first_start


class DagsterPath:
    def __init__(self, stack: Stack, database_url: str, admin_id: str):
        self.stack, self.database_url, self.admin_id = stack, database_url, admin_id
        self.url = ""
        self.verbose = False
        self.http = httpx.Client(timeout=60)

    def __enter__(self) -> DagsterPath:
        started = time.perf_counter()
        self.url = self.stack.start_dagster(
            processes.free_port(3300), extra_env={"REINDEX_OPERATOR_USER_ID": self.admin_id}
        )
        repo = self.gql(REPOSITORIES)["repositoriesOrError"]["nodes"][0]
        self.repository = {"repositoryName": repo["name"], "repositoryLocationName": repo["location"]["name"]}
        print(f"dagster dev up in {time.perf_counter() - started:.0f} s ({self.url})")
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL error: {body['errors'][0]['message']}")
        return body["data"]

    def partition_count(self) -> int:
        node = self.gql(PARTITIONS)["assetNodeOrError"]
        return len(node["partitionKeysByDimension"][0]["partitionKeys"])

    def wait_for_partitions(self, count: int, timeout: float = 300) -> None:
        """The documents_partition_sync sensor adds the corpus's partitions (every 30 s)."""
        deadline = time.monotonic() + timeout
        while self.partition_count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.partition_count()} of {count} partitions after {timeout:.0f} s")
            time.sleep(2)

    def runs(self, **filter_: Any) -> list[dict[str, Any]]:
        return self.gql(RUNS, filter=filter_)["runsOrError"]["results"]

    def wait_runs(self, run_ids: list[str], timeout: float = 3600) -> Timing:
        """Wait until every run finished and succeeded."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(runIds=run_ids)
            if len(runs) == len(run_ids) and all(r["status"] in FINISHED for r in runs):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("runs did not finish")
            time.sleep(1)
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
            events = conn.execute(
                "SELECT coalesce(sum((details->>'event_log_s')::float), 0) FROM audit_events "
                "WHERE kind = 'reindex.completed' AND details->>'run_id' = ANY(%s)",
                (run_ids,),
            ).fetchone()[0]
        return Timing(
            runs=len(runs),
            first_start=min(r["startTime"] for r in runs),
            last_end=max(r["endTime"] for r in runs),
            event_log_s=events,
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
        return timing

    def backfill(self, keys: list[str]) -> Timing:
        """A UI backfill of the three derived assets over ``keys``. Ineligible partitions among them are
        skipped by the run, and Dagster counts a skipped partition as failed: the backfill then ends
        COMPLETED_FAILED although every run succeeded, which is accepted here."""
        started, epoch = time.perf_counter(), time.time()
        result = self.gql(BACKFILL, params={"partitionNames": keys, "assetSelection": ASSETS, "fromFailure": False})
        launched = result["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {launched}")
        backfill_id = launched["backfillId"]
        while True:
            status = self.gql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]["status"]
            if status not in ("REQUESTED", "CANCELING"):
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        if not status.startswith("COMPLETED"):
            raise RuntimeError(f"backfill {backfill_id} ended {status}")
        runs = self.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
        timing = self.wait_runs([r["runId"] for r in runs])
        timing.end_to_end, timing.status_after = timing.last_end - epoch, elapsed
        return timing

    def all_partitions(self) -> list[str]:
        return self.gql(PARTITIONS)["assetNodeOrError"]["partitionKeysByDimension"][0]["partitionKeys"]

    def one_run_per_partition(self, keys: list[str]) -> float:
        """One run per document (what a partitioned asset without ranged runs does); seconds for all."""
        started = time.perf_counter()
        run_ids = []
        for key in keys:
            params = {
                "selector": {**self.repository, "jobName": "__ASSET_JOB", "assetSelection": ASSETS},
                "runConfigData": {},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
            }
            launched = self.gql(LAUNCH, params=params)["launchRun"]
            if launched["__typename"] != "LaunchRunSuccess":
                raise RuntimeError(f"run not launched: {launched}")
            run_ids.append(launched["run"]["runId"])
        self.wait_runs(run_ids)
        return time.perf_counter() - started
