"""The reindex queue: rows in ``reindex_queue`` become reindex runs.

``reindex_queue_sensor`` claims due rows (``FOR UPDATE SKIP LOCKED``), applies the request rules,
resolves each request through eligibility and RBAC, and launches the runs. ``reindex_queue_outcomes``
follows those runs (by tag) and moves each row to done, or back to pending with backoff, or to failed.
A row whose lease expires (its daemon died) is claimed again and its runs launched afresh (writes are
idempotent, so a run that did finish before the crash costs time, not correctness). What a row's plan and
its conclusion are is ``reindex.requests``'s; these sensors claim, launch and ask Dagster about runs.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg

from reindex_pipeline.db import queue
from reindex_pipeline.defs.reindex import ASSET_OF, ended_runs
from reindex_pipeline.domain.queue_rules import (
    ATTEMPT_TAG,
    QUEUE_SOURCE_TAG,
    REQUEST_TAG,
    run_sizes,
    runs_lost,
    sharing_runs,
)
from reindex_pipeline.partitions import documents
from reindex_pipeline.reindex import requests
from reindex_pipeline.reindex.runner import ALL_PHASES
from reindex_pipeline.resources import AppDatabase, ReindexPolicy

PARTITION_BATCH = 20_000
REINDEX_ASSETS = [ASSET_OF[p] for p in ALL_PHASES]
#: Rows claimed at a time, and the seconds after which a tick claims no more (the daemon allows a tick 60 s).
CLAIM_BATCH, TICK_BUDGET_S = 50, 20.0
#: The sensor daemon loops every 5 s (a Dagster constant). With a minimum interval of 5 s as well, a tick that
#: started a little later in its loop than the one before was "too soon" and waited for the next loop (10 s);
#: below the loop time, the queue is read on every loop.
EVERY_DAEMON_LOOP_S = 1
#: A restore's reindex run created longer ago than this and still not started holds no more restores back (the
#: run queue may be paused, or its pool's slot held by a run that hangs): they get runs of their own.
RESTORE_RUN_WAIT_S = 600


@dg.sensor(
    name="reindex_queue",
    minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
    asset_selection=REINDEX_ASSETS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns due reindex_queue rows into reindex runs (user requests before scheduled ones).",
)
def reindex_queue_sensor(
    context: dg.SensorEvaluationContext, app_db: AppDatabase, reindex_policy: ReindexPolicy
) -> dg.SensorResult:
    owner = f"sensor:{uuid.uuid4().hex[:8]}"
    run_requests: list[dg.RunRequest] = []
    new_keys: list[str] = []
    claimed: list[dict] = []
    started = time.monotonic()
    with app_db.connect() as conn:
        # Batches of due rows until none is left or the tick's time is spent: a burst of requests is decided
        # in one tick or a few, not 20 rows every 5 s.
        # Restores wait while a run of theirs waits for its slot: what they queue meanwhile goes in one run
        # when that one starts, instead of a run (and its start) per batch of a restored backup.
        skip = ("restore",) if restore_run_waiting(context.instance) else ()
        while time.monotonic() - started < TICK_BUDGET_S:
            batch = queue.claim_due(conn, owner, limit=CLAIM_BATCH, skip_scopes=skip)
            conn.commit()
            if not batch:
                break
            claimed += batch
            for rows in sharing_runs(batch):
                planned = []
                for row in rows:
                    launch = requests.plan(
                        conn, row, reindex_policy.operator_user_id, lambda ids: ended_runs(context.instance, ids)
                    )
                    if isinstance(launch, str):
                        context.log.info(f"request {row['id']}: {launch}")
                    else:
                        planned.append((row, launch))
                    conn.commit()
                if not planned:
                    continue
                carrier, together = planned[0][0], requests.together([launch for _, launch in planned])
                if carrier["scope"] in ("documents", "restore"):
                    new_keys += together.eligible_ids
                # A fresh tag per claim: a requeued or reclaimed request never mistakes older runs for its own.
                attempt = f"{carrier['attempts']}-{uuid.uuid4().hex[:6]}"
                chunks = _run_requests(carrier, attempt, together, reindex_policy)
                shared = len(planned) > 1
                held = [
                    row
                    for row, launch in planned
                    if requests.launched(
                        conn,
                        row,
                        owner,
                        attempt,
                        len(chunks),
                        launch,
                        shared=together if shared else None,
                        carrier=carrier["id"] if shared else None,
                    )
                ]
                conn.commit()
                for row, _ in planned:
                    if row not in held:
                        context.log.warning(f"request {row['id']}: its lease ran out while it was planned")
                if not held:
                    continue  # every row was claimed again: those claims launch the runs
                run_requests += chunks
                if shared:
                    context.log.info(
                        f"requests {', '.join(r['id'] for r, _ in planned)} share {len(chunks)} run(s) tagged "
                        f"{carrier['id']}: {len(together.eligible_ids)} documents"
                    )
    # Documents named one by one (a restore's, just created) may be newer than the partition sync: they get their
    # partitions now, so the UI shows them with their runs (the instance skips the keys it has, ~2.5 s a batch of
    # 20,000 at 1M partitions). A workspace's or everyone's documents are the sync's: checking 740,000 keys took
    # the tick past its 60 s. The runs name their documents in config and need no partition to exist.
    for start in range(0, len(new_keys), PARTITION_BATCH):
        context.instance.add_dynamic_partitions(documents.name, new_keys[start : start + PARTITION_BATCH])
    if not run_requests and not claimed:
        return dg.SensorResult(skip_reason="no due requests")
    return dg.SensorResult(run_requests=run_requests)


def restore_run_waiting(instance: dg.DagsterInstance, within_s: float = RESTORE_RUN_WAIT_S) -> bool:
    """Whether a restore request's reindex run was created in the last ``within_s`` seconds and has not started
    (it waits for its pool's slot). A restore's ingest runs serve no request and do not count."""
    waiting = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING]
    since = datetime.now(UTC) - timedelta(seconds=within_s)
    runs = dg.RunsFilter(statuses=waiting, tags={QUEUE_SOURCE_TAG: "restore"}, created_after=since)
    return bool(instance.get_run_records(runs, limit=1))


def _run_requests(row: dict, attempt: str, launch: requests.Launch, policy: ReindexPolicy) -> list[dg.RunRequest]:
    """Runs of the sizes ``run_sizes`` gives, tagged with the request and its attempt, each naming its documents
    in its config. The runs carry no partition range: Dagster would resolve each range against every partition
    of the asset and store a planned materialisation per partition and asset when it creates the run (at
    1,000,000 partitions ~5 s and 7,500 rows a run); without one, a run's materialisations still land on their
    document's partition. The consistency checks are left out (a reindex run does not run them)."""
    out = []
    start = 0
    ids = launch.eligible_ids
    for n, size in enumerate(run_sizes(len(ids), policy.max_documents_per_run, policy.parallel_runs)):
        chunk = ids[start : start + size]
        start += size
        out.append(
            dg.RunRequest(
                run_key=f"{row['id']}:{attempt}:{n}",
                asset_selection=[ASSET_OF[p] for p in launch.phases],
                asset_check_keys=[],
                run_config={"ops": {"reindex_documents": {"config": {**launch.config, "document_ids": chunk}}}},
                tags={
                    REQUEST_TAG: row["id"],
                    ATTEMPT_TAG: attempt,
                    "dagster/priority": str(row["priority"]),
                    "reindex/source": row["source"],
                    QUEUE_SOURCE_TAG: row["source"],
                },
            )
        )
    return out


@dg.sensor(
    name="reindex_queue_outcomes",
    minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Moves running reindex_queue rows to done / pending (backoff) / failed from their runs.",
)
def reindex_queue_outcomes(
    context: dg.SensorEvaluationContext, app_db: AppDatabase, reindex_policy: ReindexPolicy
) -> dg.SensorResult:
    finished = 0
    with app_db.connect() as conn:
        for row in queue.running_requests(conn):
            attempt = row["counts"].get("attempt_tag", str(row["attempts"]))
            tagged = row["counts"].get("carrier") or row["id"]  # runs shared with other requests carry one's id
            runs = context.instance.get_runs(dg.RunsFilter(tags={REQUEST_TAG: tagged, ATTEMPT_TAG: attempt}))
            run_ids = [r.run_id for r in runs]
            expected = int(row["counts"].get("runs_expected") or 0)
            if runs_lost(len(runs), expected, row["counts"].get("planned_at"), time.time()):
                # Planned by a tick that never returned its runs: the lease runs out and the queue claims it again.
                context.log.warning(
                    f"request {row['id']}: {len(runs)} of {expected} runs were created; it is claimed again "
                    "once its lease expires"
                )
                continue
            if len(runs) < expected or any(not r.is_finished for r in runs):
                queue.heartbeat(conn, row["id"], run_ids)
                conn.commit()
                continue
            succeeded = all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            requests.conclude(conn, row, run_ids, succeeded, reindex_policy.max_attempts, datetime.now(UTC))
            conn.commit()
            finished += 1
    return dg.SensorResult(skip_reason=None if finished else "no request finished")
