"""Derived data follows the source: propagate deletions and access changes to every store.

A change recorded in ``source_changes`` (by triggers on ``documents``) is applied in batches:

- **purge** (``deleted_at`` set, or the row deleted): the document's points in every model's Qdrant
  collection, its graph slice (Document node, chunks, mentions, relations; a shared entity only when
  no other document mentions it) and its extracted rows and index state are removed, with a
  ``reindex.purged`` audit event and a status-log row. Stores first, Postgres last and in one
  transaction with the outbox: a purge that dies midway is simply done again (every step is idempotent).
- **access** (``owner_id`` / ``workspace_id`` changed): the Qdrant payload and the Document node get
  the document's current owner and workspace. No embedding, nothing else changes.

A document still being indexed by a run is deferred briefly (a purge must not race the run's writes);
a document deleted and restored before the purge ran is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reindex_pipeline import vectors
from reindex_pipeline.db import audit
from reindex_pipeline.db import source_changes as changes_db
from reindex_pipeline.domain.audit import DocumentPurged
from reindex_pipeline.graph import writer as graph_writer
from reindex_pipeline.graph.store import GraphStore

#: How long a purge waits for a run that is indexing the document before it goes ahead anyway.
MAX_DEFER = timedelta(minutes=10)
DEFER_SECONDS = 5


@dataclass
class PropagationResult:
    purged: list[str] = field(default_factory=list)
    access_updated: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # deleted, then live again before the purge ran


class StoreError(RuntimeError):
    """A store failed while propagating; the message names it."""


def propagate(
    connect: Callable[..., Any],
    qdrant_client: Any,
    collection_base: str,
    graph: GraphStore,
    batch: list[dict[str, Any]],
    run_id: str,
) -> PropagationResult:
    """Apply one batch of due changes (rows of ``source_changes``). Raises :class:`StoreError`."""
    result = PropagationResult()
    document_ids = sorted({c["document_id"] for c in batch})
    with connect() as conn:
        now_rows = changes_db.documents_now(conn, document_ids)
    purge_changes = [c for c in batch if c["kind"] == "purge"]
    access_changes = [c for c in batch if c["kind"] == "access"]
    now = datetime.now(UTC)

    to_purge: dict[str, list[int]] = {}
    deferred: list[int] = []
    restored: list[int] = []
    for change in purge_changes:
        doc = now_rows.get(change["document_id"])
        if doc is not None and doc["deleted_at"] is None:
            restored.append(change["id"])
            result.restored.append(change["document_id"])
        elif doc is not None and doc["index_status"] == "indexing" and now - change["created_at"] < MAX_DEFER:
            deferred.append(change["id"])
            result.deferred.append(change["document_id"])
        else:
            to_purge.setdefault(change["document_id"], []).append(change["id"])
    # An access change of a document that is (also) being purged needs no propagation.
    access = {c["document_id"]: c for c in access_changes}
    live_access = {d: now_rows[d] for d in access if d in now_rows and now_rows[d]["deleted_at"] is None}

    purge_ids = sorted(to_purge)
    if purge_ids:
        _in_store("Qdrant", vectors.purge_documents, qdrant_client, collection_base, purge_ids)
        _in_store("the graph", graph_writer.purge_documents, graph, purge_ids)
    if live_access:
        rows = [{"id": d, "owner_id": r["owner_id"], "workspace_id": r["workspace_id"]} for d, r in live_access.items()]
        _in_store("Qdrant", vectors.set_access, qdrant_client, collection_base, rows)
        _in_store("the graph", graph_writer.set_access, graph, rows)

    with connect() as conn:
        if purge_ids:
            changes_db.purge_derived_rows(conn, purge_ids)
            existing = [now_rows[d] for d in purge_ids if d in now_rows]
            changes_db.log_purged(conn, existing, run_id)
            audit.record_many(conn, [_purged(d, now_rows.get(d), run_id) for d in purge_ids])
        done = [i for ids in to_purge.values() for i in ids] + [c["id"] for c in access_changes]
        changes_db.mark_done(conn, done, run_id)
        changes_db.mark_done(conn, restored, run_id, note="live again: nothing purged")
        changes_db.defer(conn, deferred, DEFER_SECONDS, "being indexed by a run: purge deferred")
        conn.commit()
    result.purged = purge_ids
    result.access_updated = sorted(live_access)
    return result


def _purged(document_id: str, row: dict[str, Any] | None, run_id: str) -> DocumentPurged:
    """A purged document's event; ``row`` None: its documents row is gone too."""
    return DocumentPurged(
        org_id=row["org_id"] if row else None,
        workspace_id=row["workspace_id"] if row else None,
        document_id=document_id,
        filename=row["filename"] if row else None,
        reason="deleted" if row else "row deleted",
        run_id=run_id,
    )


def _in_store(store: str, action: Callable[..., None], *args: Any) -> None:
    try:
        action(*args)
    except Exception as exc:
        raise StoreError(f"{store}: {type(exc).__name__}: {exc}") from exc
