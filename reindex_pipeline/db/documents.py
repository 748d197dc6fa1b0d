"""SQL for the reindex: requesters, documents, preserved OCR output, derived data, statuses, audit.

Every statement is parameterised. Functions take an open psycopg connection; the caller owns the
transaction (``extracted data`` is replaced inside the caller's transaction so it can be rolled back).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from reindex_pipeline.reindex.extraction import Extraction
from reindex_pipeline.reindex.selection import DocumentRow, Requester

PHASES = ("extraction", "vector_indexing", "graphrag_indexing")

_DOCUMENT_COLUMNS = """
    id::text, workspace_id::text, owner_id::text, filename, convert_status, index_status, deleted_at,
    indexing_details->>'run_id' AS indexing_run_id
"""


def load_requester(conn: psycopg.Connection, user_id: str) -> Requester | None:
    row = conn.execute("SELECT id::text, role, status, username FROM users WHERE id::text = %s",
                       (user_id,)).fetchone()
    return Requester(*row) if row else None


def org_of(conn: psycopg.Connection, user_id: str) -> str | None:
    row = conn.execute("SELECT org_id::text FROM users WHERE id::text = %s", (user_id,)).fetchone()
    return row[0] if row else None


def load_documents(conn: psycopg.Connection, ids: Iterable[str]) -> list[DocumentRow]:
    """The documents with these ids (ids that are not UUIDs or not present are simply absent)."""
    wanted = [i for i in ids if _is_uuid(i)]
    rows = conn.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ANY(%s::uuid[])",  # noqa: S608
                        (wanted,)).fetchall()
    return [DocumentRow(*r) for r in rows]


def iter_documents(conn: psycopg.Connection, workspace_id: str | None = None,
                   batch: int = 5000) -> Iterator[DocumentRow]:
    """Stream every document (of one workspace), ordered by id, with a server-side cursor."""
    query = f"SELECT {_DOCUMENT_COLUMNS} FROM documents"  # noqa: S608
    params: tuple[Any, ...] = ()
    if workspace_id is not None:
        query += " WHERE workspace_id::text = %s"
        params = (workspace_id,)
    with conn.cursor(name="documents_stream") as cur:
        cur.itersize = batch
        cur.execute(query + " ORDER BY id", params)
        for row in cur:
            yield DocumentRow(*row)


def load_pages(conn: psycopg.Connection, document_id: str) -> list[str]:
    rows = conn.execute("SELECT markdown FROM pages WHERE document_id = %s ORDER BY page_number",
                        (document_id,)).fetchall()
    return [r[0] for r in rows]


def load_chunks(conn: psycopg.Connection, document_id: str) -> list[tuple[int, str]]:
    rows = conn.execute("SELECT chunk_index, chunk_content FROM chunks WHERE document_id = %s ORDER BY chunk_index",
                        (document_id,)).fetchall()
    return [(r[0], r[1]) for r in rows]


# -- statuses (seed 003 §2.3, §4.3.3, §15.2) ------------------------------------------------------------
def claim(conn: psycopg.Connection, document_id: str, run_id: str, phases: Iterable[str]) -> bool:
    """indexed -> indexing with the run's phases pending. False if the document is no longer claimable."""
    details = {"run_id": run_id, **{p: {"status": "pending"} for p in phases}}
    row = conn.execute(
        """
        UPDATE documents SET index_status = 'indexing', updated_at = now(),
               indexing_details = %s
         WHERE id = %s AND deleted_at IS NULL AND convert_status = 'converted'
           AND (index_status = 'indexed' OR (index_status = 'indexing' AND indexing_details->>'run_id' = %s))
        RETURNING 1
        """,
        (Jsonb(details), document_id, run_id),
    ).fetchone()
    if row:
        log_status(conn, document_id, "indexed", "indexing", None, run_id, {"phases": list(phases)})
    return row is not None


def set_phase(conn: psycopg.Connection, document_id: str, run_id: str, phase: str, status: str,
              extra: dict | None = None) -> None:
    value = {"status": status, **(extra or {})}
    conn.execute(
        "UPDATE documents SET indexing_details = jsonb_set(indexing_details, %s, %s), updated_at = now() "
        "WHERE id = %s AND indexing_details->>'run_id' = %s",
        ([phase], Jsonb(value), document_id, run_id),
    )
    log_status(conn, document_id, "indexing", "indexing", phase, run_id, value)


def release(conn: psycopg.Connection, document_id: str, run_id: str, failure: dict | None = None) -> None:
    """indexing -> indexed, success or not (a failed reindex leaves the document as it was, seed 003 §9.2)."""
    extra = {"last_failure": failure} if failure else {}
    conn.execute(
        "UPDATE documents SET index_status = 'indexed', updated_at = now(), "
        "indexing_details = (indexing_details - 'last_failure') || %s "
        "WHERE id = %s AND indexing_details->>'run_id' = %s",
        (Jsonb(extra), document_id, run_id),
    )
    log_status(conn, document_id, "indexing", "indexed", failure["phase"] if failure else None, run_id,
               {"outcome": "failed", **failure} if failure else {"outcome": "done"})


def log_status(conn: psycopg.Connection, document_id: str, from_status: str | None, to_status: str,
               phase: str | None, run_id: str | None, details: dict) -> None:
    conn.execute(
        "INSERT INTO document_status_log (document_id, from_status, to_status, phase, run_id, details) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (document_id, from_status, to_status, phase, run_id, Jsonb(details)),
    )


# -- derived data ------------------------------------------------------------------------------------
def replace_extracted(conn: psycopg.Connection, document_id: str, extraction: Extraction, extractor: str,
                      version: str) -> tuple[int, int]:
    """Swap the document's extracted rows for ``extraction`` (inside the caller's transaction).

    Inserting rows that reference the document takes only a KEY SHARE lock on it, so live status
    updates of the document (another connection) are not blocked meanwhile."""
    conn.execute("DELETE FROM documents_data_line_items WHERE document_id = %s", (document_id,))
    conn.execute("DELETE FROM documents_data WHERE document_id = %s", (document_id,))
    fields = extraction.fields()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO documents_data (document_id, field_name, field_value, confidence, extractor_version) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(document_id, name, value, None, version) for name, value in fields.items()],
        )
        cur.executemany(
            "INSERT INTO documents_data_line_items (document_id, line_number, field_data, extractor_version) "
            "VALUES (%s, %s, %s, %s)",
            [(document_id, item.line, Jsonb(item.model_dump()), version) for item in extraction.line_items],
        )
    return len(fields), len(extraction.line_items)


def mark_extracted(conn: psycopg.Connection, document_id: str, extraction: Extraction, extractor: str,
                   version: str) -> None:
    """Record classification and extractor on the document. Run it LAST in the swap transaction: it
    locks the document row, which the live status updates of the same run also need."""
    conn.execute(
        "UPDATE documents SET classification = %s, extraction_schema_type = %s, extractor_name = %s, "
        "extractor_version = %s, extraction_status = 'done', "
        "document_metadata = document_metadata || %s WHERE id = %s",
        (extraction.document_type, extraction.document_type, extractor, version,
         Jsonb({"language": extraction.language}), document_id),
    )


def extracted_snapshot(conn: psycopg.Connection, document_id: str) -> dict[str, Any]:
    """The document's derived rows, for comparisons (tests, previews)."""
    conn.row_factory = dict_row  # type: ignore[assignment]
    try:
        data = conn.execute("SELECT field_name, field_value, extractor_version FROM documents_data "
                            "WHERE document_id = %s ORDER BY field_name", (document_id,)).fetchall()
        items = conn.execute("SELECT line_number, field_data, extractor_version FROM documents_data_line_items "
                             "WHERE document_id = %s ORDER BY line_number", (document_id,)).fetchall()
    finally:
        conn.row_factory = psycopg.rows.tuple_row  # type: ignore[assignment]
    return {"data": data, "line_items": items}


# -- audit (seed 000 kinds, seed 003 §12.6 details) ------------------------------------------------------
def audit(conn: psycopg.Connection, kind: str, org_id: str | None, project_id: str | None, actor_id: str | None,
          details: dict) -> None:
    conn.execute(
        "INSERT INTO audit_events (org_id, project_id, actor_id, kind, details) VALUES (%s, %s, %s, %s, %s)",
        (org_id, project_id, actor_id, kind, Jsonb(json.loads(json.dumps(details, default=str)))),
    )


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# -- partition sync -------------------------------------------------------------------------------------
_CURSOR_QUERIES = {
    # cursor column -> which documents it walks; fixed text, never user input
    "created_at": "deleted_at IS NULL",
    "deleted_at": "deleted_at IS NOT NULL",
}


def _since(conn: psycopg.Connection, column: str, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
    query = f"SELECT {column}::text, id::text FROM documents WHERE {_CURSOR_QUERIES[column]}"  # noqa: S608
    params: tuple[Any, ...] = ()
    if after is not None:
        query += f" AND ({column}, id) > (%s::timestamptz, %s::uuid)"
        params = after
    return conn.execute(query + f" ORDER BY {column}, id LIMIT %s", (*params, limit)).fetchall()


def created_since(conn: psycopg.Connection, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
    """(created_at, id) of live documents created after the cursor, oldest first."""
    return _since(conn, "created_at", after, limit)


def deleted_since(conn: psycopg.Connection, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
    """(deleted_at, id) of documents deleted after the cursor, oldest first."""
    return _since(conn, "deleted_at", after, limit)


def newest_deletion(conn: psycopg.Connection) -> tuple[str, str] | None:
    row = conn.execute("SELECT deleted_at::text, id::text FROM documents WHERE deleted_at IS NOT NULL "
                       "ORDER BY deleted_at DESC, id DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else None
