"""Whether a reindex request may start: the one rule set the queue sensor applies to a due row and the CLI
applies before it queues one (requester active, per-user rate limit, busy workspace, document ids)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import psycopg

from reindex_pipeline.db import documents as db
from reindex_pipeline.db import queue
from reindex_pipeline.reindex.queue_rules import refusal_reason
from reindex_pipeline.reindex.selection import Requester, RequesterRefused, check_requester

#: Sources whose requests are people's, and so rate-limited.
RATE_LIMITED_SOURCES = ("app", "cli")


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
    return requester, refusal_reason(
        scope, workspace_id, requester_id, queue.active_requests(conn, request_id), last, at
    )


def unknown_documents(conn: psycopg.Connection, document_ids: Iterable[str]) -> str | None:
    """Why a list of document ids cannot be requested (an id that is not a UUID, or no such document)."""
    ids = list(document_ids)
    for value in ids:
        try:
            uuid.UUID(value)
        except ValueError:
            return f"{value!r} is not a document id (a UUID)"
    found = {d.id for d in db.load_documents(conn, ids)}
    missing = [value for value in ids if str(uuid.UUID(value)) not in found]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return f"no document {missing[0]}{more}"
    return None
