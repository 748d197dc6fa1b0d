"""``reindex_request``: a whole-tenant (or workspace, or document list) reindex launched from the Dagster UI.

The job queues one ``reindex_queue`` request, through the same admission as ``reindex-pipeline request``, and
follows it until the queue sensor has planned it into runs (seconds): its output names the request, how many
documents are eligible, how many runs were launched and why the rest is skipped. It is the UI's way for large
reindexes: a backfill of every document partition asks Dagster to plan each partition (the launch dialog and
the backfill daemon slow down past ~100,000 partitions, see docs/scaling.md), while a request plans in the
app's tables and launches the runs itself.
"""

import time

import dagster as dg
from pydantic import Field

from reindex_pipeline.db import queue
from reindex_pipeline.domain.fingerprints import ALL_PHASES
from reindex_pipeline.reindex import admission
from reindex_pipeline.resources import AppDatabase

JOB_NAME = "reindex_request"
#: Seconds the job waits for the queue sensor to plan its request (it looks every few seconds).
PLAN_TIMEOUT_S = 120.0


class ReindexRequestConfig(dg.Config):
    requester: str = Field(description="who asks: a username or a user id (an admin reindexes every document)")
    workspace: str | None = Field(default=None, description="one workspace, by name or id")
    all_workspaces: bool = Field(default=False, description="every workspace the requester may reach")
    document_ids: list[str] = Field(default_factory=list, description="these documents only")
    phases: list[str] = Field(default_factory=lambda: list(ALL_PHASES), description=", ".join(ALL_PHASES))
    stale_only: bool = Field(default=False, description="skip each phase whose inputs are unchanged")
    dry_run: bool = Field(default=False, description="plan and report only; nothing is written")


@dg.op(name="queue_reindex_request")
def queue_reindex_request(
    context: dg.OpExecutionContext, config: ReindexRequestConfig, app_db: AppDatabase
) -> dg.Output:
    """Queue the request, wait until it is planned, report what was launched."""
    with app_db.connect() as conn:
        try:
            queued = admission.submit(
                conn,
                config.requester,
                workspace=config.workspace,
                all_workspaces=config.all_workspaces,
                document_ids=config.document_ids or None,
                phases=config.phases,
                dry_run=config.dry_run,
                stale_only=config.stale_only,
                source="ui",
            )
        except admission.RequestRefused as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(f"queued request {queued.request_id} ({queued.scope}, as {queued.username})")
        row = _planned(conn, queued.request_id)
    counts = row["counts"] or {}
    metadata = {
        "request_id": queued.request_id,
        "status": row["status"],
        "scope": queued.scope,
        "requester": queued.username,
        "eligible": counts.get("eligible", 0),
        "runs": counts.get("runs_expected", 0),
        "skipped": dg.MetadataValue.json(counts.get("skipped", {})),
        "preview": counts.get("preview", ""),
        "follow": f"reindex-pipeline status {queued.request_id}",
    }
    if row["status"] in ("refused", "failed"):
        raise dg.Failure(description=f"request {queued.request_id}: {row['last_error']}", metadata=metadata)
    context.log.info(f"request {queued.request_id}: {row['status']}; {metadata['preview']}")
    return dg.Output(None, metadata=metadata)


def _planned(conn, request_id: str) -> dict:
    """The request's row once the queue sensor has decided it (runs launched, done, refused), or as it is
    after ``PLAN_TIMEOUT_S`` (still pending: the sensor is off or busy; the request stays queued)."""
    deadline = time.monotonic() + PLAN_TIMEOUT_S
    while True:
        row = queue.get_request(conn, request_id)
        conn.commit()
        decided = row["status"] != "pending" and (row["status"] != "running" or "runs_expected" in row["counts"])
        if decided or time.monotonic() > deadline:
            return row
        time.sleep(1.0)


@dg.job(
    name=JOB_NAME,
    description="Queues a reindex request (who asks, which workspace or documents, which phases) and reports the "
    "runs the queue launched: the way to reindex a whole tenant from the UI.",
)
def reindex_request() -> None:
    queue_reindex_request()


@dg.definitions
def request_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[reindex_request])
