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
    created_after = tuple(cursor["created"]) if cursor.get("created") else None
    deleted_after = tuple(cursor["deleted"]) if cursor.get("deleted") else None
    with app_db.connect() as conn:
        created = db.created_since(conn, created_after, BATCH)
        deleted = db.deleted_since(conn, deleted_after, BATCH)
    requests = []
    if created:
        requests.append(documents.build_add_request([doc_id for _, doc_id in created]))
        cursor["created"] = list(created[-1])
    if deleted:
        requests.append(documents.build_delete_request([doc_id for _, doc_id in deleted]))
        cursor["deleted"] = list(deleted[-1])
    if not requests:
        return dg.SensorResult(skip_reason="no new or deleted documents")
    context.log.info(f"adding {len(created)} and removing {len(deleted)} document partitions")
    return dg.SensorResult(dynamic_partitions_requests=requests, cursor=json.dumps(cursor))
