"""One reindex run's lifecycle, whatever launched it (a queue request, a UI backfill, a partition's Materialize).

``ReindexRun.open`` resolves who asks (refused: audited, ``RequesterRefused``) and selects the run's documents
(eligibility + RBAC, documents abandoned by ended runs taken over); ``begin`` records the run's progress row and
its ``reindex.initiated`` event; ``reindex`` hands the runner's outcomes on, reporting progress as each batch
commits; ``finish`` writes the last report and the ``reindex.completed`` / ``reindex.failed`` event and returns
the run's counts. The Dagster asset (``defs/reindex.py``) turns outcomes into materialisations and observations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reindex_pipeline.db import audit, run_progress
from reindex_pipeline.db import documents as db
from reindex_pipeline.db.run_progress import RunProgress
from reindex_pipeline.domain.audit import Refused, RunFinished, RunInitiated
from reindex_pipeline.domain.ids import is_uuid
from reindex_pipeline.domain.selection import Requester, RequesterRefused, Selection
from reindex_pipeline.llm.calls import Usage
from reindex_pipeline.reindex.read_ahead import read_ahead
from reindex_pipeline.reindex.runner import DocumentOutcome, ReindexRunner, resolve_requester, select

#: The longest a run's progress goes unreported while documents complete (a batch that takes longer).
REPORT_EVERY_S = 1.0


@dataclass(frozen=True)
class RunAsk:
    """What the run was asked (its config) and where it stands (its id, its queue request's tags)."""

    run_id: str
    requester_id: str | None
    operator_id: str | None
    workspace_id: str | None
    document_ids: list[str] | None
    phases: list[str]
    stale_only: bool = False
    request_id: str | None = None
    attempt: str | None = None


@dataclass
class RunCounts:
    """The run's tallies as outcomes arrive."""

    completed: int = 0
    untouched: int = 0  # documents with every phase unchanged: not even claimed
    unchanged: dict[str, int] = field(default_factory=dict)  # phase -> documents it was unchanged for
    usage: Usage = field(default_factory=Usage)


class ReindexRun:
    def __init__(self, connect: Callable[..., Any], ask: RunAsk):
        self.connect, self.ask = connect, ask
        self.requester: Requester | None = None
        self.selection: Selection | None = None
        self.recorded: dict[str, dict] = {}  # phase fingerprints of the documents left alone
        self.progress = RunProgress(planned=0)
        self.counts = RunCounts(unchanged={p: 0 for p in ask.phases})
        self._audit: dict[str, Any] = {}

    # -- who asks, and for what --------------------------------------------------------------------------
    def open(self, keys: list[str], dead_runs: frozenset[str], dry_run: bool = False) -> Selection:
        """The run's selection among ``keys``. Raises ``RequesterRefused`` (audited) when the requester may not."""
        ask = self.ask
        with self.connect(autocommit=True) as conn:
            try:
                requester, source = resolve_requester(conn, ask.requester_id, ask.operator_id)
            except RequesterRefused as exc:
                self._refused(conn, str(exc))
                raise
            selection = select(conn, requester, keys, ask.workspace_id, ask.document_ids, ask.run_id, dead_runs)
            left = [s.id for s in selection.skipped] + (selection.eligible_ids if dry_run else [])
            self.recorded = db.recorded_fingerprints(conn, left)
            self._audit = dict(
                org_id=db.org_of(conn, requester.id),
                workspace_id=ask.workspace_id,
                actor_id=requester.id,
                run_id=ask.run_id,
                user_id=requester.id,
                username=requester.username,
                user_role=requester.role,
                scope=requester.scope,
                phases=ask.phases,
                requester_source=source,
                mode="stale_only" if ask.stale_only else "force",
            )
        self.requester, self.selection = requester, selection
        return selection

    def _refused(self, conn, reason: str) -> None:
        actor = self.ask.requester_id or self.ask.operator_id
        actor = actor if actor and is_uuid(actor) else None
        event = Refused(
            org_id=actor and db.org_of(conn, actor),
            workspace_id=self.ask.workspace_id,
            actor_id=actor,
            reason=reason,
            run_id=self.ask.run_id,
            source="run",
        )
        audit.record(conn, event)

    # -- the documents -----------------------------------------------------------------------------------
    def begin(self) -> None:
        """The progress row the queue and ``status`` read, and the run's first audit event."""
        assert self.selection is not None
        skipped = self.selection.skipped_by_reason()
        self.progress = RunProgress(planned=len(self.selection.eligible), skipped=skipped)
        with self.connect(autocommit=True) as conn:
            audit.record(
                conn, RunInitiated(**self._audit, document_count=len(self.selection.eligible), skipped=skipped)
            )
            run_progress.start(conn, self.ask.run_id, self.ask.request_id, self.ask.attempt, self.progress)

    def reindex(self, runner: ReindexRunner) -> Iterator[DocumentOutcome]:
        """The runner's outcomes (read ahead in a thread), tallied; progress reported once per committed batch
        (the runner hands a batch's outcomes over once it has committed), or every second for slow ones."""
        assert self.selection is not None
        counts, failures = self.counts, self.progress.failures
        reported = time.monotonic()
        with self.connect(autocommit=True) as conn:
            for outcome in read_ahead(runner.reindex(self.selection.eligible)):
                handed = counts.completed + len(failures)
                if handed % runner.batch_size == 0 or time.monotonic() - reported >= REPORT_EVERY_S:
                    self._report(conn)
                    reported = time.monotonic()
                counts.usage.add(outcome.usage)
                if not outcome.ok:
                    failures.append(
                        {"document_id": outcome.document_id, "phase": outcome.failed_phase, "error": outcome.error}
                    )
                else:
                    counts.completed += 1
                    counts.untouched += not outcome.results
                    for phase in outcome.unchanged:
                        counts.unchanged[phase] += 1
                yield outcome

    def _report(self, conn, finished: bool = False) -> None:
        self.progress.completed, self.progress.unchanged = self.counts.completed, self.counts.untouched
        run_progress.report(conn, self.ask.run_id, self.progress, finished=finished)

    def finish(self, duration_s: float, event_log_s: float, embedder_usage: Usage | None = None) -> dict[str, Any]:
        """The last report and the run's closing audit event (``embedder_usage``: what a remote embedder's calls
        cost, added to the extractor's); returns the run's counts."""
        assert self.selection is not None
        usage = self.counts.usage
        if embedder_usage is not None:
            usage.add(embedder_usage)
        failed = self.progress.failures
        counts = {
            "document_count": len(self.selection.eligible),
            "completed": self.counts.completed,
            "failed": len(failed),
            "unchanged_documents": self.counts.untouched,
            "unchanged_phases": self.counts.unchanged,
            "skipped": self.selection.skipped_by_reason(),
            "duration_s": round(duration_s, 2),
            "event_log_s": round(event_log_s, 2),
            **({"model_usage": usage.as_dict()} if usage.calls else {}),
        }
        self.progress.model_usage = usage.as_dict() if usage.calls else None
        with self.connect(autocommit=True) as conn:
            self._report(conn, finished=True)
            audit.record(conn, RunFinished(**self._audit, **counts, failures=failed[:50]))
        return counts
