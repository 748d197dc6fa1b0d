"""A run worker killed without a word: its run is failed by the watch, its request retried, its documents
taken over by the next run at once (not after the claim lease)."""

from __future__ import annotations

import time

import dagster as dg
import psycopg
import pytest

from reindex_pipeline.db import documents as db
from reindex_pipeline.db import heartbeats
from reindex_pipeline.defs.ocr import preserved_ocr_output
from reindex_pipeline.defs.run_watch import reindex_run_watch
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline_tests.test_queue import ASSET, SEED, USERS, Queue, _eligible


@pytest.fixture()
def q(app_db: str) -> Queue:
    load_demo_corpus(app_db, 60, SEED)
    return Queue(app_db)


def _beats(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT run_id, pid, beat_at FROM reindex_run_heartbeats").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_a_heartbeat_beats_while_open_and_is_gone_when_closed(app_db: str) -> None:
    with heartbeats.Heartbeat(app_db, "run-a", interval_s=0.1) as beat:
        first = _beats(app_db)["run-a"]
        time.sleep(0.5)
        later = _beats(app_db)["run-a"]
        assert first[0] == beat.pid and later[1] > first[1]
    assert "run-a" not in _beats(app_db)


def test_a_silent_run_is_failed_retried_and_its_documents_taken_over_at_once(q: Queue) -> None:
    docs = sorted(_eligible(q.url))[:6]
    rid = q.request(requested_by=USERS["admin"], scope="documents", document_ids=docs)
    [request] = q.tick()

    # The run the sensor asked for starts, claims two documents, and its worker is killed (no event, no release).
    defs = dg.Definitions(assets=[ASSET, preserved_ocr_output], resources=q.resources())
    job = defs.resolve_implicit_global_asset_job_def()
    dead = q.instance.create_run_for_job(
        job_def=job, run_config=request.run_config, tags=request.tags, status=dg.DagsterRunStatus.STARTED
    )
    with psycopg.connect(q.url, autocommit=True) as conn:
        assert db.claim_many(conn, dead.run_id, {d: {"run_id": dead.run_id} for d in docs[:2]}) == set(docs[:2])
        heartbeats.beat(conn, dead.run_id, "worker-host", 4242)

    watch = dg.build_sensor_context(instance=q.instance, resources=q.resources())
    assert reindex_run_watch(watch).skip_reason  # still beating: left alone
    q.follow()
    assert q.row(rid)["status"] == "running"  # a STARTED run holds its request

    with psycopg.connect(q.url, autocommit=True) as conn:
        conn.execute("UPDATE reindex_run_heartbeats SET beat_at = now() - interval '2 minutes'")
    reindex_run_watch(dg.build_sensor_context(instance=q.instance, resources=q.resources()))
    run = q.instance.get_run_by_id(dead.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    [failure] = q.instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "pid 4242 on worker-host" in failure.message
    assert _beats(q.url) == {}

    q.follow()
    row = q.row(rid)
    assert row["status"] == "pending" and "ended without reporting their documents" in row["last_error"]
    q.make_due(rid)
    [retry] = q.tick()
    result = q.execute(retry)
    assert result.success
    taken_over = [e.user_message for e in q.instance.all_logs(result.run_id) if "Taking over" in e.user_message]
    assert taken_over and dead.run_id in taken_over[0]
    q.follow()
    assert q.row(rid)["status"] == "done" and q.row(rid)["counts"]["completed"] == len(docs)
    with psycopg.connect(q.url) as conn:
        statuses = conn.execute("SELECT DISTINCT index_status FROM documents WHERE id = ANY(%s::uuid[])", (docs,))
        assert [s for (s,) in statuses] == ["indexed"]
    assert _beats(q.url) == {}  # the retry's own heartbeat is gone with it


def test_up_says_what_a_stopped_stack_left_in_flight(q: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    from reindex_pipeline.cli import _report_unfinished

    _report_unfinished(q.url)
    assert "Found from before" not in capsys.readouterr().out  # nothing in flight: nothing said
    docs = sorted(_eligible(q.url))[:3]
    q.request(requested_by=USERS["admin"], scope="documents", document_ids=docs)
    q.tick()
    with psycopg.connect(q.url, autocommit=True) as conn:
        db.claim_many(conn, "run-x", {d: {"run_id": "run-x"} for d in docs[:2]})
        heartbeats.beat(conn, "run-x", "host", 1)
        assert heartbeats.unfinished_work(conn) == {
            "running_requests": 1,
            "pending_requests": 0,
            "indexing": 2,
            "runs": 1,
        }
    _report_unfinished(q.url)
    said = " ".join(capsys.readouterr().out.split())
    assert "1 reindex request(s) running" in said and "2 document(s) left 'indexing'" in said
