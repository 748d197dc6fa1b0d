"""Queue policy as pure functions: retry backoff and request rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Tags of a queue run: the request it serves, which claim of it (a fresh tag each time it is claimed), and the
#: source of the request (``reindex/source`` alone also marks a restore's ingest runs, which serve no request).
REQUEST_TAG, ATTEMPT_TAG, QUEUE_SOURCE_TAG = "reindex/request_id", "reindex/attempt", "reindex/queue_source"
#: People's requests before restores, restores before scheduled ones. Dagster's run queue dequeues higher first.
PRIORITY = {"app": 10, "cli": 10, "ui": 10, "restore": 5, "schedule": -10}
USER_REQUEST_INTERVAL = timedelta(minutes=1)
#: Fewest documents worth a run of their own when runs may go side by side (a run costs ~5 s to start).
MIN_DOCUMENTS_PER_RUN = 100
#: Seconds after a request was planned by which the daemon has created its runs (it does so right after the
#: sensor's tick). A request with runs still missing then was planned by a tick that did not complete (it timed
#: out, its daemon died): it is left to its lease, which expires and gives it to the queue again.
RUN_CREATION_GRACE_S = 300


def sharing_runs(rows: Iterable[dict]) -> list[list[dict]]:
    """Claimed rows grouped by the runs that serve them, in the order claimed. Restores (not dry runs) that ask
    for the same phases in the same mode share runs: a restored backup is ingested in batches and each batch
    queues a request per workspace, and one reindex run per request would pay a run's start (~4.5 s) for every
    one of them. Their documents are named one by one and reindexed as the operator, so runs over several of
    them select exactly what each asked. Only rows of one organisation and requester share (a run's audit names
    one of each); workspaces may differ (the run's config then names none). Every other row has runs of its own.
    The first row of a group is its carrier: its id tags the runs."""
    groups: dict[object, list[dict]] = {}
    for row in rows:
        shares = row["scope"] == "restore" and not row["dry_run"]
        mode = (tuple(row["phases"]), bool(row["stale_only"]), row["org_id"], row["requested_by"])
        key = ("restore", *mode) if shares else ("own", row["id"])
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def own_failures(failed_documents: list[str], asked: Iterable[str] | None) -> list[str]:
    """Of the documents that failed in runs shared with other requests, those this request asked for."""
    wanted = set(asked or [])
    return [d for d in failed_documents if d in wanted]


def backoff_seconds(attempts: int) -> int:
    """min(30, 2**attempts): 2, 4, 8, 16, 30, 30, ... for attempts 1, 2, 3, 4, 5, ..."""
    if attempts < 1:
        raise ValueError("attempts starts at 1")
    return min(30, 2**attempts)


def run_sizes(documents: int, max_per_run: int, parallel_runs: int = 1) -> list[int]:
    """How many documents each run of a request takes: as few runs as ``max_per_run`` allows (each run pays
    its start and model load again), but one per slot of ``parallel_runs`` when each still gets
    ``MIN_DOCUMENTS_PER_RUN``; sizes differ by at most one, so side-by-side runs end together."""
    if max_per_run < 1 or parallel_runs < 1:
        raise ValueError("max_per_run and parallel_runs start at 1")
    if documents <= 0:
        return []
    runs = max(-(-documents // max_per_run), min(parallel_runs, documents // MIN_DOCUMENTS_PER_RUN), 1)
    base, extra = divmod(documents, runs)
    return [base + 1] * extra + [base] * (runs - extra)


def runs_lost(created: int, expected: int, planned_at: float | None, now: float) -> bool:
    """Whether a running request's missing runs will never come: fewer than ``expected`` were created and the
    request was planned (epoch seconds) more than :data:`RUN_CREATION_GRACE_S` ago."""
    return created < expected and planned_at is not None and now - planned_at > RUN_CREATION_GRACE_S


def tries(status: str, attempts: int) -> int:
    """How many times a request has run: ``attempts`` counts its failed tries, so a request running or done has
    had one more; a refused one never ran."""
    if status == "refused":
        return 0
    return attempts + 1 if status in ("running", "done") else attempts


@dataclass(frozen=True)
class RetryDecision:
    status: str  # "pending" (retry later) or "failed" (give up)
    attempts: int
    scheduled_at: datetime


def after_failure(attempts_before: int, max_attempts: int, now: datetime) -> RetryDecision:
    """What a failed attempt leads to: back to pending after the backoff, or failed at the limit."""
    attempts = attempts_before + 1
    status = "failed" if attempts >= max_attempts else "pending"
    return RetryDecision(status, attempts, now + timedelta(seconds=backoff_seconds(attempts)))


@dataclass(frozen=True)
class ActiveRequest:
    id: str
    scope: str  # documents | workspace | all | restore
    workspace_id: str | None
    queued: bool = False  # pending, ahead of the request being decided

    @property
    def state(self) -> str:
        return "queued" if self.queued else "running"

    @property
    def doing(self) -> str:
        return "is queued to reindex" if self.queued else "is already reindexing"


def refusal_reason(
    scope: str,
    workspace_id: str | None,
    requester_id: str | None,
    active: Iterable[ActiveRequest],
    last_request_by_user: datetime | None,
    now: datetime,
) -> str | None:
    """Why a request may not start now (None: it may). ``active`` are the other running requests."""
    active = list(active)
    if (
        requester_id is not None
        and last_request_by_user is not None
        and now - last_request_by_user < USER_REQUEST_INTERVAL
    ):
        return "rate_limited: at most 1 reindex request per user per minute"
    if scope == "all":
        busy = [a for a in active if a.scope in ("workspace", "all")]
        if busy:
            what = "a global reindex" if busy[0].scope == "all" else f"workspace {busy[0].workspace_id}"
            return f"busy: {what} {busy[0].doing} (request {busy[0].id}); a global reindex waits for it"
    elif scope == "workspace":
        for a in active:
            if a.scope == "all":
                return f"busy: a global reindex is {a.state} (request {a.id})"
            if a.scope == "workspace" and a.workspace_id == workspace_id:
                return f"busy: workspace {workspace_id} {a.doing} (request {a.id})"
    return None
