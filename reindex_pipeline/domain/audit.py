"""What every audit event holds: one frozen dataclass per kind, written by ``db.audit.record`` and nowhere else.

Each event names the organisation, workspace (the ``project_id`` column) and actor it concerns; the rest of its
fields are its ``details`` (fields left None are left out). Request events follow a queue row
(queued -> started -> completed / failed, or refused); run events follow one reindex run (initiated ->
completed / failed); restore events follow one restored object; ``reindex.purged`` one deleted document.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

ENVELOPE = frozenset({"org_id", "workspace_id", "actor_id"})


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    KIND: ClassVar[str] = ""

    org_id: str | None
    workspace_id: str | None = None
    actor_id: str | None = None

    @property
    def kind(self) -> str:
        return self.KIND

    def details(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in ENVELOPE and value is not None:
                out[f.name] = value
        return out


# -- a request (a queue row) -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RequestQueued(AuditEvent):
    KIND: ClassVar[str] = "reindex.queued"

    request_id: str
    source: str
    scheduled_for: str | None = None
    documents: int | None = None
    document_ids: list[str] | None = None  # the first 100


@dataclass(frozen=True, kw_only=True)
class Refused(AuditEvent):
    """A request (or a run's requester) refused: by admission, before it was queued or when it came due."""

    KIND: ClassVar[str] = "reindex.refused"

    reason: str
    scope: str | None = None
    source: str | None = None
    request_id: str | None = None
    run_id: str | None = None
    requester: str | None = None  # the username, when known


@dataclass(frozen=True, kw_only=True)
class RequestStarted(AuditEvent):
    KIND: ClassVar[str] = "reindex.started"

    request_id: str
    runs: int
    eligible: int
    skipped: dict[str, int]
    preview: str
    requester: str | None
    role: str
    scope_audit: str
    stored_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class RequestFinished(AuditEvent):
    """A request's runs all ended (or it had none to launch: a dry run, nothing eligible)."""

    request_id: str
    stored_key: str | None = None
    completed: int | None = 0  # None (and unchanged): not known for the request alone (it shared its runs)
    unchanged: int | None = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    error: str | None = None  # set: the request failed for good
    attempts: int | None = None
    dry_run: bool | None = None
    eligible: int | None = None  # set when it ended without runs
    skipped: dict[str, int] | None = None
    preview: str | None = None
    model_usage: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "reindex.failed" if self.error is not None else "reindex.completed"


# -- a reindex run ---------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RunAudit(AuditEvent):
    """Who a run acts for and how: common to its two events."""

    run_id: str
    user_id: str
    username: str | None
    user_role: str
    scope: str
    phases: list[str]
    requester_source: str  # run_config, or operator
    mode: str  # force, or stale_only


@dataclass(frozen=True, kw_only=True)
class RunInitiated(RunAudit):
    KIND: ClassVar[str] = "reindex.initiated"

    document_count: int
    skipped: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class RunFinished(RunAudit):
    document_count: int
    completed: int
    failed: int
    unchanged_documents: int
    unchanged_phases: dict[str, int]
    skipped: dict[str, int]
    duration_s: float
    event_log_s: float
    failures: list[dict[str, Any]]  # the first 50: document_id, phase, error
    model_usage: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "reindex.failed" if self.failed else "reindex.completed"


# -- restores and deletions -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RestoreIngested(AuditEvent):
    KIND: ClassVar[str] = "backup.reingest"

    stored_key: str
    filename: str
    document_id: str
    created: bool
    pages: int
    ocr_pages: int
    einvoice: str | None
    run_id: str | None


@dataclass(frozen=True, kw_only=True)
class RestoreRejected(AuditEvent):
    KIND: ClassVar[str] = "backup.rejected"

    stored_key: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class DocumentPurged(AuditEvent):
    KIND: ClassVar[str] = "reindex.purged"

    document_id: str
    filename: str | None
    reason: str  # deleted, or row deleted
    run_id: str
