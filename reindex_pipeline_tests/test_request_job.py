"""The UI's way to reindex a whole tenant: the ``reindex_request`` job queues one request and reports its runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import dagster as dg
import pytest

from reindex_pipeline.defs.request import reindex_request
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.resources import AppDatabase
from reindex_pipeline_tests.test_queue import SEED, USERS, Queue, _eligible


@pytest.fixture()
def q(app_db: str) -> Iterator[Queue]:
    load_demo_corpus(app_db, 60, SEED)
    # The job and the sensor run in two threads at once, as a run worker and the daemon do: they share a
    # file-backed instance, as those do (the in-memory one is one SQLite connection and not for two threads).
    with dg.instance_for_test() as instance:
        yield Queue(app_db, instance=instance)


def _launch(q: Queue, config: dict) -> dg.ExecuteInProcessResult:
    """Run the job as the UI's launchpad does, while the queue sensor ticks beside it (as the daemon does)."""
    result: list[dg.ExecuteInProcessResult] = []
    job = threading.Thread(
        target=lambda: result.append(
            reindex_request.execute_in_process(
                run_config={"ops": {"queue_reindex_request": {"config": config}}},
                resources={"app_db": AppDatabase(url=q.url)},
                instance=q.instance,
                raise_on_error=False,
            )
        )
    )
    job.start()
    run_requests: list[dg.RunRequest] = []
    while job.is_alive():
        run_requests += q.tick()
        job.join(0.5)
    q.launched = run_requests
    return result[0]


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def test_the_request_job_queues_a_request_that_the_queue_plans_into_runs(q: Queue) -> None:
    result = _launch(q, {"requester": "bob", "all_workspaces": True})
    assert result.success
    meta = _metadata(result)
    eligible = _eligible(q.url, owner=USERS["bob"])
    assert meta["status"] == "running" and meta["eligible"] == len(eligible) and meta["runs"] == len(q.launched)
    planned = {d for r in q.launched for d in r.run_config["ops"]["reindex_documents"]["config"]["document_ids"]}
    assert planned == set(eligible) and meta["skipped"]["not_owner"] > 0
    row = q.row(meta["request_id"])
    assert row["source"] == "ui" and str(row["requested_by"]) == USERS["bob"] and row["scope"] == "all"


def test_the_request_job_fails_with_the_reason_and_queues_nothing_it_may_not(q: Queue) -> None:
    for config, reason in (
        ({"requester": "nobody", "all_workspaces": True}, "no user 'nobody'"),
        ({"requester": "erin", "all_workspaces": True}, "erin is inactive"),
        ({"requester": "bob"}, "choose exactly one of"),
        ({"requester": "bob", "all_workspaces": True, "phases": ["ocr"]}, "unknown phase 'ocr'"),
    ):
        result = _launch(q, config)
        [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert not result.success and reason in failure.event_specific_data.error.message, config
    assert not q.launched
