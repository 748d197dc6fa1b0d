"""The restores bucket sensor: each restored file re-ingested exactly once; bad keys and files rejected."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from qdrant_client import models

from reindex_pipeline.defs.restores import restore_ingest, restores_bucket_sensor
from reindex_pipeline.embeddings import LocalEmbedder
from reindex_pipeline.graph.store import FalkorGraph
from reindex_pipeline.ingest.parsing import MAX_FILE_BYTES, MAX_PDF_PAGES, parse_pages
from reindex_pipeline.resources import AppDatabase, Bucket, QdrantStore
from reindex_pipeline.vectors import collection_name
from reindex_pipeline_tests.test_queue import ORG, WORKSPACES, Queue


def make_pdf(pages: list[str], to_unicode: dict[str, int] | None = None) -> bytes:
    """A small valid PDF with one text line per page line (Helvetica), built by hand. ``to_unicode`` maps
    characters to the code points the font's ToUnicode table claims for them (as some real fonts do)."""
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, font]
    if to_unicode:
        chars = "".join(f"<{ord(c):02X}> <{u:04X}>\n" for c, u in to_unicode.items())
        cmap = (
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /T def "
            f"1 begincodespacerange <00> <FF> endcodespacerange {len(to_unicode)} beginbfchar\n{chars}endbfchar "
            "endcmap CMapName currentdict /CMap defineresource pop end end"
        )
        objects.append(f"<< /Length {len(cmap)} >>\nstream\n{cmap}\nendstream")
        objects[2] = font.replace(" >>", f" /ToUnicode {len(objects)} 0 R >>")
    kids = []
    for text in pages:
        lines = " ".join(f"({line.replace('(', '[').replace(')', ']')}) Tj T*" for line in text.split("\n"))
        stream = f"BT /F1 11 Tf 14 TL 50 780 Td {lines} ET".encode("latin-1")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode('latin-1')}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {content} 0 R "
            f"/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


INVOICE = [
    "INVOICE\nInvoice No: INV-2026-777\nFrom: Zephyr Glassworks Ltd\nBill To: Coho Winery",
    "Items\nStained glass panel 2 x 480.00\nTotal: 960.00 EUR",
]


class Restores:
    def __init__(self, q: Queue, root: Path):
        self.q, self.root = q, root
        self.bucket = Bucket(url=root.as_uri(), settle_seconds=0)  # files here are written whole

    def put(self, key: str, data: bytes) -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return key

    def tick(self, cursor: str | None = None, ingest: bool = True) -> dg.SensorResult:
        """The sensor evaluated once, then (``ingest``) each ingest run it asked for executed."""
        resources = {"app_db": AppDatabase(url=self.q.url), "bucket": self.bucket}
        context = dg.build_sensor_context(instance=self.q.instance, cursor=cursor, resources=resources)
        result = restores_bucket_sensor(context)
        for run in result.run_requests or [] if ingest else []:
            executed = restore_ingest.execute_in_process(
                run_config=run.run_config, instance=self.q.instance, resources=resources, tags=run.tags
            )
            assert executed.success
        return result

    def objects(self) -> list[tuple]:
        with psycopg.connect(self.q.url) as conn:
            return conn.execute(
                "SELECT stored_key, status, error, document_id::text FROM restore_objects ORDER BY id"
            ).fetchall()

    def documents(self) -> list[tuple]:
        with psycopg.connect(self.q.url) as conn:
            return conn.execute("SELECT id::text, filename, updated_at FROM documents ORDER BY id").fetchall()


@pytest.fixture()
def r(app_db: str, tmp_path: Path) -> Restores:
    from reindex_pipeline.demo.loader import load_demo_corpus

    load_demo_corpus(app_db, 12, 7)
    return Restores(Queue(app_db), tmp_path / "bucket")


def key(name: str, workspace: str = "Invoices", org: str = ORG) -> str:
    return f"org/{org}/project/{WORKSPACES[workspace]}/restores/2026-11-23T10-00-00Z__{name}"


def test_a_restored_pdf_is_ingested_once_and_its_chunks_are_searchable(r: Restores) -> None:
    k = r.put(key("zephyr-invoice.pdf"), make_pdf(INVOICE))
    first = r.tick()
    [(stored, status, error, document_id)] = r.objects()
    assert (stored, status, error) == (k, "ingested", None)

    [run] = r.q.tick()
    assert run.tags["reindex/source"] == "restore"
    assert r.q.execute(run).success
    r.q.follow()

    client = QdrantStore(path=os.environ["QDRANT_PATH"]).client()
    collection = collection_name(r.q.collection, "all-MiniLM-L6-v2")
    vector = LocalEmbedder().embed(["stained glass panel from Zephyr Glassworks"])[0]
    hits = client.query_points(collection, query=vector, limit=1).points
    assert hits[0].payload["document_id"] == document_id
    own = client.count(
        collection,
        count_filter=models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
        ),
    ).count
    with psycopg.connect(r.q.url) as conn:
        chunks = conn.execute("SELECT count(*) FROM chunks WHERE document_id = %s", (document_id,)).fetchone()[0]
        kinds = [row[0] for row in conn.execute("SELECT kind FROM audit_events ORDER BY id")]
    assert own == chunks >= 1
    assert kinds[:2] == ["backup.reingest", "reindex.queued"] and "reindex.completed" in kinds

    documents_before = r.documents()
    assert r.tick(first.cursor).skip_reason.skip_message == "no new restored files"
    assert r.tick(None).skip_reason.skip_message == "no new restored files"  # a restarted daemon: no cursor
    assert r.documents() == documents_before and len(r.objects()) == 1
    assert r.q.tick() == []


def test_a_tick_lists_the_folders_that_changed_and_sweeps_a_slice_of_the_rest(r: Restores) -> None:
    from reindex_pipeline.db import restores
    from reindex_pipeline.ingest.bucket_listing import list_bucket, sweep_slice

    r.put(key("a.md"), b"# Receipt\nTotal 1.00 EUR")
    first = r.tick()
    fs, root = r.bucket.filesystem()
    with psycopg.connect(r.q.url) as conn:
        known = restores.folder_times(conn)
    assert list(known) == [key("a.md").rsplit("/", 1)[0]]
    assert list_bucket(fs, root, known, sweep=0, settle=0).objects == []  # nothing changed: no folder listed
    r.put(key("b.md", workspace="Receipts"), b"# Receipt\nTotal 2.00 EUR")
    r.put("org/stray.pdf", b"%PDF-")  # not in a restores folder: only the sweep sees it
    changed = list_bucket(fs, root, known, sweep=0, settle=0)
    assert [k for k, _, _ in changed.objects] == [key("b.md", workspace="Receipts")] and not changed.full

    # The sweep goes through the whole bucket a slice at a time, in key order, and says when it is done.
    swept, after = [], None
    for _ in range(5):
        objects, after = sweep_slice(r.root, after, 2)
        swept += [k for k, _, _ in objects]
        if after is None:
            break
    everything = sorted([key("a.md"), key("b.md", workspace="Receipts"), "org/stray.pdf"])
    assert swept == everything and after is None
    assert [k for k, _, _ in sweep_slice(r.root, everything[0], 10)[0]] == everything[1:]

    second = r.tick(first.cursor)
    objects = {k: s for k, s, _, _ in r.objects()}
    assert objects == {key("a.md"): "ingested", key("b.md", "Receipts"): "ingested", "org/stray.pdf": "rejected"}

    # A file overwritten in place leaves its folder's time as it was: the sweep sees its new version.
    folder = (r.root / key("a.md")).parent
    times = folder.stat()
    (r.root / key("a.md")).write_bytes(b"# Receipt\nTotal 3.00 EUR")
    os.utime(folder, ns=(times.st_atime_ns, times.st_mtime_ns))
    with psycopg.connect(r.q.url) as conn:
        assert list_bucket(fs, root, restores.folder_times(conn), sweep=0, settle=0).objects == []
    r.tick(second.cursor)
    assert [s for k, s, _, _ in r.objects() if k == key("a.md")] == ["ingested", "ingested"]


def test_a_name_that_is_not_utf8_and_a_folder_that_cannot_be_read_fail_alone(r: Restores, monkeypatch) -> None:
    """Both ended the whole tick (the database refused the key; scandir raised): every other file waited."""
    good = r.put(key("good.pdf"), make_pdf(INVOICE))
    folder = os.fsencode((r.root / good).parent)
    with open(folder + b"/2026-11-23T10-00-00Z__caf\xe9.pdf", "wb") as f:  # Latin-1, as an old backup names it
        f.write(make_pdf(INVOICE))
    locked = r.root / "org" / "locked"
    (locked / "inside").mkdir(parents=True)
    (locked / "inside" / "x.pdf").write_bytes(b"%PDF-")
    scandir = os.scandir

    def refusing(path):  # root reads any folder, so the refusal is made at the OS boundary
        if os.fspath(path).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    r.tick()
    objects = {k.rsplit("__", 1)[-1]: (status, error) for k, status, error, _ in r.objects()}
    assert objects["good.pdf"] == ("ingested", None)
    assert objects["caf\\xe9.pdf"][0] == "rejected" and "is not UTF-8" in objects["caf\\xe9.pdf"][1]
    assert not any("x.pdf" in k for k in objects)  # not lost: listed once it can be read
    monkeypatch.setattr(os, "scandir", scandir)
    r.tick()
    assert [s for k, s, _, _ in r.objects() if k == "org/locked/inside/x.pdf"] == ["rejected"]


def test_bad_keys_and_unreadable_files_are_rejected_and_change_nothing(r: Restores) -> None:
    """On an object store (here fsspec's memory filesystem, which keeps keys verbatim like S3)."""
    import fsspec

    r.bucket = Bucket(url=f"memory://restores-{uuid.uuid4().hex[:8]}")
    fs, root = fsspec.core.url_to_fs(r.bucket.url)
    with psycopg.connect(r.q.url) as conn:
        other_org = conn.execute(
            "INSERT INTO organizations (name, slug) VALUES ('Other', 'other') RETURNING id::text"
        ).fetchone()[0]
    pdf = make_pdf(INVOICE)
    bad = {
        f"org/{ORG}/project/{WORKSPACES['Invoices']}/restores/../../../org/{other_org}/2026-11-23__a.pdf": (
            pdf,
            "'..'",
        ),
        key("stolen.pdf", org=other_org): (pdf, "foreign tenant"),
        f"org/{ORG}/project/{uuid.uuid4()}/restores/2026-11-23T10-00-00Z__a.pdf": (pdf, "unknown project"),
        key("empty.pdf"): (b"", "empty file"),
        key("photo.pdf"): (b"\x89PNG\r\n\x1a\n" + os.urandom(64), "not a PDF"),
        key("broken.pdf"): (pdf[: len(pdf) // 2], "corrupt PDF"),
        key("notes.exe"): (b"MZ", "unsupported file type"),
        key("huge.txt"): (b"Total 1.00 EUR\n" * (MAX_FILE_BYTES // 15 + 1), "file too large: 20.0 MB"),
        key("long.pdf"): (make_pdf(["Page"] * (MAX_PDF_PAGES + 1)), f"too many pages: {MAX_PDF_PAGES + 1}"),
        "etc/passwd": (b"root", "not org/<org>/project/<project>/restores/<ts>__<file>"),
    }
    for k, (data, _) in bad.items():
        fs.pipe(f"{root}/{k}", data)
    good = key("fine.md")
    fs.pipe(f"{root}/{good}", b"# RECEIPT\n**Total: 1.00 EUR**")

    documents_before = r.documents()
    r.tick()
    outcomes = {stored: (status, error) for stored, status, error, _ in r.objects()}
    assert outcomes.pop(good) == ("ingested", None)  # the good file next to them goes through
    assert set(outcomes) == set(bad)
    for k, (_, expected) in bad.items():
        status, error = outcomes[k]
        assert status in ("rejected", "failed") and expected in error, (k, status, error)
    after = r.documents()
    assert len(after) == len(documents_before) + 1 and set(documents_before) <= set(after)
    with psycopg.connect(r.q.url) as conn:
        rejected = conn.execute("SELECT count(*) FROM audit_events WHERE kind = 'backup.rejected'").fetchone()[0]
        queued = conn.execute("SELECT scope, document_ids::text[] FROM reindex_queue").fetchall()
        good_document = conn.execute(
            "SELECT document_id::text FROM restore_objects WHERE stored_key = %s", (good,)
        ).fetchone()[0]
    assert rejected == len(bad) and queued == [("restore", [good_document])]
    r.tick()
    assert len(r.objects()) == len(bad) + 1  # nothing is handled twice


def test_a_pdf_whose_font_maps_glyphs_to_control_characters_is_stored(r: Restores) -> None:
    """Some real invoice fonts map a glyph (here the hyphen) to NUL, which PostgreSQL text cannot hold."""
    pdf = make_pdf(["INVOICE\nInvoice number 76253815-0004\nTotal: 99.00 EUR"], to_unicode={"-": 0})
    assert "\x00" not in parse_pages(pdf, ".pdf")[0] and "76253815 0004" in parse_pages(pdf, ".pdf")[0]
    r.put(key("nul-glyph.pdf"), pdf)
    r.put(key("plain.pdf"), make_pdf(INVOICE))
    r.tick()
    assert [(status, error) for _, status, error, _ in r.objects()] == [("ingested", None), ("ingested", None)]


def test_parsing_pdf_markdown_and_text() -> None:
    assert parse_pages(make_pdf(["Hello\nWorld", "Page two"]), ".pdf") == ["Hello\nWorld", "Page two"]
    assert parse_pages("# Titel\nÄrger\fSeite 2".encode(), ".md") == ["# Titel\nÄrger", "Seite 2"]
    for data, ext, message in (
        (b"", ".pdf", "empty"),
        (b"%PDF-1.4\n1 0 obj", ".pdf", "corrupt PDF"),
        (b"\xff\xfe\x00a", ".txt", "binary content"),
        (b"\xc3\x28", ".txt", "not UTF-8"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_pages(data, ext)


NASTY_TEXT = (
    "# INVOICE\n**Invoice No:** X'); DROP TABLE documents; --\n**From:** Robert\"); MATCH (n) DETACH DELETE n //\n"
    "Line: $param {x} `tick` \\' \\\" })-[:OWNS]->(m) RETURN m; SELECT * FROM users WHERE '1'='1\n"
    "**Total:** 10.00 EUR"
)


def test_text_full_of_sql_and_cypher_metacharacters_is_stored_and_indexed_verbatim(r: Restores) -> None:
    """Parameterised everywhere: the text is data in Postgres, Qdrant and the graph, never a statement."""
    r.put(key("x'); DROP TABLE documents; --.md"), NASTY_TEXT.encode())
    r.tick()
    [(_, status, error, document_id)] = r.objects()
    assert (status, error) == ("ingested", None)
    [run] = r.q.tick()
    assert r.q.execute(run).success
    with psycopg.connect(r.q.url) as conn:
        [(content,)] = conn.execute(
            "SELECT chunk_content FROM chunks WHERE document_id = %s", (document_id,)
        ).fetchall()
        documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    assert content == NASTY_TEXT and documents == 13 and users > 0
    client = QdrantStore(path=os.environ["QDRANT_PATH"]).client()
    [point] = client.scroll(
        collection_name(r.q.collection, "all-MiniLM-L6-v2"),
        scroll_filter=models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
        ),
        with_payload=True,
    )[0]
    assert point.payload["content_sha256"] == hashlib.sha256(NASTY_TEXT.encode()).hexdigest()
    graph = FalkorGraph("127.0.0.1", int(os.environ["FALKORDB_PORT"]), graph=r.q.graph)
    try:
        stored = graph.run("MATCH (c:Chunk {document_id: $d}) RETURN c.text AS text", {"d": document_id})
    finally:
        graph.close()
    assert [row["text"] for row in stored] == [NASTY_TEXT]


def _page_image(pdf: bytes, rotate: int = 0):
    """A page of ``pdf`` as a picture of it: what a scanner or a phone camera hands over."""
    from reindex_pipeline.ingest.ocr import render_pdf_page

    return render_pdf_page(pdf, 0).convert("RGB").rotate(rotate, expand=True, fillcolor="white")


def _fields(url: str, document_id: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT field_name, field_value FROM documents_data WHERE document_id = %s", (document_id,)
        ).fetchall()
    return dict(rows)


def test_a_scan_and_a_photo_are_read_by_ocr_and_indexed_with_their_fields(r: Restores) -> None:
    import io

    scan, photo = io.BytesIO(), io.BytesIO()
    _page_image(make_pdf([INVOICE[0] + "\n" + INVOICE[1]])).save(scan, "PDF", resolution=300)
    _page_image(make_pdf([INVOICE[0] + "\n" + INVOICE[1]]), rotate=1).save(photo, "PNG")
    assert parse_pages(scan.getvalue(), ".pdf") != []  # no text layer: every page through OCR
    r.put(key("scanned-invoice.pdf"), scan.getvalue())
    r.put(key("phone-photo.png"), photo.getvalue())
    r.put(key("broken-photo.jpg"), b"\xff\xd8\xff\xe0" + os.urandom(200))
    r.tick()
    with psycopg.connect(r.q.url) as conn:
        rows = conn.execute(
            "SELECT stored_key, status, error, document_id::text, ocr_pages FROM restore_objects ORDER BY stored_key"
        ).fetchall()
    outcome = {k.rsplit("__", 1)[1]: (status, error, doc, ocr) for k, status, error, doc, ocr in rows}
    status, error, _, _ = outcome.pop("broken-photo.jpg")
    assert status == "failed" and error.startswith("the image: not a readable image")  # one line, that file only
    assert {name: (s, ocr) for name, (s, _, _, ocr) in outcome.items()} == {
        "phone-photo.png": ("ingested", 1),
        "scanned-invoice.pdf": ("ingested", 1),
    }
    [run] = r.q.tick()  # one reindex request for the batch's documents
    assert r.q.execute(run).success
    for name, (_, _, document_id, _) in outcome.items():
        fields = _fields(r.q.url, document_id)
        assert fields.get("invoice_number") == "INV-2026-777" and fields.get("total") == "960.00", (name, fields)


DATA = Path(__file__).with_name("data")


def test_e_invoices_take_their_fields_from_their_xml_and_a_bad_one_fails_alone(r: Restores) -> None:
    """A Factur-X PDF (the XML inside the PDF) and an XRechnung file (the XML alone) restored through the
    bucket: indexed with every field the XML holds, at confidence 1; the visible text is what is chunked."""
    import facturx

    visible = make_pdf(["FACTURE FX-2026-0042\nVerrerie Lumiere SARL\nVerre souffle 3 x 40.00\nTotal TTC 144.00 EUR"])
    factur_x = facturx.generate_from_binary(visible, (DATA / "factur-x-en16931.xml").read_bytes(), check_xsd=False)
    r.put(key("facture-fx-2026-0042.pdf"), factur_x)
    r.put(key("xrechnung-1187.xml"), (DATA / "xrechnung-ubl.xml").read_bytes())
    r.put(key("broken.xml"), b"<Invoice><ID>1</Invoice>")
    r.put(key("not-an-invoice.xml"), b"<?xml version='1.0'?><catalog><book/></catalog>")
    r.tick()
    outcome = {k.rsplit("__", 1)[1]: (status, error, doc) for k, status, error, doc in r.objects()}
    status, error, _ = outcome["broken.xml"]  # one line that says what is wrong, and where
    assert (
        status == "failed"
        and error == "not well-formed XML: Opening and ending tag mismatch: ID line 1 and Invoice, line 1, column 25"
    )
    assert (
        outcome["not-an-invoice.xml"][0] == "failed"
        and "not an e-invoice: the root element is 'catalog'" in outcome["not-an-invoice.xml"][1]
    )
    [run] = r.q.tick()
    assert r.q.execute(run).success
    with psycopg.connect(r.q.url) as conn:

        def stored(name: str) -> dict[str, tuple[str, float]]:
            rows = conn.execute(
                "SELECT field_name, field_value, confidence FROM documents_data WHERE document_id = %s",
                (outcome[name][2],),
            ).fetchall()
            return {f: (v, c) for f, v, c in rows}

        pdf, xml = stored("facture-fx-2026-0042.pdf"), stored("xrechnung-1187.xml")
        items = conn.execute(
            "SELECT field_data FROM documents_data_line_items WHERE document_id = %s",
            (outcome["xrechnung-1187.xml"][2],),
        ).fetchall()
        [chunk] = conn.execute(
            "SELECT chunk_content FROM chunks WHERE document_id = %s", (outcome["xrechnung-1187.xml"][2],)
        ).fetchall()
    assert {f: v for f, (v, _) in pdf.items() if f != "language"} == {
        "document_type": "invoice",
        "invoice_number": "FX-2026-0042",
        "invoice_date": "2026-11-15",
        "due_date": "2026-12-15",
        "currency": "EUR",
        "vendor_name": "Verrerie Lumière SARL",  # the XML's spelling, not the page's "Lumiere"
        "customer_name": "Coho Winery",
        "subtotal": "120.00",
        "tax": "24.00",
        "total": "144.00",
    }
    assert all(c == 1.0 for f, (_, c) in pdf.items() if f != "language")
    assert (xml["vendor_name"][0], xml["total"][0], xml["invoice_number"][0]) == (
        "Holzbau Brandt GmbH",
        "595.00",
        "RE-2026-1187",
    )
    assert [i[0]["description"] for i in items] == ["Zimmererarbeiten Dachstuhl"]
    assert "Holzbau Brandt GmbH" in chunk[0] and "595.00 EUR" in chunk[0]  # a readable page, searchable


def test_files_a_killed_ingest_run_stored_but_never_queued_are_queued_once_it_ended(r: Restores) -> None:
    r.put(key("a.md"), b"# Receipt\nTotal 1.00 EUR")
    r.put(key("b.md", workspace="Receipts"), b"# Receipt\nTotal 2.00 EUR")
    r.tick()
    with psycopg.connect(r.q.url) as conn:
        # as if the run was killed after storing the files and before queueing their reindex
        conn.execute("DELETE FROM reindex_queue")
        conn.execute("UPDATE restore_objects SET request_id = NULL")
        [run_id] = {row[0] for row in conn.execute("SELECT run_id FROM restore_objects")}
    assert r.q.instance.get_run_by_id(run_id).is_finished
    r.tick()
    with psycopg.connect(r.q.url) as conn:
        queued = conn.execute("SELECT project_id::text, document_ids::text[] FROM reindex_queue").fetchall()
        objects = dict(conn.execute("SELECT document_id::text, request_id IS NOT NULL FROM restore_objects"))
    assert sorted(p for p, _ in queued) == sorted([WORKSPACES["Invoices"], WORKSPACES["Receipts"]])
    assert sorted(d for _, docs in queued for d in docs) == sorted(objects) and all(objects.values())
    r.tick()
    with psycopg.connect(r.q.url) as conn:
        assert conn.execute("SELECT count(*) FROM reindex_queue").fetchone()[0] == 2  # once


def test_a_file_still_being_written_is_recorded_once_it_is_left_alone(r: Restores) -> None:
    r.bucket = Bucket(url=r.root.as_uri(), settle_seconds=60)
    path = r.root / r.put(key("slow.md"), b"# Receipt\nTotal 1.")  # a copy in place, half done
    first = r.tick()
    assert r.objects() == [] and first.skip_reason.skip_message == "no new restored files"
    path.write_bytes(b"# Receipt\nTotal 1.00 EUR")
    old = path.stat().st_mtime - 120  # the copy ended two minutes ago
    os.utime(path, (old, old))
    r.tick(first.cursor)
    assert [(k, s) for k, s, _, _ in r.objects()] == [(key("slow.md"), "ingested")]  # its whole version, once
