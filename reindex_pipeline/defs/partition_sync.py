"""Keep the ``documents`` partitions in step with the documents table.

A cursor remembers the last created and the last deleted document seen, so a tick where nothing
changed runs two indexed queries that return nothing. New documents are added in batches (a first
tick over 100,000 documents takes ten ticks of 10,000); deleted ones are removed.
"""

import json

import dagster as dg

from reindex_pipeline.db import documents as db
from reindex_pipeline.partitions import documents
from reindex_pipeline.resources import AppDatabase

BATCH = 10_000


@dg.sensor(name="documents_partition_sync", minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds a `documents` partition per new document and removes deleted ones.")
def documents_partition_sync(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    with app_db.connect() as conn:
        created = db.created_since(conn, _position(cursor.get("created")), BATCH)
        if "deleted" in cursor:
            deleted = db.deleted_since(conn, _position(cursor["deleted"]), BATCH)
        else:
            # First tick ever: documents deleted before now were never added (created_since skips them),
            # so the deletion cursor starts at the newest deletion instead of deleting what does not exist.
            deleted, newest = [], db.newest_deletion(conn)
            cursor["deleted"] = list(newest) if newest else None
    if created:
        cursor["created"] = list(created[-1])
    if deleted:
        cursor["deleted"] = list(deleted[-1])
    # A document created and deleted between two ticks was never added: nothing to delete for it.
    to_delete = [key for _, key in deleted if context.instance.has_dynamic_partition(documents.name, key)]
    requests = []
    if created:
        requests.append(documents.build_add_request([key for _, key in created]))
    if to_delete:
        requests.append(documents.build_delete_request(to_delete))
    if not requests:
        return dg.SensorResult(skip_reason="no new or deleted documents", cursor=json.dumps(cursor))
    context.log.info(f"adding {len(created)} and removing {len(to_delete)} document partitions")
    return dg.SensorResult(dynamic_partitions_requests=requests, cursor=json.dumps(cursor))


def _position(value: list | None) -> tuple[str, str] | None:
    return (value[0], value[1]) if value else None
