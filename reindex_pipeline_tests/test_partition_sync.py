"""The documents-partition sensor, evaluated on a real instance against the embedded Postgres."""

from __future__ import annotations

import json

import dagster as dg
import psycopg

from reindex_pipeline.defs import partition_sync
from reindex_pipeline.defs.partition_sync import documents_partition_sync
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.resources import AppDatabase


def _tick(instance: dg.DagsterInstance, url: str, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"app_db": AppDatabase(url=url)})
    result = documents_partition_sync(context)
    assert not result.dynamic_partitions_requests  # added by the sensor in one query, not key by key by the daemon
    return result


def test_sensor_adds_new_documents_in_batches_and_idles(app_db: str, monkeypatch) -> None:
    load_demo_corpus(app_db, 60, seed=7)
    monkeypatch.setattr(partition_sync, "BATCH", 25)
    instance = dg.DagsterInstance.ephemeral()
    cursor = None
    for _ in range(4):
        result = _tick(instance, app_db, cursor)
        cursor = result.cursor or cursor
    with psycopg.connect(app_db) as conn:
        live = {r[0] for r in conn.execute("SELECT id::text FROM documents WHERE deleted_at IS NULL")}
    assert set(instance.get_dynamic_partitions("documents")) == live  # deleted documents never get one

    idle = _tick(instance, app_db, cursor)
    assert idle.dynamic_partitions_requests in (None, []) and idle.skip_reason
    assert json.loads(cursor)["created"]
