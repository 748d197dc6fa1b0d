"""The audit log: ``audit_events`` rows, written only from the typed events of ``domain.audit``."""

from __future__ import annotations

import json
from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from reindex_pipeline.domain.audit import AuditEvent

INSERT = "INSERT INTO audit_events (org_id, project_id, actor_id, kind, details) VALUES (%s, %s, %s, %s, %s)"


def _row(event: AuditEvent) -> tuple:
    details = json.loads(json.dumps(event.details(), default=str))
    return event.org_id, event.workspace_id, event.actor_id, event.kind, Jsonb(details)


def record(conn: psycopg.Connection, event: AuditEvent) -> None:
    conn.execute(INSERT, _row(event))


def record_many(conn: psycopg.Connection, events: Sequence[AuditEvent]) -> None:
    """Many events in one round trip."""
    if events:
        with conn.cursor() as cur:
            cur.executemany(INSERT, [_row(e) for e in events])
