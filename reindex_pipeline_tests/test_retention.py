"""dagster_retention deletes old runs that hold nothing current, and never a partition's latest state."""

import dagster as dg

from reindex_pipeline.defs.retention import dagster_retention, holds_current

PARTS = dg.DynamicPartitionsDefinition(name="retention_test")


@dg.asset(partitions_def=PARTS)
def doc_index(context: dg.AssetExecutionContext) -> None:
    if context.partition_key == "broken":
        raise RuntimeError("this document fails")


@dg.job
def nothing_stored() -> None:
    dg.op(name="noop")(lambda: None)()


def _materialize(instance: dg.DagsterInstance, key: str) -> str:
    result = dg.materialize([doc_index], instance=instance, partition_key=key, raise_on_error=False)
    return result.run_id


def _retain(instance: dg.DagsterInstance, **config) -> dict:
    result = dagster_retention.execute_in_process(
        instance=instance, run_config={"ops": {"delete_superseded_runs": {"config": {"keep_days": 0, **config}}}}
    )
    [output] = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in output.event_specific_data.metadata.items()}


def _instance(url: str):
    """An instance on the storages dagster.yaml names (global storage ids, as in every deployment)."""
    config = {"postgres_url": url}
    module = "reindex_pipeline.instance_storage"
    return dg.instance_for_test(
        overrides={
            "run_storage": {"module": module, "class": "PooledPostgresRunStorage", "config": config},
            "event_log_storage": {"module": module, "class": "PooledPostgresEventLogStorage", "config": config},
            "schedule_storage": {"module": "dagster_postgres", "class": "PostgresScheduleStorage", "config": config},
        }
    )


def test_only_runs_whose_every_partition_was_materialised_again_are_deleted(empty_db: str) -> None:
    with _instance(empty_db) as instance:
        instance.add_dynamic_partitions(PARTS.name, ["a", "b", "broken"])
        first_a, only_b = _materialize(instance, "a"), _materialize(instance, "b")
        failed = _materialize(instance, "broken")
        latest_a = _materialize(instance, "a")
        empty = nothing_stored.execute_in_process(instance=instance).run_id
        assert not holds_current(instance, first_a) and not holds_current(instance, empty)
        assert holds_current(instance, only_b) and holds_current(instance, latest_a)
        assert holds_current(instance, failed)  # its partition is shown as failed until something materialises it

        dry = _retain(instance, dry_run=True)
        assert dry["would_delete"] == 2 and dry["deleted"] == 0 and instance.get_run_by_id(first_a) is not None

        report = _retain(instance)
        assert report["deleted"] == 3 and report["kept_current"] == 3  # the dry run's own run stored nothing
        assert instance.get_run_by_id(first_a) is None and instance.get_run_by_id(empty) is None
        assert instance.get_run_by_id(latest_a) is not None
        assert instance.get_materialized_partitions(doc_index.key) == {"a", "b"}
        only_a = dg.AssetRecordsFilter(asset_key=doc_index.key, asset_partitions=["a"])
        [latest] = instance.fetch_materializations(only_a, limit=5).records
        assert latest.run_id == latest_a  # the current materialisation of a is the one left
