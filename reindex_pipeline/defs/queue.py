"""The reindex queue: rows in ``reindex_queue`` become reindex runs.

``reindex_queue_sensor`` claims due rows (``FOR UPDATE SKIP LOCKED``), applies the request rules,
resolves each request through eligibility and RBAC, and launches the runs. ``reindex_queue_outcomes``
follows those runs (by tag) and moves each row to done, or back to pending with backoff, or to failed.
A row whose lease expires (its daemon died) is claimed again and its runs launched afresh (writes are
idempotent, so a run that did finish before the crash costs time, not correctness).
"""

import time
import uuid
from datetime import UTC, datetime

import dagster as dg

from reindex_pipeline.db import audit, queue, run_progress
from reindex_pipeline.db import documents as db
from reindex_pipeline.defs.reindex import ASSET_OF, ended_runs
from reindex_pipeline.domain.audit import Refused, RequestFinished, RequestStarted
from reindex_pipeline.domain.queue_rules import ATTEMPT_TAG, REQUEST_TAG, after_failure, run_sizes, runs_lost
from reindex_pipeline.domain.selection import acting_as, select_documents
from reindex_pipeline.llm.calls import Usage
from reindex_pipeline.partitions import documents
from reindex_pipeline.reindex import admission
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
        while time.monotonic() - started < TICK_BUDGET_S:
            batch = queue.claim_due(conn, owner, limit=CLAIM_BATCH)
            conn.commit()
            if not batch:
                break
            claimed += batch
            for row in batch:
                outcome = _plan(conn, row, reindex_policy, context.instance)
                if isinstance(outcome, str):
                    context.log.info(f"request {row['id']}: {outcome}")
                    conn.commit()
                    continue
                eligible_ids, config, counts = outcome
                if row["scope"] in ("documents", "restore"):
                    new_keys += eligible_ids
                # A fresh tag per claim: a requeued or reclaimed request never mistakes older runs for its own.
                attempt = f"{row['attempts']}-{uuid.uuid4().hex[:6]}"
                chunks = _run_requests(row, attempt, eligible_ids, config, reindex_policy)
                run_requests += chunks
                queue.launched(conn, row["id"], attempt, len(chunks), counts)
                event = RequestStarted(
                    **_about(row), request_id=row["id"], runs=len(chunks), stored_key=row["stored_key"], **counts
                )
                audit.record(conn, event)
                conn.commit()
    # Documents named one by one (a restore's, just created) may be newer than the partition sync: they get their
    # partitions now, so the UI shows them with their runs (the instance skips the keys it has, ~2.5 s a batch of
    # 20,000 at 1M partitions). A workspace's or everyone's documents are the sync's: checking 740,000 keys took
    # the tick past its 60 s. The runs name their documents in config and need no partition to exist.
    for start in range(0, len(new_keys), PARTITION_BATCH):
        context.instance.add_dynamic_partitions(documents.name, new_keys[start : start + PARTITION_BATCH])
    if not run_requests and not claimed:
        return dg.SensorResult(skip_reason="no due requests")
    return dg.SensorResult(run_requests=run_requests)


def _run_requests(
    row: dict, attempt: str, eligible_ids: list[str], config: dict, policy: ReindexPolicy
) -> list[dg.RunRequest]:
    """Runs of the sizes ``run_sizes`` gives, tagged with the request and its attempt, each naming its documents
    in its config. The runs carry no partition range: Dagster would resolve each range against every partition
    of the asset and store a planned materialisation per partition and asset when it creates the run (at
    1,000,000 partitions ~5 s and 7,500 rows a run); without one, a run's materialisations still land on their
    document's partition. The consistency checks are left out (a reindex run does not run them)."""
    requests = []
    start = 0
    for n, size in enumerate(run_sizes(len(eligible_ids), policy.max_documents_per_run, policy.parallel_runs)):
        chunk = eligible_ids[start : start + size]
        start += size
        requests.append(
            dg.RunRequest(
                run_key=f"{row['id']}:{attempt}:{n}",
                asset_selection=config["assets"],
                asset_check_keys=[],
                run_config={"ops": {"reindex_documents": {"config": {**config["config"], "document_ids": chunk}}}},
                tags={
                    REQUEST_TAG: row["id"],
                    ATTEMPT_TAG: attempt,
                    "dagster/priority": str(row["priority"]),
                    "reindex/source": row["source"],
                },
            )
        )
    return requests


def _plan(conn, row: dict, policy: ReindexPolicy, instance: dg.DagsterInstance) -> str | tuple[list[str], dict, dict]:
    """Either the reason the row ended now (refused, dry run, nothing to do) or what to launch."""
    requester_id = row["requested_by"] or (
        policy.operator_user_id if row["source"] in ("schedule", "restore") else None
    )
    requester, reason = admission.refusal(
        conn,
        requester_id=requester_id,
        scope=row["scope"],
        workspace_id=row["workspace_id"],
        source=row["source"],
        at=row["created_at"],
        request_id=row["id"],
    )
    if reason and row["source"] == "schedule" and reason.startswith("busy"):
        queue.postpone(conn, row["id"], reason)  # a scheduled global reindex waits; users' requests are refused
        return f"postponed: {reason}"
    if reason or requester is None:
        return _refuse(conn, row, requester_id, reason or "refused")
    requester, acting = acting_as(requester, policy.operator_user_id)  # as the run will
    if acting != "operator" and requester.org_id != row["org_id"]:
        reason = f"refused: requester {requester.username or requester.id} belongs to another organisation"
        return _refuse(conn, row, requester_id, reason)
    if row["scope"] in ("documents", "restore"):
        candidates = db.load_documents(conn, row["document_ids"] or [])
        requested = row["document_ids"] or []
    else:
        workspace = row["workspace_id"] if row["scope"] == "workspace" else None
        candidates = list(db.iter_documents(conn, workspace, org_id=requester.org_id))
        requested = None
    # Documents a finished run left 'indexing' (its worker was killed) are requested again, not skipped as busy.
    holders = {d.indexing_run_id for d in candidates if d.index_status == "indexing" and d.indexing_run_id}
    dead_runs = ended_runs(instance, holders)
    selection = select_documents(requester, candidates, row["workspace_id"], requested, dead_runs=dead_runs)
    counts = {
        "eligible": len(selection.eligible),
        "skipped": selection.skipped_by_reason(),
        "preview": selection.confirmation(),
        "requester": requester_id,
        "role": requester.role,
        "scope_audit": requester.scope,
    }
    if row["dry_run"] or not selection.eligible:
        queue.finish(conn, row["id"], "done", {**counts, "dry_run": row["dry_run"]}, [])
        event = RequestFinished(
            **_about(row, requester_id),
            request_id=row["id"],
            stored_key=row["stored_key"],
            dry_run=row["dry_run"],
            eligible=counts["eligible"],
            skipped=counts["skipped"],
            preview=counts["preview"],
        )
        audit.record(conn, event)
        return "dry run: " + selection.confirmation() if row["dry_run"] else "nothing eligible"
    phases = [p for p in ALL_PHASES if p in set(row["phases"])]
    config = {
        "requester_id": requester_id,
        "workspace_id": row["workspace_id"],
        "phases": phases,
        "stale_only": row["stale_only"],
    }
    return selection.eligible_ids, {"config": config, "assets": [ASSET_OF[p] for p in phases]}, counts


def _refuse(conn, row: dict, requester_id: str | None, reason: str) -> str:
    queue.finish(conn, row["id"], "refused", {"reason": reason}, [], error=reason)
    event = Refused(**_about(row, requester_id), request_id=row["id"], reason=reason, scope=row["scope"])
    audit.record(conn, event)
    return reason


def _about(row: dict, actor_id: str | None = None) -> dict:
    """The audit envelope of a queue row's event: its organisation, workspace and requester."""
    return {"org_id": row["org_id"], "workspace_id": row["workspace_id"], "actor_id": actor_id or row["requested_by"]}


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
            runs = context.instance.get_runs(dg.RunsFilter(tags={REQUEST_TAG: row["id"], ATTEMPT_TAG: attempt}))
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
            summary = _summarise(conn, run_ids)
            finished_event = dict(
                _about(row),
                request_id=row["id"],
                stored_key=row["stored_key"],
                completed=summary["completed"],
                unchanged=summary["unchanged"],
                failed=summary["failed"],
                errors=summary["errors"][:50],
                model_usage=summary.get("model_usage"),
            )
            if all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
                queue.finish(conn, row["id"], "done", summary, run_ids)
                audit.record(conn, RequestFinished(**finished_event))
            else:
                error = "; ".join(summary["errors"][:5]) or "a reindex run failed"
                decision = after_failure(row["attempts"], reindex_policy.max_attempts, datetime.now(UTC))
                retry_ids = summary["failed_documents"] or None
                queue.retry_or_fail(conn, row["id"], decision, error, summary, run_ids, retry_ids)
                if decision.status == "failed":
                    audit.record(conn, RequestFinished(**finished_event, error=error, attempts=decision.attempts))
            conn.commit()
            finished += 1
    return dg.SensorResult(skip_reason=None if finished else "no request finished")


def _summarise(conn, run_ids: list[str]) -> dict:
    """Per-document counts of the runs, from the progress rows they wrote (``db.run_progress``)."""
    progress = run_progress.of_runs(conn, run_ids)
    errors = [f"{f['document_id']}: {f['error']}" for f in progress.failures]
    unfinished = len(run_ids) - progress.finished_runs
    if unfinished:
        errors.append(f"{unfinished} run(s) ended without reporting their documents (see their logs in Dagster)")
    usage = Usage()
    for counts in progress.model_usage:
        usage.add(Usage(**counts))
    return {
        "completed": progress.completed,
        "unchanged": progress.unchanged,  # of the completed: nothing stale
        "failed": progress.failed,
        "errors": errors,
        # a run that ended without its last report may have left any of its documents undone: then all again
        "failed_documents": [] if unfinished else [f["document_id"] for f in progress.failures],
        **({"model_usage": usage.as_dict()} if usage.calls else {}),
    }
