"""``dagster_retention``: Dagster's own database keeps what is current, not every reindex ever run.

Each reindexed document leaves rows in Dagster's event log (three planned and three stored materialisations,
their tags); a nightly full reindex of 1,000,000 documents adds gigabytes a night (docs/scaling.md). Every day
the job deletes finished runs older than ``keep_days`` that hold nothing current: every materialisation they
stored has a later one for the same asset and partition (or they stored none: a request job, a dry run, a
refused run). ``instance.delete_run`` takes the run's event log rows with it. A partition's latest
materialisation is never deleted, so the UI's partition status, staleness and history of the current index
stay right; runs that recorded asset check results are kept (their result may be a partition's latest).
PostgreSQL reuses the space freed (autovacuum); the files shrink only with ``VACUUM FULL``.
"""

import time
from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

JOB_NAME = "dagster_retention"
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
ASSET_EVENTS = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED}
#: Partitions asked about in one query.
PARTITIONS_PER_QUERY = 1000


class RetentionConfig(dg.Config):
    keep_days: float = Field(default=30, description="runs younger than this are never deleted")
    max_runs: int = Field(default=2000, description="oldest runs looked at in one run of the job")
    dry_run: bool = Field(default=False, description="report what would be deleted, delete nothing")


def holds_current(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether a run stored (or planned) a materialisation with no later one for its partition, or a check
    result."""
    if instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1).records:
        return True
    # Planned ones too: a failed run's planned partitions that nothing materialised since are shown as failed.
    stored: dict[dg.AssetKey, dict[str | None, int]] = defaultdict(dict)
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=ASSET_EVENTS, limit=10_000)
        for record in page.records:
            stored[record.event_log_entry.dagster_event.asset_key][record.partition_key] = record.storage_id
        if not page.has_more:
            break
        cursor = page.cursor
    return any(_still_latest(instance, key, partitions) for key, partitions in stored.items())


def _still_latest(instance: dg.DagsterInstance, key: dg.AssetKey, stored: dict[str | None, int]) -> bool:
    """Whether any of these (partition -> storage id) materialisations of ``key`` has no later one."""
    after = max(stored.values())  # later than the run's last: a conservative "superseded"
    if (
        None in stored
        and not instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1
        ).records
    ):
        return True
    partitions = sorted(p for p in stored if p is not None)
    for start in range(0, len(partitions), PARTITIONS_PER_QUERY):
        wanted = set(partitions[start : start + PARTITIONS_PER_QUERY])
        records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=sorted(wanted), after_storage_id=after)
        cursor = None
        while wanted:
            page = instance.fetch_materializations(records_filter, limit=10_000, cursor=cursor, ascending=True)
            wanted -= {r.partition_key for r in page.records}
            if not page.has_more:
                break
            cursor = page.cursor
        if wanted:
            return True
    return False


@dg.op(name="delete_superseded_runs")
def delete_superseded_runs(context: dg.OpExecutionContext, config: RetentionConfig) -> dg.Output:
    instance = context.instance
    cutoff = datetime.fromtimestamp(time.time() - config.keep_days * 86_400, tz=UTC)
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, created_before=cutoff), limit=config.max_runs, ascending=True
    )
    deleted, kept = [], 0
    for record in records:
        run_id = record.dagster_run.run_id
        if holds_current(instance, run_id):
            kept += 1
            continue
        if not config.dry_run:
            instance.delete_run(run_id)
        deleted.append(run_id)
    verb = "would delete" if config.dry_run else "deleted"
    context.log.info(f"{verb} {len(deleted)} of {len(records)} runs older than {cutoff:%Y-%m-%d %H:%M}; kept {kept}")
    return dg.Output(
        None,
        metadata={
            "looked_at": len(records),
            "deleted": 0 if config.dry_run else len(deleted),
            "would_delete": len(deleted) if config.dry_run else 0,
            "kept_current": kept,
            "older_than": cutoff.isoformat(),
        },
    )


@dg.job(
    name=JOB_NAME,
    description="Deletes finished runs older than keep_days whose materialisations all have later ones (and runs "
    "that stored none), so Dagster's database holds the current index's history, not every reindex.",
)
def dagster_retention() -> None:
    delete_superseded_runs()


dagster_retention_schedule = dg.ScheduleDefinition(
    name="dagster_retention_daily",
    job=dagster_retention,
    cron_schedule="30 4 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 04:30: dagster_retention with its defaults (30 days).",
)


@dg.definitions
def retention_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[dagster_retention], schedules=[dagster_retention_schedule])
