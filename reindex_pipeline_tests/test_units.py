"""Pure functions: settings, chunking, graph keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reindex_pipeline.graph.keys import entity_key, normalise_name
from reindex_pipeline.ingest.chunking import split_pages
from reindex_pipeline.resources import ReindexPolicy
from reindex_pipeline.settings import ENV_VARS, Settings


def test_settings_default_to_embedded_services(tmp_path: Path) -> None:
    s = Settings.from_env({}, cwd=tmp_path)
    assert s.state_dir == (tmp_path / ".reindex-state").resolve()
    assert (s.database_url, s.qdrant_url, s.neo4j_uri, s.bucket_url) == (None, None, None, None)
    assert s.effective_bucket_url == (s.state_dir / "bucket").as_uri()
    assert (s.max_attempts, s.max_documents_per_run, s.parallel_runs, s.run_silence_seconds, s.dagster_port) == (
        4,
        2500,
        4,
        60,
        3000,
    )
    assert (s.neo4j_user, s.neo4j_database, s.openai_model, s.full_reindex_cron, s.falkordb_host) == (
        "neo4j",
        "neo4j",
        "gpt-4o-mini",
        "0 3 * * 0",
        "127.0.0.1",
    )
    # The policy resource's own defaults (used when a run's config leaves them out) are the same.
    policy = ReindexPolicy()
    assert (policy.max_documents_per_run, policy.max_attempts, policy.run_silence_seconds) == (2500, 4, 60)


def test_settings_take_external_services_and_reject_bad_numbers(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://h/db",
            "QDRANT_URL": "http://q:6333",
            "NEO4J_URI": "bolt://n:7687",
            "BUCKET_URL": "s3://b/p",
            "REINDEX_MAX_ATTEMPTS": "6",
            "REINDEX_STATE_DIR": str(tmp_path),
        }
    )
    assert (s.database_url, s.qdrant_url, s.neo4j_uri, s.effective_bucket_url, s.max_attempts) == (
        "postgresql://h/db",
        "http://q:6333",
        "bolt://n:7687",
        "s3://b/p",
        6,
    )
    with pytest.raises(ValueError, match="REINDEX_MAX_ATTEMPTS must be a whole number"):
        Settings.from_env({"REINDEX_MAX_ATTEMPTS": "four"})
    with pytest.raises(ValueError, match="at least 1"):
        Settings.from_env({"REINDEX_MAX_ATTEMPTS": "0"})


def test_readme_documents_every_variable() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [name for name in ENV_VARS if f"`{name}`" not in readme]
    assert missing == []
    # The table's default column says what the code does (it may say more).
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| .* \| (.*) \|$", readme, re.MULTILINE))
    wrong = {
        name: (rows[name], default)
        for name, (_, default) in ENV_VARS.items()
        if not rows[name].replace("`", "").startswith(default.replace("`", ""))
    }
    assert wrong == {}


def test_chunks_respect_size_pages_and_spans() -> None:
    pages = ["# Title\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(30)), "short page"]
    chunks = split_pages(pages, max_chars=300)
    assert all(len(c.content) <= 300 for c in chunks)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].content == "short page" and chunks[-1].page_number == 2
    for c in chunks:
        page = pages[c.page_number - 1]
        assert page[c.metadata["char_start"] : c.metadata["char_end"]].strip() == c.content
    assert chunks[0].metadata["section"] == "Title"


def test_a_line_longer_than_a_chunk_is_cut() -> None:
    chunks = split_pages(["y" * 1000], max_chars=400)
    assert [len(c.content) for c in chunks] == [400, 400, 200]
    assert split_pages([""]) == []


def test_entity_keys_are_normalised() -> None:
    assert entity_key("Vendor", "  ACME\t Corp  ") == "vendor:acme corp"
    assert normalise_name("Ünïcode  Straße ") == "ünïcode strasse"
    with pytest.raises(ValueError, match="non-blank name"):
        entity_key("vendor", " \n ")


def test_restore_keys_are_validated_strictly() -> None:
    import uuid as _uuid

    from reindex_pipeline.ingest.restore_keys import InvalidRestoreKey, parse_restore_key

    org, ws = _uuid.uuid4(), _uuid.uuid4()
    good = parse_restore_key(f"org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__Invoice 7.PDF")
    assert (good.org_id, good.project_id, good.filename, good.mime_type) == (
        str(org),
        str(ws),
        "Invoice 7.PDF",
        "application/pdf",
    )
    odd = parse_restore_key(f"org/{org}/project/{ws}/restores/t__Rechnung \"Müller\" 'Ø' 50% — 請求書.md")
    assert odd.filename == "Rechnung \"Müller\" 'Ø' 50% — 請求書.md"  # quotes, unicode and '%' kept verbatim
    for key, why in [
        (f"/org/{org}/project/{ws}/restores/t__a.pdf", "absolute path"),
        (f"org/{org}/project/{ws}/restores/../t__a.pdf", "'..'"),
        (f"org/{org}/project/{ws}//restores/t__a.pdf", "empty path segment"),
        (f"org/{org}/project/{ws}/restores/t__a\\b.pdf", "backslash"),
        (f"org/{org}/project/{ws}/restores/t__a\nb.pdf", "control character"),
        (f"org/acme/project/{ws}/restores/t__a.pdf", "org id is not a UUID"),
        (f"org/{org}/project/{ws}/uploads/t__a.pdf", "not org/"),
        (f"org/{org}/project/{ws}/restores/a.pdf", "not <ts>__<file>"),
        (f"org/{org}/project/{ws}/restores/t__a.docx", "unsupported file type"),
        (f"org/{org}/project/{ws}/restores/%2e%2e/t__a.pdf", "percent-encoded"),
        (f"org/{org}/project/{ws}/restores/t__..%2F..%2Fpasswd.pdf", "percent-encoded"),
        (f"org/{org}/project/{ws}/restores/t__a\x7fb.pdf", "control character"),
        ("", "empty key"),
    ]:
        with pytest.raises(InvalidRestoreKey, match=why):
            parse_restore_key(key)


def test_read_ahead_keeps_order_passes_errors_and_stops_when_closed() -> None:
    import threading

    from reindex_pipeline.reindex.read_ahead import read_ahead

    assert list(read_ahead(iter(range(200)), depth=4)) == list(range(200))

    def failing():
        yield 1
        raise RuntimeError("store down")

    got = []
    with pytest.raises(RuntimeError, match="store down"):
        for item in read_ahead(failing()):
            got.append(item)
    assert got == [1]

    produced = []
    finished = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            finished.set()

    reader = read_ahead(endless(), depth=2)
    assert next(reader) == 0
    reader.close()  # a cancelled run: the producer stops within a few items and its generator is closed
    assert finished.wait(5) and len(produced) <= 6
