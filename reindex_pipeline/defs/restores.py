"""The restores bucket: every file restored under ``org/<org>/project/<project>/restores/`` is re-ingested
once and reindexed through the queue.

Each object is handled exactly once: a ``restore_objects`` row per (key, fingerprint), inserted with
ON CONFLICT DO NOTHING, survives daemon restarts; the cursor only saves a database round trip when the
listing did not change. A bad key or an unreadable file is rejected with an audit entry and touches
nothing else. Restores run as REINDEX_OPERATOR_USER_ID (a restore re-ingests with admin rights).
"""

import hashlib
import json
import time

import dagster as dg
import psycopg

from reindex_pipeline.db import documents as db
from reindex_pipeline.db import queue, restores
from reindex_pipeline.ingest.parsing import UnreadableFile, check_size, parse_pages
from reindex_pipeline.ingest.restore_keys import InvalidRestoreKey, parse_restore_key
from reindex_pipeline.resources import AppDatabase, Bucket

MAX_PER_TICK = 50
#: A tick starts no new file after this many seconds (the daemon gives a sensor tick 60 s; the biggest file a
#: restore takes, a 300-page PDF, parses in about 20 s). The rest waits for the next tick.
TICK_BUDGET_S = 25.0


def fingerprint(info: dict) -> str:
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag:
        return f"etag:{str(etag).strip(chr(34))}"
    changed = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("created")
    return f"size:{info.get('size')}:mtime:{changed}"


def list_objects(bucket: Bucket) -> list[tuple[str, str, int | None]]:
    """(key relative to the bucket root, fingerprint, size) of every object, sorted by key."""
    fs, root = bucket.filesystem()
    if not fs.exists(root):
        return []
    found = fs.find(root, detail=True)
    out = []
    for path, info in found.items():
        if info.get("type") == "directory":
            continue
        key = path[len(root) :].lstrip("/") if path.startswith(root) else path
        out.append((key, fingerprint(info), info.get("size")))
    return sorted(out)


@dg.sensor(
    name="restores_bucket",
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-ingests files restored into the bucket and queues their reindex, each exactly once.",
)
def restores_bucket_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase, bucket: Bucket) -> dg.SensorResult:
    objects = list_objects(bucket)
    listing = hashlib.sha256(json.dumps(objects).encode()).hexdigest()
    if context.cursor == listing:
        return dg.SensorResult(skip_reason="the bucket did not change")
    handled, started = 0, time.monotonic()
    with app_db.connect() as conn:
        done = restores.seen(conn, [(k, f) for k, f, _ in objects])
        todo = [o for o in objects if (o[0], o[1]) not in done]
        for key, fp, size in todo[:MAX_PER_TICK]:
            if time.monotonic() - started > TICK_BUDGET_S:
                break
            outcome = _handle(conn, bucket, key, fp, size)
            conn.commit()
            context.log.info(f"{key}: {outcome}")
            handled += 1
    more = len(todo) > handled
    return dg.SensorResult(cursor=None if more else listing, skip_reason=None if handled else "no new restored files")


def _handle(conn, bucket: Bucket, key: str, fp: str, size: int | None) -> str:
    try:
        restore = parse_restore_key(key)
    except InvalidRestoreKey as exc:
        return _reject(conn, key, fp, size, str(exc), None, None)
    problem = restores.tenant_problem(conn, restore.org_id, restore.project_id)
    if problem:
        return _reject(conn, key, fp, size, problem, None, None)
    fs, root = bucket.filesystem()
    try:
        check_size(size)  # before reading it
        data = fs.cat_file(f"{root}/{key}")
        pages = parse_pages(data, restore.extension)
    except UnreadableFile as exc:
        return _reject(conn, key, fp, size, str(exc), restore.org_id, restore.project_id, status="failed")
    try:
        return _ingest(conn, restore, key, fp, data, pages)
    except _AlreadyHandled:
        return "already handled by another evaluation"
    except psycopg.Error as exc:  # this file only: recorded as failed, the tick goes on with the others
        reason = f"could not store the document: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return _reject(conn, key, fp, size, reason, restore.org_id, restore.project_id, status="failed")


def _ingest(conn, restore, key: str, fp: str, data: bytes, pages: list[str]) -> str:
    with conn.transaction():
        document_id, created = restores.reingest(
            conn, restore.project_id, restore.filename, key, data, restore.mime_type, pages
        )
        request_id = queue.insert_request(
            conn,
            org_id=restore.org_id,
            requested_by=None,
            scope="restore",
            workspace_id=restore.project_id,
            document_ids=[document_id],
            source="restore",
            stored_key=key,
        )
        if not restores.record(
            conn,
            key,
            fp,
            "ingested",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            org_id=restore.org_id,
            project_id=restore.project_id,
            document_id=document_id,
            request_id=request_id,
        ):
            raise _AlreadyHandled()
        details = {
            "stored_key": key,
            "filename": restore.filename,
            "document_id": document_id,
            "created": created,
            "pages": len(pages),
            "via": "restores_bucket_sensor",
        }
        db.audit(conn, "backup.reingest", restore.org_id, restore.project_id, None, details)
        db.audit(
            conn,
            "reindex.queued",
            restore.org_id,
            restore.project_id,
            None,
            {"stored_key": key, "request_id": request_id, "document_id": document_id},
        )
    return f"re-ingested as document {document_id} ({len(pages)} pages); reindex request {request_id}"


class _AlreadyHandled(Exception):
    pass


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
        db.audit(conn, "backup.rejected", org_id, project_id, None, {"stored_key": key, "reason": reason})
    return f"{status}: {reason}"
