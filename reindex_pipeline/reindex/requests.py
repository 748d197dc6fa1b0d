"""A queue request's lifecycle between the queue sensors' ticks: ``plan`` a due row (admission, selection, what
to launch), record its launch (``launched``), and ``conclude`` it once its runs ended (done, retried with
backoff, failed), from the progress rows its runs wrote (``summarise``). The sensors (``defs/queue.py``) claim
rows, turn a ``Launch`` into Dagster run requests and ask Dagster which runs ended."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from reindex_pipeline.db import audit, queue, run_progress
from reindex_pipeline.db import documents as db
from reindex_pipeline.domain.audit import Refused, RequestFinished, RequestStarted
from reindex_pipeline.domain.fingerprints import ALL_PHASES
from reindex_pipeline.domain.queue_rules import after_failure, own_failures
from reindex_pipeline.domain.selection import acting_as, select_documents
from reindex_pipeline.llm.calls import Usage
from reindex_pipeline.reindex import admission


@dataclass(frozen=True)
class Launch:
    """What a planned request launches: its eligible documents and the reindex op's config for its runs."""

    eligible_ids: list[str]
    config: dict
    phases: list[str]
    counts: dict  # what the row and its audit event record: eligible, skipped, preview, requester


def plan(
    conn: psycopg.Connection, row: dict, operator_id: str | None, ended_runs: Callable[[set[str]], frozenset[str]]
) -> str | Launch:
    """Either why the due row ended now (refused, postponed, a dry run, nothing eligible) or what to launch.
    ``ended_runs``: of these run ids, those Dagster knows have finished."""
    requester_id = row["requested_by"] or (operator_id if row["source"] in ("schedule", "restore") else None)
    requester, reason = admission.refusal(
        conn,
        requester_id=requester_id,
        scope=row["scope"],
        workspace_id=row["workspace_id"],
        source=row["source"],
        at=row["created_at"],
        request_id=row["id"],
    )
    if reason and row["source"] == "schedule" and reason.startswith("busy"):
        queue.postpone(conn, row["id"], reason)  # a scheduled global reindex waits; users' requests are refused
        return f"postponed: {reason}"
    if reason or requester is None:
        return refuse(conn, row, requester_id, reason or "refused")
    requester, acting = acting_as(requester, operator_id)  # as the run will
    if acting != "operator" and requester.org_id != row["org_id"]:
        reason = f"refused: requester {requester.username or requester.id} belongs to another organisation"
        return refuse(conn, row, requester_id, reason)
    if row["scope"] in ("documents", "restore"):
        candidates = db.load_documents(conn, row["document_ids"] or [])
        requested = row["document_ids"] or []
    else:
        workspace = row["workspace_id"] if row["scope"] == "workspace" else None
        candidates = list(db.iter_documents(conn, workspace, org_id=requester.org_id))
        requested = None
    # Documents a finished run left 'indexing' (its worker was killed) are requested again, not skipped as busy.
    holders = {d.indexing_run_id for d in candidates if d.index_status == "indexing" and d.indexing_run_id}
    dead_runs = ended_runs(holders)
    selection = select_documents(requester, candidates, row["workspace_id"], requested, dead_runs=dead_runs)
    counts = {
        "eligible": len(selection.eligible),
        "skipped": selection.skipped_by_reason(),
        "preview": selection.confirmation(),
        "requester": requester_id,
        "role": requester.role,
        "scope_audit": requester.scope,
    }
    if row["dry_run"] or not selection.eligible:
        queue.finish(conn, row["id"], "done", {**counts, "dry_run": row["dry_run"]}, [])
        event = RequestFinished(
            **_about(row, requester_id),
            request_id=row["id"],
            stored_key=row["stored_key"],
            dry_run=row["dry_run"],
            eligible=counts["eligible"],
            skipped=counts["skipped"],
            preview=counts["preview"],
        )
        audit.record(conn, event)
        return "dry run: " + selection.confirmation() if row["dry_run"] else "nothing eligible"
    phases = [p for p in ALL_PHASES if p in set(row["phases"])]
    config = {
        "requester_id": requester_id,
        "workspace_id": row["workspace_id"],
        "phases": phases,
        "stale_only": row["stale_only"],
    }
    return Launch(selection.eligible_ids, config, phases, counts)


def refuse(conn: psycopg.Connection, row: dict, requester_id: str | None, reason: str) -> str:
    """End a row as refused, with its audit event; returns the reason."""
    queue.finish(conn, row["id"], "refused", {"reason": reason}, [], error=reason)
    event = Refused(**_about(row, requester_id), request_id=row["id"], reason=reason, scope=row["scope"])
    audit.record(conn, event)
    return reason


def _about(row: dict, actor_id: str | None = None) -> dict:
    """The audit envelope of a queue row's event: its organisation, workspace and requester."""
    return {"org_id": row["org_id"], "workspace_id": row["workspace_id"], "actor_id": actor_id or row["requested_by"]}


def summarise(conn: psycopg.Connection, run_ids: list[str]) -> dict:
    """Per-document counts of the runs, from the progress rows they wrote (``db.run_progress``)."""
    progress = run_progress.of_runs(conn, run_ids)
    errors = [f"{f['document_id']}: {f['error']}" for f in progress.failures]
    unfinished = len(run_ids) - progress.finished_runs
    if unfinished:
        errors.append(f"{unfinished} run(s) ended without reporting their documents (see their logs in Dagster)")
    usage = Usage()
    for counts in progress.model_usage:
        usage.add(Usage(**counts))
    return {
        "planned": progress.planned,
        "completed": progress.completed,
        "unchanged": progress.unchanged,  # of the completed: nothing stale
        "failed": progress.failed,
        "errors": errors,
        "unfinished_runs": unfinished,
        # a run that ended without its last report may have left any of its documents undone: then all again
        "failed_documents": [] if unfinished else [f["document_id"] for f in progress.failures],
        **({"model_usage": usage.as_dict()} if usage.calls else {}),
    }


def together(launches: list[Launch]) -> Launch:
    """One launch for requests that share runs (``queue_rules.sharing_runs``: same phases and mode): their
    documents, each once; one workspace in the config if they all name the same, else none (the documents
    are named)."""
    first = launches[0]
    if len(launches) == 1:
        return first
    ids = list(dict.fromkeys(i for launch in launches for i in launch.eligible_ids))
    workspaces = {launch.config["workspace_id"] for launch in launches}
    config = {**first.config, "workspace_id": workspaces.pop() if len(workspaces) == 1 else None}
    return Launch(ids, config, first.phases, {"eligible": len(ids)})


def launched(
    conn: psycopg.Connection,
    row: dict,
    owner: str,
    attempt: str,
    runs: int,
    launch: Launch,
    shared: Launch | None = None,
    carrier: str | None = None,
) -> bool:
    """The row, claimed by ``owner``, is running under ``attempt`` with ``runs`` runs; ``shared``: the launch of
    all the requests whose runs it shares (``queue_rules.sharing_runs``), whose ``carrier``'s id tags them.
    False (nothing recorded) when the claim was lost meanwhile."""
    counts = {**launch.counts, "carrier": carrier}
    if shared is not None:
        counts["shared_eligible"] = len(shared.eligible_ids)
    if not queue.launched(conn, row["id"], owner, attempt, runs, counts):
        return False
    event = RequestStarted(
        **_about(row), request_id=row["id"], runs=runs, stored_key=row["stored_key"], **launch.counts
    )
    audit.record(conn, event)
    return True


def conclude(
    conn: psycopg.Connection, row: dict, run_ids: list[str], succeeded: bool, max_attempts: int, now: datetime
) -> None:
    """The row's runs all ended: done, or (a run failed) pending again with backoff for its failed documents,
    or failed for good after ``max_attempts``."""
    summary = summarise(conn, run_ids)
    if row["counts"].get("carrier"):
        summary, succeeded = _own_part(summary, row, succeeded)
    finished = dict(
        _about(row),
        request_id=row["id"],
        stored_key=row["stored_key"],
        completed=summary["completed"],
        unchanged=summary["unchanged"],
        failed=summary["failed"],
        errors=summary["errors"][:50],
        model_usage=summary.get("model_usage"),
    )
    if succeeded:
        queue.finish(conn, row["id"], "done", summary, run_ids)
        audit.record(conn, RequestFinished(**finished))
        return
    error = "; ".join(summary["errors"][:5]) or "a reindex run failed"
    decision = after_failure(row["attempts"], max_attempts, now)
    retry_ids = summary["failed_documents"] or None
    queue.retry_or_fail(conn, row["id"], decision, error, summary, run_ids, retry_ids)
    if decision.status == "failed":
        audit.record(conn, RequestFinished(**finished, error=error, attempts=decision.attempts))


def _own_part(summary: dict, row: dict, succeeded: bool) -> tuple[dict, bool]:
    """What of shared runs' summary is this request's: its own failed documents and their errors decide it, and
    it completed the rest of its eligible documents when the runs took every document they were given (else
    which were skipped is not known: ``completed`` is None). How many were unchanged and what the models cost are
    known for the runs only: they are kept under ``shared_totals``, and the model usage counted on the carrier
    alone (summed over the requests, it is the runs')."""
    own = own_failures(summary["failed_documents"], row["document_ids"])
    unfinished = summary["unfinished_runs"]
    errors = [e for e in summary["errors"] if e.split(":", 1)[0] in set(own)] + (
        summary["errors"][-1:] if unfinished else []
    )
    totals = {k: summary.get(k) for k in ("planned", "completed", "unchanged", "failed", "model_usage")}
    eligible = int(row["counts"].get("eligible") or 0)
    took_all = not unfinished and summary["planned"] == row["counts"].get("shared_eligible")
    part = {
        **{k: v for k, v in summary.items() if k != "model_usage"},
        "errors": errors,
        "failed_documents": own,
        "failed": len(own),
        "completed": eligible - len(own) if took_all else None,
        "unchanged": None,
        "shared_runs": True,
        "shared_totals": totals,
    }
    if row["counts"]["carrier"] == row["id"] and summary.get("model_usage"):
        part["model_usage"] = summary["model_usage"]
    return part, succeeded or (not own and not unfinished)
