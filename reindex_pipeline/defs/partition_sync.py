"""Add a ``documents`` partition for every new document.

A cursor remembers the last created document seen, so a tick where nothing changed runs one indexed
query that returns nothing. New documents are added in batches of 100,000, a tick every 15 s, by the sensor
itself through ``instance.add_dynamic_partitions`` (one query for the keys that exist, one insert): handed to
the daemon as a ``dynamic_partitions_request``, each key costs a query of its own (``has_dynamic_partition``)
and a line in the tick's log, ~1 ms a key (a batch of 100,000 took ~90 s of a 60 s tick's budget). A key
added twice (a tick that failed before its cursor was stored) is skipped. Dagster stores a partition in
70-85 µs whatever the batch (``./dev bench partition_sync``, 10,000 to 200,000 a batch), so a batch takes
~8 s and a first sync of 1,000,000 documents is ten ticks. The daemon evaluates sensors in threads of their
own (``dagster.yaml``), so those seconds never hold up the queue. Deleted documents' partitions are removed
by the ``source_changes`` sensor, together with their derived data.
"""

import json

import dagster as dg

from reindex_pipeline.db import documents as db
from reindex_pipeline.partitions import documents
from reindex_pipeline.resources import AppDatabase

BATCH = 100_000
INTERVAL_S = 15


@dg.sensor(
    name="documents_partition_sync",
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a `documents` partition per new document.",
)
def documents_partition_sync(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    with app_db.connect() as conn:
        created = db.created_since(conn, _position(cursor.get("created")), BATCH)
    if not created:
        return dg.SensorResult(skip_reason="no new documents", cursor=json.dumps(cursor))
    context.instance.add_dynamic_partitions(documents.name, [key for _, key in created])
    cursor["created"] = list(created[-1])
    context.log.info(f"added {len(created):,} document partitions (up to {created[-1][0]})")
    return dg.SensorResult(cursor=json.dumps(cursor))


def _position(value: list | None) -> tuple[str, str] | None:
    return (value[0], value[1]) if value else None
