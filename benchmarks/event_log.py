"""``./dev bench event_log``: what storing Dagster's events costs a run, stock dagster-postgres storage
against the pooled storage ``dagster.yaml`` names, side by side on one embedded PostgreSQL.

1. A run of one in-process step stores ``--events`` asset materialisations (with partitions, a little metadata
   and a data version tag, as the reindex step does); printed: milliseconds per event and new database
   sessions per event, alternating the two storages ``--rounds`` times.
2. Creating a run over ``--partitions`` partitions of three assets (Dagster stores three planned
   materialisations per partition), with ``DAGSTER_EVENT_BATCH_SIZE`` set as ``reindex-pipeline up`` sets it.
3. The same with three partitioned asset checks, as a UI backfill of the reindex plans them (a row per check
   and partition): seconds to create the run and megabytes the rows take (as stored, compressed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import psycopg

from reindex_pipeline.stack.postgres import EmbeddedPostgres, url_for

STORAGES = {
    "stock (dagster_postgres)": ("dagster_postgres", "PostgresRunStorage", "PostgresEventLogStorage"),
    "pooled (dagster.yaml)": (
        "reindex_pipeline.instance_storage",
        "PooledPostgresRunStorage",
        "PooledPostgresEventLogStorage",
    ),
}


def _instance_config(url: str, module: str, run_class: str, event_class: str) -> dict:
    config = {"postgres_url": url}
    return {
        "run_storage": {"module": module, "class": run_class, "config": config},
        "event_log_storage": {"module": module, "class": event_class, "config": config},
        "schedule_storage": {"module": "dagster_postgres", "class": "PostgresScheduleStorage", "config": config},
    }


def _job(events: int) -> dg.JobDefinition:
    @dg.op
    def store(context) -> None:  # noqa: ANN001 (Dagster reads the annotation)
        for i in range(events):
            context.log_event(
                dg.AssetMaterialization(
                    asset_key="probe",
                    partition=f"p{i}",
                    metadata={"chunks": i, "note": "x" * 40},
                    tags={"dagster/data_version": f"{i:064x}"},
                )
            )

    @dg.job(executor_def=dg.in_process_executor)
    def probe() -> None:
        store()

    return probe


_PLANNED = dg.DynamicPartitionsDefinition(name="planned")
_PLANNED_KEYS = [dg.AssetKey(f"planned_{n}") for n in range(3)]


@dg.multi_asset(
    specs=[dg.AssetSpec(k, partitions_def=_PLANNED, skippable=True) for k in _PLANNED_KEYS],
    partitions_def=_PLANNED,
    can_subset=True,
)
def _planned(context):  # noqa: ANN001 (Dagster reads the annotation)
    yield from ()


def _run_creation(instance: dg.DagsterInstance, partitions: int) -> float:
    """Seconds to create (and run, doing nothing) a run over ``partitions`` partitions of three assets."""
    keys = [f"doc-{i:06d}" for i in range(partitions)]
    instance.add_dynamic_partitions("planned", keys)
    job = dg.Definitions(assets=[_planned]).resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    job.execute_in_process(instance=instance, tags=tags)  # warm up
    started = time.perf_counter()
    job.execute_in_process(instance=instance, tags=tags)
    return time.perf_counter() - started


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(f"consistent_{n}", asset=k, partitions_def=_PLANNED) for n, k in enumerate(_PLANNED_KEYS)],
    can_subset=True,
)
def _planned_checks(context):  # noqa: ANN001 (Dagster reads the annotation)
    return
    yield


def _run_creation_with_checks(instance: dg.DagsterInstance, url: str, partitions: int) -> tuple[float, float]:
    """Seconds to create a run over ``partitions`` document ids with three partitioned checks, and the
    megabytes of its planned check rows."""
    keys = [str(uuid.UUID(int=i)) for i in range(partitions)]  # document ids are UUIDs
    instance.add_dynamic_partitions("planned", keys)
    job = dg.Definitions(assets=[_planned], asset_checks=[_planned_checks]).resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    instance.create_run_for_job(job, tags=tags)  # warm up
    before = _check_rows_bytes(url)
    started = time.perf_counter()
    instance.create_run_for_job(job, tags=tags)
    return time.perf_counter() - started, (_check_rows_bytes(url) - before) / 1e6


def _check_rows_bytes(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT coalesce(sum(pg_column_size(evaluation_event)), 0) FROM asset_check_executions"
        ).fetchone()[0]


def _sessions(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=450)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=1000)
    args = parser.parse_args()
    job = _job(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", Path(tmp) / "pg.log").start()
        url = url_for(pg.port, "postgres")
        try:
            for _ in range(args.rounds):
                for name, classes in STORAGES.items():
                    with dg.instance_for_test(overrides=_instance_config(url, *classes)) as instance:
                        job.execute_in_process(instance=instance)  # tables, connections, imports warmed up
                        time.sleep(1.1)  # session counts reach pg_stat_database at most once a second
                        before = _sessions(url)
                        started = time.perf_counter()
                        job.execute_in_process(instance=instance)
                        elapsed = time.perf_counter() - started
                    time.sleep(1.1)
                    opened = _sessions(url) - before - 1
                    print(
                        f"{name:<26} {elapsed * 1000 / args.events:5.2f} ms per materialisation, "
                        f"{opened / args.events:4.2f} new sessions per materialisation"
                    )
            os.environ["DAGSTER_EVENT_BATCH_SIZE"] = "1000"  # as `reindex-pipeline up` sets it
            for _ in range(args.rounds):
                for name, classes in STORAGES.items():
                    with dg.instance_for_test(overrides=_instance_config(url, *classes)) as instance:
                        elapsed = _run_creation(instance, args.partitions)
                    print(
                        f"{name:<26} a run over {args.partitions} partitions of 3 assets: {elapsed:5.2f} s "
                        f"({elapsed * 1000 / (3 * args.partitions):.2f} ms per planned materialisation)"
                    )
            for _ in range(args.rounds):
                for name, classes in STORAGES.items():
                    with dg.instance_for_test(overrides=_instance_config(url, *classes)) as instance:
                        elapsed, megabytes = _run_creation_with_checks(instance, url, args.partitions)
                    print(
                        f"{name:<26} the same with 3 partitioned checks: {elapsed:5.2f} s, "
                        f"planned check rows {megabytes:5.1f} MB"
                    )
        finally:
            EmbeddedPostgres.stop(pg)


if __name__ == "__main__":
    main()
