"""Whether a reindex request may start: the one rule set the queue sensor applies to a due row and the CLI and
the UI's ``reindex_request`` job apply before they queue one (requester active, per-user rate limit, busy
workspace, document ids); ``submit`` is how both queue one."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from reindex_pipeline.db import audit, queue
from reindex_pipeline.db import documents as db
from reindex_pipeline.domain.audit import Refused
from reindex_pipeline.domain.fingerprints import ALL_PHASES
from reindex_pipeline.domain.ids import not_uuids
from reindex_pipeline.domain.queue_rules import refusal_reason
from reindex_pipeline.domain.selection import Requester, RequesterRefused, check_requester

#: Sources whose requests are people's, and so rate-limited.
RATE_LIMITED_SOURCES = ("app", "cli", "ui")


def refusal(
    conn: psycopg.Connection,
    *,
    requester_id: str | None,
    scope: str,
    workspace_id: str | None,
    source: str,
    at: datetime,
    request_id: str = "",
) -> tuple[Requester | None, str | None]:
    """The requester and why the request may not start at ``at`` (None: it may). ``request_id``: the row
    being decided, left out of the rate limit and of the busy check (empty for a request not yet queued)."""
    try:
        if not requester_id:
            raise RequesterRefused("the request names no requester (requested_by)")
        requester = check_requester(db.load_requester(conn, requester_id), requester_id)
    except RequesterRefused as exc:
        return None, f"refused: {exc}"
    last = queue.previous_request_at(conn, requester_id, at, request_id) if source in RATE_LIMITED_SOURCES else None
    # A request not yet queued also gives way to people's pending requests: the queue will take those first.
    active = queue.active_requests(conn, request_id, queued=not request_id)
    return requester, refusal_reason(scope, workspace_id, requester_id, active, last, at)


def unknown_documents(conn: psycopg.Connection, document_ids: Iterable[str]) -> str | None:
    """Why a list of document ids cannot be requested (an id that is not a UUID, or no such document)."""
    ids = list(document_ids)
    problem = not_uuids(ids, "document")
    if problem:
        return problem
    found = {d.id for d in db.load_documents(conn, ids)}
    missing = [value for value in ids if str(uuid.UUID(value)) not in found]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return f"no document {missing[0]}{more}"
    return None


class RequestRefused(RuntimeError):
    """A request that cannot be queued; the message says why, in one line."""


@dataclass(frozen=True)
class Queued:
    request_id: str
    username: str
    scope: str


def resolve_scope(
    conn: psycopg.Connection,
    requester: str,
    workspace: str | None,
    all_workspaces: bool,
    document_ids: list[str] | None,
) -> tuple[dict, dict | None, str]:
    """The requesting user (a username or id), the workspace (a name or id) and the scope of the request."""
    user = queue.resolve_user(conn, requester)
    if user is None:
        raise RequestRefused(f"no user {requester!r} (give a username or a user id)")
    if sum([workspace is not None, all_workspaces, bool(document_ids)]) != 1:
        raise RequestRefused("choose exactly one of --workspace NAME, --all or --document ID")
    ws = None
    if workspace is not None:
        ws = queue.resolve_workspace(conn, workspace)
        if ws is None:
            raise RequestRefused(f"no workspace {workspace!r}")
    return user, ws, "workspace" if ws else ("all" if all_workspaces else "documents")


def submit(
    conn: psycopg.Connection,
    requester: str,
    *,
    workspace: str | None = None,
    all_workspaces: bool = False,
    document_ids: list[str] | None = None,
    phases: list[str] | None = None,
    dry_run: bool = False,
    stale_only: bool = False,
    source: str = "cli",
) -> Queued:
    """Queue a reindex request as the app does, after the rules the queue will apply: a request that would be
    refused is refused now (``RequestRefused``, with an audit row), not a second after it was accepted."""
    unknown = set(phases or []) - set(ALL_PHASES)
    if unknown:
        raise RequestRefused(f"unknown phase {sorted(unknown)[0]!r}; use {', '.join(ALL_PHASES)}")
    user, ws, scope = resolve_scope(conn, requester, workspace, all_workspaces, document_ids)
    problem = unknown_documents(conn, document_ids) if document_ids else None
    if problem:
        raise RequestRefused(problem)
    now = conn.execute("SELECT now()").fetchone()[0]
    _, reason = refusal(conn, requester_id=user["id"], scope=scope, workspace_id=ws and ws["id"], source=source, at=now)
    if reason:
        event = Refused(
            org_id=user["org_id"],
            workspace_id=ws and ws["id"],
            actor_id=user["id"],
            reason=reason,
            scope=scope,
            source=source,
            requester=user["username"],
        )
        audit.record(conn, event)
        conn.commit()
        raise RequestRefused(f"request refused: {reason.removeprefix('refused: ')}")
    request_id = queue.insert_request(
        conn,
        org_id=(ws or user)["org_id"],
        requested_by=user["id"],
        scope=scope,
        workspace_id=ws["id"] if ws else None,
        document_ids=document_ids or None,
        phases=phases or None,
        dry_run=dry_run,
        source=source,
        stale_only=stale_only,
    )
    conn.commit()
    return Queued(request_id, user["username"], scope)
