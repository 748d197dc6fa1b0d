"""Scheduled full reindex: a queue request for every eligible document, at admin scope, low priority,
"stale only": a phase whose inputs and producer are unchanged since it last succeeded is skipped.

It goes through the queue like every other request, so the same rules, audit and backoff apply, and
its runs carry ``dagster/priority`` -10 while user requests carry +10: Dagster's run queue starts
user requests first. The cron comes from ``REINDEX_FULL_CRON``.
"""

import os

import dagster as dg

from reindex_pipeline.db import audit, queue
from reindex_pipeline.db import documents as db
from reindex_pipeline.defs.queue import REINDEX_ASSETS
from reindex_pipeline.domain.audit import RequestQueued
from reindex_pipeline.resources import AppDatabase, ReindexPolicy
from reindex_pipeline.settings import Settings


def build_full_reindex_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="full_reindex",
        cron_schedule=cron,
        target=REINDEX_ASSETS,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Queues an admin-scope reindex of every eligible document.",
    )
    def full_reindex(context: dg.ScheduleEvaluationContext, app_db: AppDatabase, reindex_policy: ReindexPolicy):
        if not reindex_policy.operator_user_id:
            return dg.SkipReason("set REINDEX_OPERATOR_USER_ID (an admin) for scheduled reindexes to run as")
        with app_db.connect() as conn:
            org_id = db.org_of(conn, reindex_policy.operator_user_id)
            if org_id is None:
                return dg.SkipReason(f"REINDEX_OPERATOR_USER_ID {reindex_policy.operator_user_id} is not a user")
            request_id = queue.insert_request(
                conn, org_id=org_id, requested_by=None, scope="all", source="schedule", stale_only=True
            )
            event = RequestQueued(
                org_id=org_id,
                actor_id=reindex_policy.operator_user_id,
                request_id=request_id,
                source="schedule",
                scheduled_for=str(context.scheduled_execution_time),
            )
            audit.record(conn, event)
        return dg.SkipReason(f"queued full reindex request {request_id}; the reindex_queue sensor launches it")

    return full_reindex


@dg.definitions
def schedule_definitions() -> dg.Definitions:
    return dg.Definitions(schedules=[build_full_reindex_schedule(Settings.from_env(os.environ).full_reindex_cron)])
