"""SQL for the reindex: requesters, documents, preserved OCR output, derived data, statuses, audit.

Every statement is parameterised. Functions take an open psycopg connection; the caller owns the
transaction (``extracted data`` is replaced inside the caller's transaction so it can be rolled back).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.domain.ids import is_uuid
from reindex_pipeline.domain.selection import CLAIM_LEASE_SECONDS, DocumentGroup, DocumentRow, Requester

PHASES = ("extraction", "vector_indexing", "graphrag_indexing")

#: A document left ``indexing`` by its run for longer than the claim lease (see ``selection.CLAIM_LEASE_SECONDS``).
_CLAIM_EXPIRED = f"""coalesce(d.index_status = 'indexing' AND d.indexing_details ? 'run_id'
    AND d.updated_at < now() - interval '{CLAIM_LEASE_SECONDS} seconds', false)"""
_DOCUMENT_COLUMNS = f"""
    d.id::text, d.workspace_id::text, d.owner_id::text, d.filename, d.convert_status, d.index_status, d.deleted_at,
    d.indexing_details->>'run_id' AS indexing_run_id, {_CLAIM_EXPIRED} AS claim_expired, w.org_id::text AS org_id
"""  # noqa: S608 - a constant (the lease), no input
#: Each document with its workspace (for the organisation), joined once rather than looked up per row.
_DOCUMENTS = "documents d LEFT JOIN workspaces w ON w.id = d.workspace_id"


def _in_scope(workspace_id: str | None, org_id: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause (over ``_DOCUMENTS``) of one workspace's or one organisation's documents, and its values."""
    where, params = "true", []
    if workspace_id is not None:
        where += " AND d.workspace_id::text = %s"
        params.append(workspace_id)
    if org_id is not None:
        where += " AND w.org_id::text = %s"
        params.append(org_id)
    return where, params


def load_requester(conn: psycopg.Connection, user_id: str) -> Requester | None:
    row = conn.execute(
        "SELECT id::text, role, status, username, org_id::text FROM users WHERE id::text = %s", (user_id,)
    ).fetchone()
    return Requester(*row) if row else None


def org_of(conn: psycopg.Connection, user_id: str) -> str | None:
    row = conn.execute("SELECT org_id::text FROM users WHERE id::text = %s", (user_id,)).fetchone()
    return row[0] if row else None


def load_documents(conn: psycopg.Connection, ids: Iterable[str]) -> list[DocumentRow]:
    """The documents with these ids (ids that are not UUIDs or not present are simply absent)."""
    wanted = [i for i in ids if is_uuid(i)]
    rows = conn.execute(
        f"SELECT {_DOCUMENT_COLUMNS} FROM {_DOCUMENTS} WHERE d.id = ANY(%s::uuid[])",  # noqa: S608
        (wanted,),
    ).fetchall()
    return [DocumentRow(*r) for r in rows]


def iter_documents(
    conn: psycopg.Connection, workspace_id: str | None = None, batch: int = 20_000, org_id: str | None = None
) -> Iterator[DocumentRow]:
    """Stream every document (of one workspace, of one organisation), ordered by id, with a server-side cursor."""
    where, params = _in_scope(workspace_id, org_id)
    with conn.cursor(name="documents_stream", binary=True) as cur:
        cur.itersize = batch
        cur.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM {_DOCUMENTS} WHERE {where} ORDER BY d.id", params)  # noqa: S608
        for row in cur:
            yield DocumentRow(*row)


#: What eligibility reads of a document (see ``selection.DocumentGroup``), from ``_document_facts``.
_GROUP_KEY = ("org_id", "workspace_id", "deleted", "convert_status", "index_status", "claim_expired", "owned")


def _document_facts(requester_id: str, workspace_id: str | None, org_id: str | None) -> tuple[str, list[Any]]:
    """A subquery of every document in scope with what eligibility reads of it, and its parameters."""
    where, params = _in_scope(workspace_id, org_id)
    query = f"""
        SELECT w.org_id::text AS org_id, d.workspace_id::text AS workspace_id, d.deleted_at IS NOT NULL AS deleted,
               d.convert_status, d.index_status, {_CLAIM_EXPIRED} AS claim_expired,
               coalesce(d.owner_id::text = %s, false) AS owned, d.id, d.filename
        FROM {_DOCUMENTS} WHERE {where}"""  # noqa: S608 - constants only; every value is a parameter
    return query, [requester_id, *params]


def document_groups(
    conn: psycopg.Connection,
    requester_id: str,
    workspace_id: str | None = None,
    org_id: str | None = None,
    keep: int = 5,
) -> list[DocumentGroup]:
    """Every document (of one workspace, of one organisation) counted by what eligibility reads, with ``keep``
    of each group (the first the scan meets): one hashed aggregate in the database, no sort (~3 s at a million
    documents, where streaming them through Python took 11 s and ordering examples by id in SQL 7 s)."""
    facts, params = _document_facts(requester_id, workspace_id, org_id)
    keys = ", ".join(_GROUP_KEY)
    query = (
        f"SELECT {keys}, count(*), (array_agg(id))[1:%s], (array_agg(filename))[1:%s] "  # noqa: S608
        f"FROM ({facts}) AS f GROUP BY {keys}"
    )
    groups = []
    for org, ws, deleted, convert, index, expired, owned, count, ids, names in conn.execute(
        query, (keep, keep, *params)
    ):
        sample = DocumentRow(
            id="",
            workspace_id=ws,
            owner_id=requester_id if owned else None,
            filename="",
            convert_status=convert,
            index_status=index,
            deleted_at=_DELETED if deleted else None,
            claim_expired=expired,
            org_id=org,
        )
        examples = [(str(i), name) for i, name in zip(ids or [], names or [], strict=True)]
        groups.append(DocumentGroup(sample, count, examples))
    return groups


_DELETED = datetime(1970, 1, 1, tzinfo=UTC)  # stands for "deleted at some time" in a group's sample


def load_pages(conn: psycopg.Connection, document_id: str) -> list[str]:
    return load_pages_of(conn, [document_id]).get(document_id, [])


def load_pages_of(conn: psycopg.Connection, document_ids: list[str]) -> dict[str, list[str]]:
    """Each document's page markdown, in page order (one query for many documents)."""
    rows = conn.execute(
        "SELECT document_id::text, markdown FROM pages WHERE document_id = ANY(%s::uuid[]) "
        "ORDER BY document_id, page_number",
        (document_ids,),
    ).fetchall()
    out: dict[str, list[str]] = {}
    for doc_id, markdown in rows:
        out.setdefault(doc_id, []).append(markdown)
    return out


def load_einvoices_of(conn: psycopg.Connection, document_ids: list[str]) -> dict[str, bytes]:
    """The e-invoice XML of those documents that have one (one query for many documents)."""
    rows = conn.execute(
        "SELECT document_id::text, xml FROM document_einvoices WHERE document_id = ANY(%s::uuid[])", (document_ids,)
    ).fetchall()
    return {doc_id: xml.encode("utf-8") for doc_id, xml in rows}


def text_sizes(conn: psycopg.Connection, document_ids: list[str]) -> tuple[int, int, int]:
    """(characters of the pages, chunks, characters of the chunks) of these documents, summed in the database."""
    pages = conn.execute(
        "SELECT coalesce(sum(length(markdown)), 0) FROM pages WHERE document_id = ANY(%s::uuid[])", (document_ids,)
    ).fetchone()[0]
    chunks, characters = conn.execute(
        "SELECT count(*), coalesce(sum(length(chunk_content)), 0) FROM chunks WHERE document_id = ANY(%s::uuid[])",
        (document_ids,),
    ).fetchone()
    return int(pages), int(chunks), int(characters)


def load_chunks_of(conn: psycopg.Connection, document_ids: list[str]) -> dict[str, list[tuple[int, str]]]:
    """Each document's preserved chunks as (chunk_index, content), in order (one query for many)."""
    rows = conn.execute(
        "SELECT document_id::text, chunk_index, chunk_content FROM chunks "
        "WHERE document_id = ANY(%s::uuid[]) ORDER BY document_id, chunk_index",
        (document_ids,),
    ).fetchall()
    out: dict[str, list[tuple[int, str]]] = {}
    for doc_id, index, content in rows:
        out.setdefault(doc_id, []).append((index, content))
    return out


# -- statuses: indexed -> indexing (phases pending -> running -> done | failed) -> indexed -----------------
def claim_many(
    conn: psycopg.Connection, run_id: str, details: dict[str, dict], dead_runs: Iterable[str] = ()
) -> set[str]:
    """indexed -> indexing for each document id in ``details`` (its ``indexing_details``), in one statement.
    A document still ``indexing`` is taken over from this run, from ``dead_runs`` (runs known to have ended)
    or when its claim is older than the lease.

    Returns the ids claimed; the others are no longer claimable (deleted, unconverted, taken by another run)."""
    if not details:
        return set()
    ids = list(details)
    rows = conn.execute(
        """
        WITH wanted AS (SELECT * FROM unnest(%s::uuid[], %s::jsonb[]) AS w(id, details)),
        claimed AS (
            UPDATE documents d SET index_status = 'indexing', updated_at = now(), indexing_details = w.details
              FROM wanted w
             WHERE d.id = w.id AND d.deleted_at IS NULL AND d.convert_status = 'converted'
               AND (d.index_status = 'indexed'
                    OR (d.index_status = 'indexing'
                        AND (d.indexing_details->>'run_id' = ANY(%s)
                             OR (d.indexing_details ? 'run_id'
                                 AND d.updated_at < now() - make_interval(secs => %s)))))
            RETURNING d.id, w.details
        )
        INSERT INTO document_status_log (document_id, from_status, to_status, phase, run_id, details)
        SELECT id, 'indexed', 'indexing', NULL, %s, details FROM claimed
        RETURNING document_id::text
        """,
        (ids, [Jsonb(details[i]) for i in ids], [run_id, *dead_runs], CLAIM_LEASE_SECONDS, run_id),
    ).fetchall()
    return {r[0] for r in rows}


def indexing_runs(conn: psycopg.Connection, document_ids: list[str]) -> set[str]:
    """The runs that hold any of these documents in ``indexing`` (to tell the dead ones from the live)."""
    rows = conn.execute(
        "SELECT DISTINCT indexing_details->>'run_id' FROM documents "
        "WHERE id = ANY(%s::uuid[]) AND index_status = 'indexing' AND indexing_details ? 'run_id'",
        ([i for i in document_ids if is_uuid(i)],),
    ).fetchall()
    return {r[0] for r in rows}


def set_running(conn: psycopg.Connection, document_id: str, run_id: str, phases: list[str]) -> None:
    """The document's phases pending -> running (one statement)."""
    _transition(
        conn,
        document_id,
        run_id,
        "indexing",
        {p: {"status": "running"} for p in phases},
        {"phases": phases, "status": "running"},
    )


def release(
    conn: psycopg.Connection,
    document_id: str,
    run_id: str,
    phases: list[str],
    failure: dict | None = None,
    state: dict | None = None,
) -> None:
    """indexing -> indexed, success or not: a failed reindex leaves the document as it was before.

    On success ``state`` (fingerprints, live vectors, graph pass) is recorded right after."""
    if failure:
        statuses = {
            p: {"status": "failed", "error": failure["error"]} if p == failure["phase"] else {"status": "rolled_back"}
            for p in phases
        }
        details, log = {**statuses, "last_failure": failure}, {"outcome": "failed", **failure}
    else:
        details, log = {p: {"status": "done"} for p in phases}, {"outcome": "done", "phases": phases}
    _transition(
        conn, document_id, run_id, "indexed", details, log, failure["phase"] if failure else None, drop_failure=True
    )
    if state is not None:
        record_state(conn, document_id, state)


def _transition(
    conn: psycopg.Connection,
    document_id: str,
    run_id: str,
    to_status: str,
    details: dict,
    log: dict,
    phase: str | None = None,
    drop_failure: bool = False,
) -> None:
    conn.execute(
        """
        WITH moved AS (
            UPDATE documents SET index_status = %s, updated_at = now(),
                   indexing_details = (CASE WHEN %s THEN indexing_details - 'last_failure'
                                            ELSE indexing_details END) || %s
             WHERE id = %s AND indexing_details->>'run_id' = %s
            RETURNING id
        )
        INSERT INTO document_status_log (document_id, from_status, to_status, phase, run_id, details)
        SELECT id, 'indexing', %s, %s, %s, %s FROM moved
        """,
        (to_status, drop_failure, Jsonb(details), document_id, run_id, to_status, phase, run_id, Jsonb(log)),
    )


def log_status(
    conn: psycopg.Connection,
    document_id: str,
    from_status: str | None,
    to_status: str,
    phase: str | None,
    run_id: str | None,
    details: dict,
) -> None:
    conn.execute(
        "INSERT INTO document_status_log (document_id, from_status, to_status, phase, run_id, details) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (document_id, from_status, to_status, phase, run_id, Jsonb(details)),
    )


# -- index state: what produced each derived index (fingerprints), where the live vectors are -------------
def source_hashes(conn: psycopg.Connection, document_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per document: sha256 of its pages (and of its e-invoice XML, when it has one) and of its chunks (computed
    in the database: no text is sent) and the fingerprints recorded when each phase last succeeded. One query
    for many documents."""
    rows = conn.execute(
        """
        SELECT d.id::text,
               (SELECT encode(sha256(convert_to(coalesce(string_agg(p.markdown, E'\\x1e' ORDER BY p.page_number),
                                                         '')
                                                || coalesce((SELECT E'\\x1d' || e.xml_sha256 FROM document_einvoices e
                                                              WHERE e.document_id = d.id), ''), 'UTF8')), 'hex')
                  FROM pages p WHERE p.document_id = d.id),
               (SELECT encode(sha256(convert_to(coalesce(string_agg(c.chunk_index || E'\\x1f' || c.chunk_content,
                                                                    E'\\x1e' ORDER BY c.chunk_index), ''),
                                                'UTF8')), 'hex')
                  FROM chunks c WHERE c.document_id = d.id),
               s.extraction_fingerprint, s.vectors_fingerprint, s.graph_fingerprint
          FROM unnest(%s::uuid[]) AS d(id)
          LEFT JOIN document_index_state s ON s.document_id = d.id
        """,
        (document_ids,),
    ).fetchall()
    return {
        r[0]: {
            "pages": r[1],
            "chunks": r[2],
            "recorded": {"extraction": r[3], "vector_indexing": r[4], "graphrag_indexing": r[5]},
        }
        for r in rows
    }


def recorded_fingerprints(conn: psycopg.Connection, document_ids: list[str]) -> dict[str, dict[str, str | None]]:
    """Per document, the fingerprint each phase recorded when it last succeeded (documents never indexed
    are absent)."""
    rows = conn.execute(
        "SELECT document_id::text, extraction_fingerprint, vectors_fingerprint, graph_fingerprint "
        "FROM document_index_state WHERE document_id = ANY(%s::uuid[])",
        ([i for i in document_ids if is_uuid(i)],),
    ).fetchall()
    return {r[0]: {"extraction": r[1], "vector_indexing": r[2], "graphrag_indexing": r[3]} for r in rows}


#: fixed column names of ``document_index_state`` that ``record_state`` may set
STATE_COLUMNS = (
    "extraction_fingerprint",
    "vectors_fingerprint",
    "graph_fingerprint",
    "vector_collection",
    "embedding_model",
    "vector_points",
    "graph_pass_id",
)


def record_state(conn: psycopg.Connection, document_id: str, state: dict[str, Any]) -> None:
    """Upsert the given state columns; columns not given keep their value (phases not run this time)."""
    columns = [c for c in STATE_COLUMNS if c in state]
    if not columns:
        return
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    conn.execute(
        f"INSERT INTO document_index_state (document_id, {names}, updated_at) "  # noqa: S608 (fixed names)
        f"VALUES (%s, {placeholders}, now()) "
        f"ON CONFLICT (document_id) DO UPDATE SET {updates}, updated_at = now()",
        (document_id, *[state[c] for c in columns]),
    )


def missing_vectors(conn: psycopg.Connection, collection: str, embedding_model: str) -> int:
    """How many eligible documents do not have their live vectors in ``collection`` from ``embedding_model``."""
    return conn.execute(
        """
        SELECT count(*) FROM documents d LEFT JOIN document_index_state s ON s.document_id = d.id
         WHERE d.deleted_at IS NULL AND d.convert_status = 'converted' AND d.index_status = 'indexed'
           AND (s.vector_collection IS DISTINCT FROM %s OR s.embedding_model IS DISTINCT FROM %s)
        """,
        (collection, embedding_model),
    ).fetchone()[0]


# -- derived data ------------------------------------------------------------------------------------
def replace_extracted(
    conn: psycopg.Connection, document_id: str, extraction: Extraction, extractor: str, version: str
) -> tuple[int, int]:
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
            [(document_id, name, value, extraction.confidence(name), version) for name, value in fields.items()],
        )
        cur.executemany(
            "INSERT INTO documents_data_line_items (document_id, line_number, field_data, extractor_version) "
            "VALUES (%s, %s, %s, %s)",
            [(document_id, item.line, Jsonb(item.model_dump()), version) for item in extraction.numbered_items()],
        )
    return len(fields), len(extraction.line_items)


def mark_extracted(
    conn: psycopg.Connection, document_id: str, extraction: Extraction, extractor: str, version: str
) -> None:
    """Record classification and extractor on the document. Run it LAST in the swap transaction: it
    locks the document row, which the live status updates of the same run also need."""
    conn.execute(
        "UPDATE documents SET classification = %s, extraction_schema_type = %s, extractor_name = %s, "
        "extractor_version = %s, extraction_status = 'done', "
        "document_metadata = document_metadata || %s WHERE id = %s",
        (
            extraction.document_type,
            extraction.document_type,
            extractor,
            version,
            Jsonb({"language": extraction.language}),
            document_id,
        ),
    )


def extracted_snapshot(conn: psycopg.Connection, document_id: str) -> dict[str, Any]:
    """The document's derived rows, for comparisons (tests, previews)."""
    conn.row_factory = dict_row  # type: ignore[assignment]
    try:
        data = conn.execute(
            "SELECT field_name, field_value, extractor_version FROM documents_data "
            "WHERE document_id = %s ORDER BY field_name",
            (document_id,),
        ).fetchall()
        items = conn.execute(
            "SELECT line_number, field_data, extractor_version FROM documents_data_line_items "
            "WHERE document_id = %s ORDER BY line_number",
            (document_id,),
        ).fetchall()
    finally:
        conn.row_factory = psycopg.rows.tuple_row  # type: ignore[assignment]
    return {"data": data, "line_items": items}


# -- partition sync -------------------------------------------------------------------------------------
def created_since(conn: psycopg.Connection, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
    """(created_at, id) of live documents created after the cursor, oldest first."""
    query = "SELECT created_at::text, id::text FROM documents WHERE deleted_at IS NULL"
    params: tuple[Any, ...] = ()
    if after is not None:
        query += " AND (created_at, id) > (%s::timestamptz, %s::uuid)"
        params = after
    return conn.execute(query + " ORDER BY created_at, id LIMIT %s", (*params, limit)).fetchall()
