"""Deletions and access changes reach every derived store within one sensor interval.

Triggers on ``documents`` record each change in ``source_changes``. The ``source_changes`` sensor
removes the partitions of deleted documents and launches ``propagate_source_changes`` whenever changes
are due and no such run is already queued or running. The run purges deleted documents and rewrites the
owner / workspace of moved ones (see :mod:`reindex_pipeline.reindex.propagation`). It is in the
``qdrant`` pool: in local mode only one process may open the Qdrant folder.

A run that fails leaves its changes due with one more attempt, the error and a backoff
(``source_changes.attempts`` / ``last_error``); the sensor launches it again, and the run is failed in
the UI with the store that failed named.
"""

import json

import dagster as dg

from reindex_pipeline.db import source_changes as changes_db
from reindex_pipeline.partitions import documents
from reindex_pipeline.reindex.propagation import StoreError, propagate
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore

BATCH = 500
MAX_BATCHES_PER_RUN = 200
JOB_NAME = "propagate_source_changes"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.op(pool="qdrant", description="Purge deleted documents from every store; propagate owner/workspace changes.")
def propagate_changes(
    context: dg.OpExecutionContext, app_db: AppDatabase, qdrant: QdrantStore, graph: GraphDatabase
) -> dg.Output[None]:
    totals = {"purged": 0, "access_updated": 0, "deferred": 0, "restored": 0}
    with graph.open() as graph_store:
        graph_store.ensure_schema()
        for _ in range(MAX_BATCHES_PER_RUN):
            with app_db.connect() as conn:
                batch = changes_db.due(conn, BATCH)
            if not batch:
                break
            try:
                result = propagate(
                    app_db.connect, qdrant.client(), qdrant.collection, graph_store, batch, context.run.run_id
                )
            except StoreError as exc:
                with app_db.connect() as conn:
                    changes_db.mark_failed(conn, batch, str(exc), context.run.run_id)
                raise dg.Failure(
                    description=f"propagating {len(batch)} source changes failed in {exc}; they "
                    "stay due and are retried after a backoff",
                    metadata=totals,
                ) from None
            for name in totals:
                totals[name] += len(getattr(result, name))
            context.log.info(
                f"purged {len(result.purged)}, access updated {len(result.access_updated)}, "
                f"deferred {len(result.deferred)}, live again {len(result.restored)}"
            )
            if len(batch) < BATCH or result.deferred:
                break
    return dg.Output(None, metadata=totals)


@dg.job(
    name=JOB_NAME,
    description="Propagates deletions and access changes of documents to Postgres, Qdrant "
    "and the graph (launched by the source_changes sensor).",
)
def propagate_source_changes() -> None:
    propagate_changes()


@dg.sensor(
    name="source_changes",
    job=propagate_source_changes,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Removes deleted documents' partitions and launches propagate_source_changes when "
    "deletions or owner/workspace changes are due.",
)
def source_changes_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {"partitions_after": 0}
    with app_db.connect() as conn:
        purges = changes_db.purges_after(conn, cursor["partitions_after"], 10_000)
        due_count = changes_db.due_count(conn)
    if purges:
        cursor["partitions_after"] = purges[-1][0]
    gone = sorted({doc for _, doc in purges if context.instance.has_dynamic_partition(documents.name, doc)})
    partition_requests = [documents.build_delete_request(gone)] if gone else []
    run_requests = []
    if due_count and not context.instance.get_runs(dg.RunsFilter(job_name=JOB_NAME, statuses=IN_FLIGHT), limit=1):
        run_requests.append(dg.RunRequest(tags={"reindex/source_changes": str(due_count)}))
    if not run_requests and not partition_requests:
        return dg.SensorResult(skip_reason="no due source changes", cursor=json.dumps(cursor))
    return dg.SensorResult(
        run_requests=run_requests, dynamic_partitions_requests=partition_requests, cursor=json.dumps(cursor)
    )


@dg.definitions
def source_sync_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[propagate_source_changes], sensors=[source_changes_sensor])
