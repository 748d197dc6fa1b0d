"""The restores bucket: every file restored under ``org/<org>/project/<project>/restores/`` becomes a document
once, and is reindexed through the queue.

The sensor only detects: it lists the bucket, checks each new object's key and tenant (no file is read in a
tick), records it in ``restore_objects`` (one row per key and fingerprint, inserted with ON CONFLICT DO
NOTHING: exactly once, across daemon restarts) and launches ``restore_ingest`` runs over batches of the
pending ones. A run reads, parses and OCRs its files, stores the documents (:mod:`reindex_pipeline.ingest.
restores`) and queues one reindex request per workspace for those it ingested. A bad key or an unreadable
file is recorded with the reason and an audit entry and touches nothing else. Restores are reindexed as
REINDEX_OPERATOR_USER_ID (a restore re-ingests with admin rights).
"""

import hashlib
import json
import time

import dagster as dg
from pydantic import Field

from reindex_pipeline.db import audit, restores
from reindex_pipeline.domain.audit import RestoreRejected
from reindex_pipeline.ingest.bucket_listing import Listing, list_bucket
from reindex_pipeline.ingest.parsing import UnreadableFile, check_size
from reindex_pipeline.ingest.restore_keys import InvalidRestoreKey, parse_restore_key
from reindex_pipeline.ingest.restores import batches, ingest_objects, queue_unqueued
from reindex_pipeline.resources import AppDatabase, Bucket
from reindex_pipeline.settings import RESTORE_INGEST_POOL

JOB_NAME = "restore_ingest"
#: Files a ``restore_ingest`` run takes: each run pays its start (~2 s) once for all of them, and runs of the
#: ``restore_ingest`` pool (RESTORE_INGEST_RUNS at once, 2 by default) share the machine with the reindex run
#: of what they stored. 1,000 restored files at 200 a run: five runs, four at once on 2 cores, 8.4 files/s
#: from drop to indexed; at 500 a run, two runs, 10.6 files/s (docs/benchmarks.md).
FILES_PER_RUN = 500
#: New objects a tick records (the rest are recorded by the next ticks).
MAX_NEW_PER_TICK = 5000
#: Seconds after which pending objects whose run has not taken them are launched again (its run never came
#: or died before reaching them).
RELAUNCH_AFTER_S = 900


class RestoreIngestConfig(dg.Config):
    object_ids: list[int] = Field(description="restore_objects rows to ingest (pending ones; others are left)")


@dg.op(name="ingest_restored_files", pool=RESTORE_INGEST_POOL)
def ingest_restored_files(
    context: dg.OpExecutionContext, config: RestoreIngestConfig, app_db: AppDatabase, bucket: Bucket
) -> dg.Output:
    """Parse (OCR where a page has no text), store and queue the reindex of a batch of restored files."""
    report = ingest_objects(app_db.connect, bucket.read, config.object_ids, context.run.run_id, context.log.info)
    context.log.info(
        f"{len(report.ingested)} of {len(config.object_ids)} files ingested, {len(report.failed)} failed"
        + (f", {report.taken_elsewhere} already taken by another run" if report.taken_elsewhere else "")
        + (f"; {report.ocr_pages} pages read by OCR" if report.ocr_pages else "")
        + (f"; reindex requests {', '.join(report.requests)}" if report.requests else "")
    )
    return dg.Output(
        None,
        metadata={
            "ingested": len(report.ingested),
            "failed": len(report.failed),
            "ocr_pages": report.ocr_pages,
            "failures": dg.MetadataValue.json([{"key": k, "why": why} for k, why in report.failed[:100]]),
            "reindex_requests": dg.MetadataValue.json(report.requests),
        },
    )


@dg.job(
    name=JOB_NAME,
    description="Ingests a batch of restored files (parse, OCR, chunk) and queues their reindex; launched by the "
    "restores_bucket sensor.",
    tags={"reindex/source": "restore"},
)
def restore_ingest() -> None:
    ingest_restored_files()


@dg.sensor(
    name="restores_bucket",
    job=restore_ingest,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records files restored into the bucket, each exactly once, and launches runs that ingest them.",
)
def restores_bucket_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase, bucket: Bucket) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor and context.cursor.startswith("{") else {}
    fs, root = bucket.filesystem()
    recorded, more = 0, False
    with app_db.connect() as conn:
        listing = list_bucket(
            fs, root, restores.folder_times(conn), state.get("sweep_after"), settle=bucket.settle_seconds
        )
        for problem in listing.unreadable[:20]:  # passed over, not lost: listed again once it can be read
            context.log.warning(f"restores bucket: cannot list {problem}")
        digest = hashlib.sha256(json.dumps(listing.objects).encode()).hexdigest() if listing.full else None
        if digest is None or digest != state.get("listing"):  # an unchanged full listing is not compared again
            done = restores.seen(conn, [(k, f) for k, f, _ in listing.objects])
            todo = [o for o in listing.objects if (o[0], o[1]) not in done]
            more = len(todo) > MAX_NEW_PER_TICK
            for key, fp, size in todo[:MAX_NEW_PER_TICK]:
                outcome = _record(conn, key, fp, size)
                if outcome:
                    context.log.info(f"{key}: {outcome}")
                recorded += 1
            if not more:
                restores.save_folder_times(conn, listing.folders)
            conn.commit()
        unqueued = restores.ingested_unqueued(conn)
        ended = {r for r in {o.run_id for o in unqueued} if r and _ended(context.instance, r)}
        orphans = [o for o in unqueued if o.run_id in ended]  # their run ended before it queued them
        if orphans:
            requests = queue_unqueued(conn, orphans)
            context.log.warning(f"{len(orphans)} restored files stored by ended runs queued for reindex: {requests}")
        pending = restores.to_launch(conn, MAX_NEW_PER_TICK, RELAUNCH_AFTER_S)
        run_requests = []
        for batch in batches(pending, FILES_PER_RUN):
            ids = [p.id for p in batch]
            run_requests.append(
                dg.RunRequest(
                    run_key=f"restore-ingest:{_launches(batch)}",
                    run_config={"ops": {"ingest_restored_files": {"config": {"object_ids": ids}}}},
                    tags={"reindex/restore_files": str(len(ids))},
                )
            )
            restores.mark_launched(conn, ids)
        conn.commit()
    if not more:  # else the same folders and the same sweep slice again next tick
        state = _next_state(context, state, listing, digest)
    cursor = json.dumps(state)
    if not recorded and not run_requests and not orphans:
        return dg.SensorResult(cursor=cursor, skip_reason="no new restored files")
    return dg.SensorResult(run_requests=run_requests, cursor=cursor)


def _next_state(context: dg.SensorEvaluationContext, state: dict, listing: Listing, digest: str | None) -> dict:
    """An object store's listing digest, or where a local bucket's sweep goes on (and when its pass began)."""
    if listing.full:
        return {"listing": digest}
    began = state.get("sweep_began", time.time())
    if listing.swept_to is None:
        if state.get("sweep_after"):  # a pass of several ticks (a small bucket is swept whole by every tick)
            context.log.info(f"restores bucket swept: every object checked in {time.time() - began:,.0f} s")
        return {"sweep_after": None, "sweep_began": time.time()}
    return {"sweep_after": listing.swept_to, "sweep_began": began}


def _ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def _launches(batch: list[restores.PendingObject]) -> str:
    """The batch's objects and when they were last launched: a launch again (after
    :data:`RELAUNCH_AFTER_S`) gets a new run key, the same tick evaluated twice does not."""
    last = max((p.launched_at.timestamp() for p in batch if p.launched_at), default=0)
    return hashlib.sha256(json.dumps([[p.id for p in batch], last]).encode()).hexdigest()[:16]


def _record(conn, key: str, fp: str, size: int | None) -> str | None:
    """A new object: rejected at once (bad key, foreign tenant, too large) or pending for an ingest run."""
    try:
        restore = parse_restore_key(key)
    except InvalidRestoreKey as exc:
        return _reject(conn, key, fp, size, str(exc), None, None)
    problem = restores.tenant_problem(conn, restore.org_id, restore.project_id)
    if problem:
        return _reject(conn, key, fp, size, problem, None, None)
    try:
        check_size(size)
    except UnreadableFile as exc:
        return _reject(conn, key, fp, size, str(exc), restore.org_id, restore.project_id, status="failed")
    if restores.record_pending(conn, key, fp, size, restore.org_id, restore.project_id):
        return "pending: an ingest run takes it"
    return None  # recorded by another evaluation


def _reject(
    conn,
    key: str,
    fp: str,
    size: int | None,
    reason: str,
    org_id: str | None,
    project_id: str | None,
    status: str = "rejected",
) -> str:
    if restores.record(conn, key, fp, status, size=size, error=reason, org_id=org_id, project_id=project_id):
        audit.record(conn, RestoreRejected(org_id=org_id, workspace_id=project_id, stored_key=key, reason=reason))
    return f"{status}: {reason}"


@dg.definitions
def restore_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[restore_ingest], sensors=[restores_bucket_sensor])
