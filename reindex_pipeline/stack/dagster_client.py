"""A small client of the Dagster webserver's GraphQL API: what a person does in the UI (launch a backfill or a
run, watch it), for the benchmarks, the screenshots and the tests that drive a real webserver and daemon."""

from __future__ import annotations

import time
from typing import Any

import httpx

#: The three document-partitioned assets a reindex materialises.
DERIVED_ASSETS = [{"path": ["extracted_data"]}, {"path": ["chunk_embeddings"]}, {"path": ["graph_entities"]}]
FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
  }
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


class DagsterClient:
    def __init__(self, url: str, timeout: float = 60):
        self.url = url
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL error: {body['errors'][0]['message']}")
        return body["data"]

    def repository(self) -> dict[str, str]:
        """The selector of the (only) code location's repository."""
        repo = self.gql(REPOSITORIES)["repositoriesOrError"]["nodes"][0]
        return {"repositoryName": repo["name"], "repositoryLocationName": repo["location"]["name"]}

    def partition_keys(self) -> list[str]:
        return self.gql(PARTITIONS)["assetNodeOrError"]["partitionKeysByDimension"][0]["partitionKeys"]

    def runs(self, **filter_: Any) -> list[dict[str, Any]]:
        return self.gql(RUNS, filter=filter_)["runsOrError"]["results"]

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        return self.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])

    def launch_backfill(self, keys: list[str], assets: list[dict] | None = None) -> str:
        """A partition backfill of ``assets`` (the derived ones) over ``keys``, as the UI launches it."""
        params = {"partitionNames": keys, "assetSelection": assets or DERIVED_ASSETS, "fromFailure": False}
        launched = self.gql(BACKFILL, params=params)["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {launched}")
        return launched["backfillId"]

    def wait_backfill(self, backfill_id: str, timeout: float = 3600, poll: float = 0.5) -> str:
        """The backfill's final status (COMPLETED_SUCCESS, COMPLETED_FAILED, FAILED, CANCELED), asked every
        ``poll`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.gql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]["status"]
            if status not in ("REQUESTED", "CANCELING"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout:.0f} s")
            time.sleep(poll)

    def launch_partition_run(self, key: str, assets: list[dict] | None = None) -> str:
        """One run of the derived assets for one partition (what a partition's "Materialize" does)."""
        params = {
            "selector": {**self.repository(), "jobName": "__ASSET_JOB", "assetSelection": assets or DERIVED_ASSETS},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
        }
        launched = self.gql(LAUNCH, params=params)["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"run not launched: {launched}")
        return launched["run"]["runId"]

    def wait_runs(self, run_ids: list[str], timeout: float = 3600) -> list[dict[str, Any]]:
        """The runs, once every one of them has finished."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(runIds=run_ids)
            if len(runs) == len(run_ids) and all(r["status"] in FINISHED_RUN for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError("runs did not finish")
            time.sleep(1)
