"""Add a ``documents`` partition for every new document.

A cursor remembers the last created document seen, so a tick where nothing changed runs one indexed
query that returns nothing. New documents are added in batches (a first tick over 100,000 documents
takes ten ticks of 10,000). Deleted documents' partitions are removed by the ``source_changes`` sensor,
together with their derived data.
"""

import json

import dagster as dg

from reindex_pipeline.db import documents as db
from reindex_pipeline.partitions import documents
from reindex_pipeline.resources import AppDatabase

BATCH = 10_000


@dg.sensor(
    name="documents_partition_sync",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a `documents` partition per new document.",
)
def documents_partition_sync(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    with app_db.connect() as conn:
        created = db.created_since(conn, _position(cursor.get("created")), BATCH)
    if not created:
        return dg.SensorResult(skip_reason="no new documents", cursor=json.dumps(cursor))
    cursor["created"] = list(created[-1])
    context.log.info(f"adding {len(created)} document partitions")
    return dg.SensorResult(
        dynamic_partitions_requests=[documents.build_add_request([key for _, key in created])],
        cursor=json.dumps(cursor),
    )


def _position(value: list | None) -> tuple[str, str] | None:
    return (value[0], value[1]) if value else None
