"""The code location loads: in-process, and through `dagster definitions validate` on Postgres storage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg

from reindex_pipeline.definitions import defs
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore
from reindex_pipeline_tests.conftest import project_root


def test_definitions_load_with_resources_for_the_running_stack(stack_state) -> None:
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    repo = loaded.get_repository_def()
    assert dg.AssetKey("preserved_ocr_output") in repo.asset_graph.get_all_asset_keys()
    resources = loaded.resources or {}
    assert {"app_db", "qdrant", "graph", "bucket"} <= set(resources)
    assert isinstance(resources["graph"], GraphDatabase) and resources["graph"].backend == "falkordb"
    qdrant = resources["qdrant"]
    assert isinstance(qdrant, QdrantStore) and qdrant.url is None and qdrant.path == os.environ["QDRANT_PATH"]
    db = AppDatabase(url=os.environ["DATABASE_URL"])
    with db.connect() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_dagster_definitions_validate_against_postgres_storage(stack_state, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(project_root() / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=project_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr
    # The code location's name is the same whatever this checkout's folder is called.
    assert "does not match the name" not in result.stdout + result.stderr


@dg.op
def _store_materialisations(context) -> None:  # noqa: ANN001 (Dagster reads the annotation)
    for i in range(40):
        context.log_event(dg.AssetMaterialization(asset_key="pooled_probe", partition=f"p{i}"))


@dg.job(executor_def=dg.in_process_executor)
def _pooled_probe_job() -> None:
    _store_materialisations()


def _sessions(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def test_instance_storage_reuses_its_connections(stack_state, tmp_path: Path, monkeypatch) -> None:
    """dagster.yaml's event log keeps a pooled connection: 40 materialisations open a handful of sessions,
    not two per event as dagster-postgres does by default."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(project_root() / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    url = os.environ["DAGSTER_PG_URL"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = _pooled_probe_job.execute_in_process(instance=instance)  # also creates the tables
        assert result.success
        time.sleep(1.2)  # backends report their session counts at exit or at most once a second
        before = _sessions(url)
        result = _pooled_probe_job.execute_in_process(instance=instance)
        assert result.success
        records = instance.fetch_materializations(dg.AssetKey("pooled_probe"), limit=100).records
        assert len(records) == 80
    time.sleep(1.2)
    opened = _sessions(url) - before - 1  # minus our own probe connection
    assert opened <= 10, f"{opened} sessions for 40 stored materialisations"


def test_pools_have_their_slots_before_any_run_one_for_local_qdrant_n_for_a_server(
    stack_state, tmp_path: Path, monkeypatch
) -> None:
    from reindex_pipeline.defs.reindex import build_reindex_asset
    from reindex_pipeline.defs.restores import restore_ingest
    from reindex_pipeline.resources import build_resources
    from reindex_pipeline.settings import Settings
    from reindex_pipeline.stack.supervisor import set_pool_slots

    local = Settings.from_env({})
    server = Settings.from_env({"QDRANT_URL": "http://qdrant:6333", "REINDEX_PARALLEL_RUNS": "3"})
    assert (local.reindex_pool, server.reindex_pool, server.parallel_runs) == ("qdrant", "reindex", 3)
    # Queue requests are cut to fill the slots (one run at a time with local Qdrant).
    policies = [
        build_resources(e)["reindex_policy"]
        for e in ({}, {"QDRANT_URL": "http://q:6333", "REINDEX_PARALLEL_RUNS": "3"})
    ]
    assert [p.parallel_runs for p in policies] == [1, 3] and policies[0].max_documents_per_run == 2500
    assert build_reindex_asset(10, pool=server.reindex_pool).op.pool == "reindex"
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(project_root() / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DIR", env["DAGSTER_ARTIFACTS_DIR"])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        for pool in ("qdrant", "reindex", "restore_ingest"):
            storage.delete_concurrency_limit(pool)  # as on a fresh instance
        set_pool_slots(home, local, env)
        # Known to the run queue before any run needs them: the queue treats a pool it has not seen yet as
        # unlimited for the pass that first meets it (see set_pool_slots).
        assert "qdrant" in storage.get_concurrency_keys()
        assert storage.get_concurrency_info("qdrant").slot_count == 1
        assert "reindex" not in storage.get_concurrency_keys()
        # restored files are ingested two runs at a time, whatever holds the vectors
        assert storage.get_concurrency_info("restore_ingest").slot_count == 2
        assert restore_ingest.graph.node_named("ingest_restored_files").definition.pool == "restore_ingest"
        set_pool_slots(home, server, env)
        assert storage.get_concurrency_info("reindex").slot_count == 3
        assert storage.get_concurrency_info("qdrant").slot_count == 1


_PROBE_PARTITIONS = dg.DynamicPartitionsDefinition(name="planned_probe")
_PROBE_KEYS = [dg.AssetKey(f"planned_probe_{n}") for n in range(3)]


@dg.multi_asset(
    specs=[dg.AssetSpec(k, partitions_def=_PROBE_PARTITIONS, skippable=True) for k in _PROBE_KEYS],
    partitions_def=_PROBE_PARTITIONS,
    can_subset=True,
)
def _planned_probe(context):  # noqa: ANN001 (Dagster reads the annotation)
    for key in _PROBE_KEYS:
        yield dg.AssetMaterialization(asset_key=key, partition=context.partition_keys[0])
    raise dg.Failure("the other documents failed")


def _commits(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def test_a_runs_planned_materialisations_are_stored_in_one_batch(empty_db: str, tmp_path: Path, monkeypatch) -> None:
    """A run over 300 partitions plans 900 materialisations when it is created; with DAGSTER_EVENT_BATCH_SIZE
    (set by `up`) dagster.yaml's event log stores them in a few statements, and Dagster still reads them as it
    does one by one: the last run per asset, and partitions planned but not materialised by a failed run."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(project_root() / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("DAGSTER_PG_URL", empty_db)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    keys = [f"doc-{i:04d}" for i in range(300)]
    job = dg.Definitions(assets=[_planned_probe]).resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("planned_probe", keys)
        time.sleep(1.1)  # commit counts reach pg_stat_database at most once a second
        before = _commits(empty_db)
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert not result.success
        time.sleep(1.1)
        assert _commits(empty_db) - before < 150, "900 planned events took one transaction each"
        for key in _PROBE_KEYS:
            planned = instance.get_event_records(
                dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=key), limit=1000
            )
            assert sorted(r.partition_key for r in planned) == keys
            assert instance.get_asset_records([key])[0].asset_entry.last_run_id == result.run_id
            storage = instance.event_log_storage
            attempted = storage.get_latest_asset_partition_materialization_attempts_without_materializations(key)
            assert set(attempted) == set(keys[1:])  # what the UI shows as failed


_BEHIND_KEYS = [dg.AssetKey(f"behind_{n}") for n in range(3)]


def _stored_materialisations(url: str, run_id: str) -> int:
    """Counted on a connection of our own, as the webserver or another process sees the event log."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        ).fetchone()[0]


def _behind_job(url: str, seen: dict) -> dg.JobDefinition:
    @dg.op
    def report(context) -> None:  # noqa: ANN001 (Dagster reads the annotation)
        for i in range(150):
            for key in _BEHIND_KEYS:
                context.log_event(
                    dg.AssetMaterialization(key, partition=f"doc-{i:03d}", tags={"dagster/data_version": f"v{i}"})
                )
        seen["other_process_before_read"] = _stored_materialisations(url, context.run_id)
        # This process reads its own writes: what waits is written first.
        seen["own_read"] = sorted(context.instance.get_materialized_partitions(_BEHIND_KEYS[0]))
        context.log_event(dg.AssetMaterialization(_BEHIND_KEYS[0], partition="late"))
        time.sleep(1.5)  # longer than a materialisation waits
        seen["other_process_after_wait"] = _stored_materialisations(url, context.run_id)

    @dg.job(executor_def=dg.in_process_executor)
    def behind() -> None:
        report()

    return behind


def test_a_steps_materialisations_are_written_behind_in_order(empty_db: str, tmp_path: Path, monkeypatch) -> None:
    """dagster.yaml's event log writes a step's materialisations in batches: 451 of them take a few commits,
    another process sees each within a second, the run's own process reads them at once, the event log keeps
    the order they happened in, and their data versions are indexed as when stored one by one. A runless
    report is written at once; a batch that cannot be written is written one by one."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(project_root() / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("DAGSTER_PG_URL", empty_db)
    seen: dict = {}
    job = _behind_job(empty_db, seen)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert job.execute_in_process(instance=instance).success  # creates the tables
        time.sleep(1.1)  # commit counts reach pg_stat_database at most once a second
        before = _commits(empty_db)
        result = job.execute_in_process(instance=instance)
        assert result.success
        time.sleep(1.1)
        assert _commits(empty_db) - before < 150, "451 materialisations took two transactions each"
        assert seen["other_process_before_read"] < 450  # the last batch was still waiting
        assert seen["own_read"] == [f"doc-{i:03d}" for i in range(150)] + ["late"]  # "late": the first run's
        assert seen["other_process_after_wait"] == 451

        logs = instance.all_logs(result.run_id)
        kinds = [e.dagster_event.event_type for e in logs if e.is_dagster_event]
        first, last = (
            kinds.index(dg.DagsterEventType.ASSET_MATERIALIZATION),
            len(kinds) - 1 - kinds[::-1].index(dg.DagsterEventType.ASSET_MATERIALIZATION),
        )
        assert kinds[first : last + 1].count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 451
        assert dg.DagsterEventType.STEP_SUCCESS in kinds[last:]
        reported = [
            (e.dagster_event.asset_key, e.dagster_event.partition)
            for e in logs
            if e.is_dagster_event and e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        ]
        assert reported[:6] == [(k, f"doc-{i:03d}") for i in range(2) for k in _BEHIND_KEYS]
        assert reported[-1] == (_BEHIND_KEYS[0], "late")

        storage = instance.event_log_storage
        tags = storage.get_latest_tags_by_partition(
            _BEHIND_KEYS[1], dg.DagsterEventType.ASSET_MATERIALIZATION, ["dagster/data_version"]
        )
        assert tags["doc-007"] == {"dagster/data_version": "v7"}
        assert instance.get_asset_records([_BEHIND_KEYS[0]])[0].asset_entry.last_run_id == result.run_id

        instance.report_runless_asset_event(dg.AssetMaterialization("runless_probe"))
        with psycopg.connect(empty_db) as conn:
            assert (
                conn.execute("SELECT count(*) FROM event_logs WHERE asset_key = %s", ('["runless_probe"]',)).fetchone()[
                    0
                ]
                == 1
            )

        def broken(events) -> None:  # noqa: ANN001
            raise RuntimeError("the batch statement failed")

        monkeypatch.setattr(storage, "_store_asset_events", broken)
        result = job.execute_in_process(instance=instance)
        assert result.success
        assert _stored_materialisations(empty_db, result.run_id) == 451


_CHECKED_PARTITIONS = [f"doc-{i:04d}" for i in range(200)]
_CHECKED = dg.StaticPartitionsDefinition(_CHECKED_PARTITIONS)  # readers resolve it without an instance
_CHECKED_KEYS = [dg.AssetKey(f"checked_probe_{n}") for n in range(2)]


@dg.multi_asset(
    specs=[dg.AssetSpec(k, partitions_def=_CHECKED, skippable=True) for k in _CHECKED_KEYS],
    partitions_def=_CHECKED,
    can_subset=True,
)
def _checked_probe(context):  # noqa: ANN001 (Dagster reads the annotation)
    for key in _CHECKED_KEYS:  # every partition of the run's range; then the checks run
        yield dg.MaterializeResult(asset_key=key)


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(f"consistent_{n}", asset=k, partitions_def=_CHECKED) for n, k in enumerate(_CHECKED_KEYS)],
    can_subset=True,
)
def _checked_probe_checks(context):  # noqa: ANN001 (Dagster reads the annotation)
    for i, partition in enumerate(context.op_execution_context.partition_keys[:20]):  # the rest: planned, not run
        for n, key in enumerate(_CHECKED_KEYS):
            context.op_execution_context.log_event(
                dg.AssetCheckEvaluation(
                    asset_key=key, check_name=f"consistent_{n}", passed=i % 7 != 3, partition=partition
                )
            )
    return
    yield


def _check_reads(instance: dg.DagsterInstance) -> dict:
    """What Dagster reads back about the probe's checks (the UI's statuses), without ids and times."""
    storage = instance.event_log_storage
    check_keys = [dg.AssetCheckKey(key, f"consistent_{n}") for n, key in enumerate(_CHECKED_KEYS)]
    infos = storage.get_asset_check_partition_info(check_keys)
    states = storage.get_asset_check_state([(k, _CHECKED) for k in check_keys])
    return {
        "partition_info": sorted(
            (str(i.check_key), i.partition_key, i.latest_execution_status.value, i.is_current) for i in infos
        ),
        "status_subsets": {
            str(k): {str(status): sorted(subset.value.get_partition_keys()) for status, subset in state.subsets.items()}
            for k, state in states.items()
        },
        "history": {
            str(k): [(r.status.value, r.partition) for r in storage.get_asset_check_execution_history(k, limit=500)]
            for k in check_keys
        },
        "latest": {
            str(k): r.status.value for k, r in storage.get_latest_asset_check_execution_by_key(check_keys).items()
        },
    }


def test_planned_partitioned_checks_read_back_as_dagster_postgres_stores_them(
    empty_db: str, second_empty_db: str, tmp_path: Path, monkeypatch
) -> None:
    """A run over 200 partitions plans each check per partition. dagster-postgres stores the run's whole
    partition subset in every one of those rows; dagster.yaml's event log stores each row's own partition.
    Everything Dagster reads back about the checks (per-partition status and currency, the status subsets
    the UI draws, execution history, latest execution) is the same on both, and the rows are far smaller."""
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    partitions = _CHECKED_PARTITIONS
    job = dg.Definitions(
        assets=[_checked_probe], asset_checks=[_checked_probe_checks]
    ).resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": partitions[0], "dagster/asset_partition_range_end": partitions[-1]}
    reads, sizes = {}, {}
    for name, url, module, (run_class, event_class) in (
        ("stock", second_empty_db, "dagster_postgres", ("PostgresRunStorage", "PostgresEventLogStorage")),
        (
            "ours",
            empty_db,
            "reindex_pipeline.instance_storage",
            ("PooledPostgresRunStorage", "PooledPostgresEventLogStorage"),
        ),
    ):
        config = {"postgres_url": url}
        overrides = {
            "run_storage": {"module": module, "class": run_class, "config": config},
            "event_log_storage": {"module": module, "class": event_class, "config": config},
            "schedule_storage": {"module": "dagster_postgres", "class": "PostgresScheduleStorage", "config": config},
        }
        with dg.instance_for_test(overrides=overrides) as instance:
            for _ in range(2):  # the second run's plans and results supersede the first's
                assert job.execute_in_process(instance=instance, tags=tags).success
            reads[name] = _check_reads(instance)
        with psycopg.connect(url) as conn:
            sizes[name] = conn.execute(
                "SELECT sum(length(evaluation_event)) FROM asset_check_executions WHERE execution_status = 'PLANNED'"
            ).fetchone()[0]
    assert reads["ours"] == reads["stock"]
    check_0 = str(dg.AssetCheckKey(_CHECKED_KEYS[0], "consistent_0"))
    assert len(reads["ours"]["status_subsets"][check_0]["AssetCheckExecutionResolvedStatus.SKIPPED"]) == 180
    history = [status for status, _ in reads["ours"]["history"][check_0]]
    # two runs: each evaluated 20 partitions (3 failed) and left 180 planned
    assert (history.count("SUCCEEDED"), history.count("FAILED"), history.count("PLANNED")) == (34, 6, 360)
    # 720 planned rows: ~0.9 KB each here, whatever the run's size; stock rows grow with the run's partitions
    assert sizes["ours"] < 720 * 1500 and sizes["ours"] * 3 < sizes["stock"], sizes
