"""Fails reindex runs whose worker died with no one left to say so, so their requests and documents move on.

Dagster notices a dead run worker in two places: the code server that started it reports its exit, and run
monitoring asks the launcher where the launcher can check its workers (the K8sRunLauncher). When the code
server goes too (the machine lost, the launcher and its children killed), nothing does: the run stays
``STARTED`` for ever, and the queue request waiting on it with it. Each reindex step beats while it works
(``db/heartbeats.py``); a run silent for longer than ``run_silence_seconds`` is marked failed here, with a
message naming the worker. The queue then retries it after its backoff, and the next run takes the documents
it left ``indexing`` over at once, because Dagster now knows the run ended.
"""

import dagster as dg

from reindex_pipeline.db import heartbeats
from reindex_pipeline.resources import AppDatabase, ReindexPolicy


@dg.sensor(
    name="reindex_run_watch",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails a reindex run whose worker stopped beating (killed, out of memory, machine lost).",
)
def reindex_run_watch(
    context: dg.SensorEvaluationContext, app_db: AppDatabase, reindex_policy: ReindexPolicy
) -> dg.SensorResult:
    failed = []
    with app_db.connect(autocommit=True) as conn:
        for beat in heartbeats.beating_runs(conn):
            run = context.instance.get_run_by_id(beat.run_id)
            if run is not None and not run.is_finished:
                if beat.silent_s < reindex_policy.run_silence_seconds:
                    continue  # alive
                message = (
                    f"The run worker stopped: no heartbeat for {beat.silent_s:.0f} s "
                    f"(pid {beat.pid} on {beat.host}, last beat {beat.beat_at:%H:%M:%S %Z}). "
                    "Documents it left 'indexing' are taken over by the next run."
                )
                context.instance.report_run_failed(run, message=message)
                context.log.warning(f"run {beat.run_id}: {message}")
                failed.append(beat.run_id)
            heartbeats.forget(conn, beat.run_id)  # failed now, or finished (its worker died after the end)
    return dg.SensorResult(skip_reason=None if failed else "every reindex run is beating")
