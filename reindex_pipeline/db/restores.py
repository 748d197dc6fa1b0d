"""SQL for restored files: the exactly-once record, tenant checks, and re-ingesting a document."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from reindex_pipeline.ingest.chunking import split_pages


def seen(conn: psycopg.Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (key, fingerprint) pairs were already handled."""
    if not keys:
        return set()
    rows = conn.execute(
        "SELECT stored_key, fingerprint FROM restore_objects "
        "WHERE (stored_key, fingerprint) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([k for k, _ in keys], [f for _, f in keys]),
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


def record(
    conn: psycopg.Connection,
    key: str,
    fingerprint: str,
    status: str,
    *,
    size: int | None = None,
    sha256: str | None = None,
    error: str | None = None,
    org_id: str | None = None,
    project_id: str | None = None,
    document_id: str | None = None,
    request_id: str | None = None,
) -> bool:
    """Record the outcome; False if another evaluation recorded the same object first."""
    row = conn.execute(
        "INSERT INTO restore_objects (stored_key, fingerprint, size_bytes, content_sha256, status, error, org_id, "
        "project_id, document_id, request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (stored_key, fingerprint) DO NOTHING RETURNING 1",
        (key, fingerprint, size, sha256, status, error, org_id, project_id, document_id, request_id),
    ).fetchone()
    return row is not None


def record_pending(
    conn: psycopg.Connection, key: str, fingerprint: str, size: int | None, org_id: str, project_id: str
) -> bool:
    """A new object to ingest; False if it was recorded before (by another evaluation, or an earlier tick)."""
    return record(conn, key, fingerprint, "pending", size=size, org_id=org_id, project_id=project_id)


@dataclass(frozen=True)
class PendingObject:
    id: int
    stored_key: str
    fingerprint: str
    size: int | None
    launched_at: datetime | None = None  # when a run was last launched for it


def to_launch(conn: psycopg.Connection, limit: int, relaunch_after_s: float) -> list[PendingObject]:
    """Pending objects no run was launched for, or whose run was launched ``relaunch_after_s`` ago and has not
    taken them (it never came, or died before its first file): the oldest first."""
    rows = conn.execute(
        "SELECT id, stored_key, fingerprint, size_bytes, launched_at FROM restore_objects WHERE status = 'pending' "
        "AND (launched_at IS NULL OR launched_at < now() - make_interval(secs => %s)) ORDER BY id LIMIT %s",
        (relaunch_after_s, limit),
    ).fetchall()
    return [PendingObject(*r) for r in rows]


def mark_launched(conn: psycopg.Connection, ids: list[int]) -> None:
    conn.execute("UPDATE restore_objects SET launched_at = now() WHERE id = ANY(%s)", (ids,))


def claim(conn: psycopg.Connection, object_id: int, run_id: str) -> PendingObject | None:
    """Lock a pending object for this run (inside the caller's transaction); None when another run has it or
    it is handled already."""
    row = conn.execute(
        "SELECT id, stored_key, fingerprint, size_bytes FROM restore_objects "
        "WHERE id = %s AND status = 'pending' FOR UPDATE SKIP LOCKED",
        (object_id,),
    ).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE restore_objects SET run_id = %s WHERE id = %s", (run_id, object_id))
    return PendingObject(*row)


def finish(
    conn: psycopg.Connection,
    object_id: int,
    status: str,
    *,
    error: str | None = None,
    sha256: str | None = None,
    document_id: str | None = None,
    pages: int | None = None,
    ocr_pages: int | None = None,
) -> None:
    """A claimed object's outcome: ``ingested`` (with its document) or ``failed`` (with why)."""
    conn.execute(
        "UPDATE restore_objects SET status = %s, error = %s, content_sha256 = %s, document_id = %s, pages = %s, "
        "ocr_pages = %s, processed_at = now() WHERE id = %s",
        (status, error, sha256, document_id, pages, ocr_pages, object_id),
    )


@dataclass(frozen=True)
class IngestedObject:
    id: int
    org_id: str
    project_id: str
    document_id: str
    run_id: str | None


def ingested_unqueued(conn: psycopg.Connection, limit: int = 5000) -> list[IngestedObject]:
    """Objects stored as documents whose reindex was never queued (their run queues them as it goes)."""
    rows = conn.execute(
        "SELECT id, org_id::text, project_id::text, document_id::text, run_id FROM restore_objects "
        "WHERE status = 'ingested' AND request_id IS NULL AND document_id IS NOT NULL ORDER BY id LIMIT %s",
        (limit,),
    ).fetchall()
    return [IngestedObject(*r) for r in rows]


def set_request(conn: psycopg.Connection, object_ids: list[int], request_id: str) -> None:
    conn.execute("UPDATE restore_objects SET request_id = %s WHERE id = ANY(%s)", (request_id, object_ids))


def recent(conn: psycopg.Connection, limit: int, status: str | None = None) -> list[dict]:
    """The latest restored objects, newest first: key, outcome, document, why (for ``./dev restores``)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, stored_key, status, error, document_id::text, request_id::text, pages, ocr_pages, "
            "size_bytes, processed_at FROM restore_objects WHERE %s::text IS NULL OR status = %s "
            "ORDER BY id DESC LIMIT %s",
            (status, status, limit),
        ).fetchall()


def folder_times(conn: psycopg.Connection) -> dict[str, int]:
    """A local bucket's restores folders and their modification time (ns) when last listed."""
    return dict(conn.execute("SELECT folder, mtime_ns FROM restore_folders").fetchall())


def save_folder_times(conn: psycopg.Connection, folders: dict[str, int]) -> None:
    if not folders:
        return
    conn.execute(
        "INSERT INTO restore_folders (folder, mtime_ns) SELECT * FROM unnest(%s::text[], %s::bigint[]) "
        "ON CONFLICT (folder) DO UPDATE SET mtime_ns = EXCLUDED.mtime_ns, listed_at = now()",
        (list(folders), list(folders.values())),
    )


def tenant_problem(conn: psycopg.Connection, org_id: str, project_id: str) -> str | None:
    """None when the project is a workspace of that organisation; otherwise why not."""
    row = conn.execute("SELECT org_id::text FROM workspaces WHERE id::text = %s", (project_id,)).fetchone()
    if row is None:
        return f"unknown project {project_id}"
    if row[0] != org_id:
        return f"foreign tenant: project {project_id} does not belong to org {org_id}"
    return None


def reingest(
    conn: psycopg.Connection,
    workspace_id: str,
    filename: str,
    key: str,
    data: bytes,
    mime_type: str,
    pages: list[str],
    einvoice: tuple[str, bytes] | None = None,
) -> tuple[str, bool]:
    """Create or update the document for a restored file with fresh pages and chunks. (document id, created?)

    Rules: the document is the live one with the same filename in the workspace (it keeps its owner); a new
    document is owned by the workspace's creator (unowned if none). Pages and chunks are replaced: a restore
    is new OCR output, unlike a reindex, which never touches them. An e-invoice's XML is kept beside them.
    """
    sha = hashlib.sha256(data).hexdigest()
    row = conn.execute(
        "SELECT id::text FROM documents WHERE workspace_id::text = %s AND filename = %s AND deleted_at IS NULL "
        "ORDER BY created_at LIMIT 1 FOR UPDATE",
        (workspace_id, filename),
    ).fetchone()
    created = row is None
    if created:
        row = conn.execute(
            "INSERT INTO documents (workspace_id, owner_id, filename, mime_type, size_bytes, content_sha256, "
            "source_key, convert_status, index_status, indexing_details) "
            "SELECT id, created_by, %s, %s, %s, %s, %s, 'converted', 'indexed', %s FROM workspaces "
            "WHERE id::text = %s RETURNING id::text",
            (filename, mime_type, len(data), sha, key, json.dumps({"reingested_from": key}), workspace_id),
        ).fetchone()
    else:
        conn.execute(
            "UPDATE documents SET mime_type = %s, size_bytes = %s, content_sha256 = %s, source_key = %s, "
            "convert_status = 'converted', index_status = 'indexed', updated_at = now(), "
            "indexing_details = indexing_details || %s WHERE id = %s",
            (mime_type, len(data), sha, key, json.dumps({"reingested_from": key}), row[0]),
        )
        conn.execute("DELETE FROM pages WHERE document_id = %s", (row[0],))  # chunks go with them (cascade)
    document_id = row[0]
    conn.execute("DELETE FROM document_einvoices WHERE document_id = %s", (document_id,))
    if einvoice is not None:
        syntax, xml = einvoice
        conn.execute(
            "INSERT INTO document_einvoices (document_id, syntax, xml, xml_sha256) VALUES (%s, %s, %s, %s)",
            (document_id, syntax, xml.decode("utf-8", errors="replace"), hashlib.sha256(xml).hexdigest()),
        )
    with conn.cursor() as cur:
        page_ids = {}
        for number, markdown in enumerate(pages, start=1):
            page_ids[number] = cur.execute(
                "INSERT INTO pages (document_id, page_number, markdown) VALUES (%s, %s, %s) RETURNING id",
                (document_id, number, markdown),
            ).fetchone()[0]
        cur.executemany(
            "INSERT INTO chunks (document_id, page_id, chunk_index, chunk_content, chunk_metadata) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                (document_id, page_ids[c.page_number], c.chunk_index, c.content, json.dumps(c.metadata))
                for c in split_pages(pages)
            ],
        )
    return document_id, created
