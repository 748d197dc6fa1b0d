"""Benchmark: the documents-partition sensor against N documents on embedded Postgres storage.

Usage: ./dev bench-partition-sync  (or: python -m benchmarks.partition_sync --documents 100000)
Prints the demo-corpus load time, every tick until the partitions are in sync, and an idle tick.
Starts its own throwaway stack in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dagster as dg

from reindex_pipeline.db import migrate
from reindex_pipeline.defs.partition_sync import documents_partition_sync
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.partitions import apply_requests
from reindex_pipeline.resources import AppDatabase
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.supervisor import Stack


def tick(instance: dg.DagsterInstance, url: str, cursor: str | None) -> tuple[dg.SensorResult, float, float]:
    started = time.perf_counter()
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"app_db": AppDatabase(url=url)})
    result = documents_partition_sync(context)
    evaluated = time.perf_counter() - started
    apply_requests(instance, result.dynamic_partitions_requests)
    return result, evaluated, time.perf_counter() - started - evaluated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    args = parser.parse_args()
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
            cursor, ticks, total = None, 0, 0.0
            while True:
                result, evaluated, applied = tick(instance, url, cursor)
                if not result.dynamic_partitions_requests:
                    break
                ticks += 1
                total += evaluated + applied
                cursor = result.cursor
                added = sum(len(r.partition_keys) for r in result.dynamic_partitions_requests)
                print(
                    f"tick {ticks}: {added} partition changes, sensor {evaluated * 1000:.0f} ms, "
                    f"applying {applied * 1000:.0f} ms"
                )
            _, idle, _ = tick(instance, url, cursor)
            partitions = len(instance.get_dynamic_partitions("documents"))
            print(f"in sync after {ticks} ticks ({total:.1f} s): {partitions} partitions")
            print(f"idle tick (nothing changed): {idle * 1000:.1f} ms; sensor timeout is 60,000 ms")


if __name__ == "__main__":
    main()
