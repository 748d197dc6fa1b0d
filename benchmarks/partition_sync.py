"""Benchmark: the documents-partition sensor against N documents on embedded Postgres storage.

Usage: ./dev bench-partition-sync  (or: python -m benchmarks.partition_sync --documents 100000)
Prints the demo-corpus load time, every tick until the partitions are in sync, and an idle tick. With
``--batch-sizes 10000,50000,100000`` the first ticks take those batch sizes (one each, on new documents), so
the cost per partition of each size is measured side by side; the rest take the sensor's own ``BATCH``.
Starts its own throwaway stack in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dagster as dg
import psycopg

from reindex_pipeline.db import migrate
from reindex_pipeline.defs import partition_sync
from reindex_pipeline.defs.partition_sync import documents_partition_sync
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.resources import AppDatabase
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.supervisor import Stack


def tick(instance: dg.DagsterInstance, url: str, cursor: str | None) -> tuple[dg.SensorResult, float]:
    """One evaluation of the sensor (which adds the partitions itself); its result and seconds."""
    started = time.perf_counter()
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"app_db": AppDatabase(url=url)})
    result = documents_partition_sync(context)
    return result, time.perf_counter() - started


def count_partitions(dagster_url: str) -> int:
    with psycopg.connect(dagster_url) as conn:
        return conn.execute("SELECT count(*) FROM dynamic_partitions").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--batch-sizes", default="", help="comma-separated batch sizes for the first ticks")
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",") if s]
    shipped = partition_sync.BATCH
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings.from_env({"REINDEX_STATE_DIR": str(Path(tmp))})) as stack:
        url, dagster_url = stack.state.environment["DATABASE_URL"], stack.state.environment["DAGSTER_PG_URL"]
        migrate.upgrade(url)
        started = time.perf_counter()
        report = load_demo_corpus(url, args.documents, seed=7)
        print(
            f"demo corpus: {report.documents} documents, {report.chunks} chunks in "
            f"{time.perf_counter() - started:.1f} s"
        )
        overrides = {"storage": {"postgres": {"postgres_url": dagster_url}}}
        with dg.instance_for_test(overrides=overrides) as instance:
            cursor, ticks, total, before = None, 0, 0.0, 0
            while True:
                partition_sync.BATCH = sizes[ticks] if ticks < len(sizes) else shipped
                result, seconds = tick(instance, url, cursor)
                if result.skip_reason:
                    break
                ticks += 1
                total += seconds
                cursor = result.cursor
                now = count_partitions(dagster_url)
                added, before = now - before, now
                print(
                    f"tick {ticks}: {added:,} partitions added in {seconds * 1000:.0f} ms "
                    f"({seconds * 1e6 / added:.0f} µs a partition)"
                )
            _, idle = tick(instance, url, cursor)
            partitions = len(instance.get_dynamic_partitions("documents"))
            interval = documents_partition_sync.minimum_interval_seconds
            print(
                f"in sync after {ticks} ticks ({total:.1f} s of work; at one tick per {interval} s, "
                f"~{ticks * interval / 60:.1f} min from the first tick): {partitions} partitions (batch {shipped:,})"
            )
            print(f"idle tick (nothing changed): {idle * 1000:.1f} ms; sensor timeout is 60,000 ms")


if __name__ == "__main__":
    main()
