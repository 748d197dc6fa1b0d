"""Ingest restored files: the work of a ``restore_ingest`` run over a batch of pending objects.

Each object is claimed (its row locked, so two runs never take the same file), read from the bucket, parsed
(scanned pages through OCR, see :mod:`reindex_pipeline.ingest.parsing`) and stored as a document with its
pages and chunks, or marked ``failed`` with one line that says why. One file's failure is that file's: the
others go on. The documents ingested are then reindexed by one queue request per workspace (as few reindex
runs as the run-size cap allows), as REINDEX_OPERATOR_USER_ID: at the end of the run, and every 15 s
before it. Objects a killed run stored but never queued are queued by the sensor
(:func:`queue_unqueued`) once Dagster reports that run ended.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import psycopg

from reindex_pipeline.db import audit, queue, restores
from reindex_pipeline.domain.audit import RequestQueued, RestoreIngested, RestoreRejected
from reindex_pipeline.ingest.parsing import UnreadableFile, check_size, parse_document
from reindex_pipeline.ingest.restore_keys import parse_restore_key

#: Seconds after which a run queues the reindex of the files it has stored so far (and again at its end), so
#: the reindex of a restored backup starts while it is still being ingested. The queue lets requests queued
#: while a restore's run waits for its slot share one run (``queue_rules.sharing_runs``).
QUEUE_EVERY_S = 15.0


@dataclass
class IngestReport:
    ingested: list[tuple[str, str]] = field(default_factory=list)  # (key, document id)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    taken_elsewhere: int = 0  # claimed by another run, or handled already
    requests: list[str] = field(default_factory=list)  # queue requests that reindex the new documents
    ocr_pages: int = 0


def ingest_objects(
    connect: Callable[[], AbstractContextManager[psycopg.Connection]],
    read: Callable[[str], bytes],
    object_ids: list[int],
    run_id: str,
    log: Callable[[str], None] = lambda _: None,
) -> IngestReport:
    report = IngestReport()
    new: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)  # (org, workspace) -> (object, doc)
    flushed = time.monotonic()
    with connect() as conn:
        for object_id in object_ids:
            outcome = _ingest_one(conn, read, object_id, run_id)
            conn.commit()
            if outcome is None:
                report.taken_elsewhere += 1
                continue
            key, ok, detail, org_project, ocr_pages = outcome
            if ok:
                report.ingested.append((key, detail))
                new[org_project].append((object_id, detail))
                report.ocr_pages += ocr_pages
                log(f"{key}: ingested as document {detail}" + (f" ({ocr_pages} pages by OCR)" if ocr_pages else ""))
            else:
                report.failed.append((key, detail))
                log(f"{key}: failed: {detail}")
            # Slow files (scans to OCR) do not hold back the reindex of those already stored.
            if time.monotonic() - flushed > QUEUE_EVERY_S:
                report.requests += _queue_all(conn, new)
                flushed = time.monotonic()
        report.requests += _queue_all(conn, new)
    return report


def queue_unqueued(conn: psycopg.Connection, rows: list[restores.IngestedObject]) -> list[str]:
    """Reindex requests for objects ingested by a run that ended before it queued them (it was killed)."""
    new: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for row in rows:
        new[(row.org_id, row.project_id)].append((row.id, row.document_id))
    return _queue_all(conn, new)


def _queue_all(conn: psycopg.Connection, new: dict[tuple[str, str], list[tuple[int, str]]]) -> list[str]:
    requests = [_queue_reindex(conn, org_id, project_id, rows) for (org_id, project_id), rows in new.items()]
    conn.commit()
    new.clear()
    return requests


def _ingest_one(
    conn: psycopg.Connection, read: Callable[[str], bytes], object_id: int, run_id: str
) -> tuple[str, bool, str, tuple[str, str], int] | None:
    """(key, ingested?, document id or why, (org, workspace), OCR'd pages); None when not this run's."""
    with conn.transaction():
        pending = restores.claim(conn, object_id, run_id)
        if pending is None:
            return None
        restore = parse_restore_key(pending.stored_key)  # checked by the sensor; the shape holds
        where = (restore.org_id, restore.project_id)
        try:
            check_size(pending.size)
            data = read(pending.stored_key)
            parsed = parse_document(data, restore.extension)
        except UnreadableFile as exc:
            return _fail(conn, pending, restore, str(exc), where)
        except OSError as exc:  # the bucket: gone, unreadable
            return _fail(conn, pending, restore, f"could not read the file: {type(exc).__name__}: {exc}", where)
        except Exception as exc:  # a parser's own failure on this file: this file fails, the batch goes on
            reason = f"could not parse the file: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return _fail(conn, pending, restore, reason, where)
        try:
            with conn.transaction():
                document_id, created = restores.reingest(
                    conn,
                    restore.project_id,
                    restore.filename,
                    pending.stored_key,
                    data,
                    restore.mime_type,
                    parsed.pages,
                    (parsed.einvoice_syntax, parsed.einvoice_xml) if parsed.einvoice_xml else None,
                )
        except psycopg.Error as exc:
            reason = f"could not store the document: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            return _fail(conn, pending, restore, reason, where)
        restores.finish(
            conn,
            pending.id,
            "ingested",
            sha256=hashlib.sha256(data).hexdigest(),
            document_id=document_id,
            pages=len(parsed.pages),
            ocr_pages=parsed.ocr_pages,
        )
        event = RestoreIngested(
            org_id=restore.org_id,
            workspace_id=restore.project_id,
            stored_key=pending.stored_key,
            filename=restore.filename,
            document_id=document_id,
            created=created,
            pages=len(parsed.pages),
            ocr_pages=parsed.ocr_pages,
            einvoice=parsed.einvoice_syntax,
            run_id=run_id,
        )
        audit.record(conn, event)
    return pending.stored_key, True, document_id, where, parsed.ocr_pages


def _fail(conn, pending: restores.PendingObject, restore, reason: str, where: tuple[str, str]):
    restores.finish(conn, pending.id, "failed", error=reason)
    event = RestoreRejected(
        org_id=restore.org_id, workspace_id=restore.project_id, stored_key=pending.stored_key, reason=reason
    )
    audit.record(conn, event)
    return pending.stored_key, False, reason, where, 0


def _queue_reindex(conn: psycopg.Connection, org_id: str, project_id: str, rows: list[tuple[int, str]]) -> str:
    document_ids = list(dict.fromkeys(doc for _, doc in rows))  # a file restored twice in one batch: once
    request_id = queue.insert_request(
        conn,
        org_id=org_id,
        requested_by=None,
        scope="restore",
        workspace_id=project_id,
        document_ids=document_ids,
        source="restore",
    )
    restores.set_request(conn, [object_id for object_id, _ in rows], request_id)
    event = RequestQueued(
        org_id=org_id,
        workspace_id=project_id,
        request_id=request_id,
        source="restore",
        document_ids=document_ids[:100],
        documents=len(document_ids),
    )
    audit.record(conn, event)
    return request_id


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
