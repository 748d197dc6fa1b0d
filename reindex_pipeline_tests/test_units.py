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
    for ts in ("2026-11-23", "20261123T100000Z", "2026-11-23T10:00:00.123+01:00", "1700000000", "1700000000123"):
        assert parse_restore_key(f"org/{org}/project/{ws}/restores/{ts}__a.pdf").timestamp == ts
    odd = parse_restore_key(
        f"org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__Rechnung \"Müller\" 'Ø' 50% — 請求書.md"
    )
    assert odd.filename == "Rechnung \"Müller\" 'Ø' 50% — 請求書.md"  # quotes, unicode and '%' kept verbatim
    for key, why in [
        (f"/org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__a.pdf", "absolute path"),
        (f"org/{org}/project/{ws}/restores/../t__a.pdf", "'..'"),
        (f"org/{org}/project/{ws}//restores/2026-11-23T10-00-00Z__a.pdf", "empty path segment"),
        (f"org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__a\\b.pdf", "backslash"),
        (f"org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__a\nb.pdf", "control character"),
        (f"org/acme/project/{ws}/restores/2026-11-23T10-00-00Z__a.pdf", "org id is not a UUID"),
        (f"org/{org}/project/{ws}/uploads/t__a.pdf", "not org/"),
        (f"org/{org}/project/{ws}/restores/a.pdf", "not <ts>__<file>"),
        (f"org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__a.docx", "unsupported file type"),
        (f"org/{org}/project/{ws}/restores/%2e%2e/t__a.pdf", "percent-encoded"),
        (f"org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__..%2F..%2Fpasswd.pdf", "percent-encoded"),
        (f"org/{org}/project/{ws}/restores/2026-11-23T10-00-00Z__a\x7fb.pdf", "control character"),
        (f"org/{org}/project/{ws}/restores/nots__oyo.pdf", "<ts> is not a timestamp"),
        (f"org/{org}/project/{ws}/restores/2026-02-30T10-00-00Z__a.pdf", "<ts> is not a valid date"),
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


# -- rate-limit pacing and retry delays (llm.pacing) ---------------------------------------------------------
def test_api_durations_and_retry_after_headers() -> None:
    from reindex_pipeline.llm.pacing import parse_duration, retry_after

    assert parse_duration("6m0s") == 360.0 and parse_duration("1.5s") == 1.5 and parse_duration("20ms") == 0.02
    assert parse_duration("1h2m3s") == 3723.0 and parse_duration("2") == 2.0
    assert parse_duration("soon") is None and parse_duration(None) is None
    assert retry_after({"Retry-After-Ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "3"}) == 3.0 and retry_after({}) is None


def test_retry_delays_back_off_with_jitter_and_honour_what_the_api_asks() -> None:
    from reindex_pipeline.llm.pacing import RETRY_CAP_S, retry_delay

    assert [retry_delay(n, rand=lambda: 0.0) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert [retry_delay(n, rand=lambda: 0.999) for n in (1, 2)] == pytest.approx([0.5, 1.0], abs=1e-3)
    assert retry_delay(20, rand=lambda: 0.999) <= RETRY_CAP_S
    assert retry_delay(1, asked=4.0, rand=lambda: 0.0) == 4.25  # at least the wait asked for


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_limiter_waits_for_the_refill_the_headers_announce() -> None:
    from reindex_pipeline.llm.pacing import SPARE, RateLimiter

    assert SPARE == 0.02  # the figures below keep 2 % of each limit back: 1.2 requests, 120 tokens
    clock = _Clock()
    limiter = RateLimiter(clock, clock.sleep)
    first = limiter.admit(tokens=500)  # limits unknown: nothing waits
    assert clock.slept == []
    # 60 requests / 6,000 tokens a minute = 1 request / 100 tokens a second; 3 requests and 1,200 tokens left
    limiter.observe(
        first,
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-limit-tokens": "6000",
            "x-ratelimit-remaining-tokens": "1200",
        },
    )
    limiter.admit(tokens=500)  # fits: 2 requests and 700 tokens left
    assert clock.slept == []
    limiter.admit(tokens=500)  # 2 requests left, 2.2 needed: the requests bind for 0.2 s
    limiter.admit(tokens=500)  # 220 tokens left, 620 needed: the tokens bind (4 s) over the requests (1 s)
    assert clock.slept == [pytest.approx(0.2), pytest.approx(4.0)]


def test_the_limiter_subtracts_what_was_sent_after_the_answered_request() -> None:
    from reindex_pipeline.llm.pacing import RateLimiter

    clock = _Clock()
    limiter = RateLimiter(clock, clock.sleep)
    tickets = [limiter.admit(tokens=1) for _ in range(3)]  # three in flight before any answer
    # the first one's answer: 5 requests were left of 60 when it was admitted; two were sent after it, so 3
    limiter.observe(tickets[0], {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "5"})
    limiter.admit(tokens=1)
    assert clock.slept == []
    limiter.admit(tokens=1)  # 2 left, 2.2 needed (1.2 kept back): 0.2 s of refill
    assert clock.slept == [pytest.approx(0.2)]


def test_a_429_pauses_every_caller() -> None:
    from reindex_pipeline.llm.pacing import RateLimiter

    clock = _Clock()
    limiter = RateLimiter(clock, clock.sleep)
    limiter.pause(2.5)
    limiter.admit(tokens=1)
    assert clock.slept == [pytest.approx(2.5)]


def test_line_items_keep_unique_numbers_or_are_numbered_by_their_order() -> None:
    from reindex_pipeline.domain.extraction import Extraction, LineItem

    given = Extraction(line_items=[LineItem(line=2, description="a"), LineItem(line=5, description="b")])
    assert [i.line for i in given.numbered_items()] == [2, 5]
    model = Extraction(line_items=[LineItem(line=1, description="a"), LineItem(line=1, description="b")])
    assert [(i.line, i.description) for i in model.numbered_items()] == [(1, "a"), (2, "b")]
    assert [i.line for i in Extraction(line_items=[LineItem(line=0, description="a")]).numbered_items()] == [1]


def test_model_usage_adds_up_and_reads_in_one_line() -> None:
    from reindex_pipeline.cli import _tokens
    from reindex_pipeline.llm.calls import Usage

    total = Usage()
    total.add(Usage(calls=2, retries=1, rate_limited=1, tokens_in=1500, tokens_out=300))
    total.add(Usage(calls=1, tokens_in=700, tokens_out=50))
    assert total.as_dict() == {"calls": 3, "retries": 1, "rate_limited": 1, "tokens_in": 2200, "tokens_out": 350}
    assert total.summary() == "3 calls (1 retried, 1 rate-limited), 2,200 tokens in, 350 out"
    assert _tokens(total.as_dict()) == "2.2k/350" and _tokens(None) == ""


def test_a_phase_result_shows_its_own_fields_and_time_not_how_its_pass_is_found() -> None:
    from reindex_pipeline.reindex.phases import VectorsResult
    from reindex_pipeline.vectors import VectorPass

    result = VectorsResult(points=3, model="m", collection="c", slot=1, vector_pass=VectorPass("d", "p", 1))
    result.calls, result.duration_s = {"model_calls": 1}, 0.12345
    assert result.metadata() == {
        "points": 3,
        "model": "m",
        "collection": "c",
        "slot": 1,
        "model_calls": 1,
        "duration_s": 0.1235,
    }


def test_stores_refuse_a_phase_whose_store_is_missing() -> None:
    from reindex_pipeline.reindex.extractors import Extractor
    from reindex_pipeline.reindex.runner import Stores

    stores = Stores(connect=lambda **_: None, extractor=Extractor())
    assert [p.name for p in stores.phases(["extraction"])] == ["extraction"]
    with pytest.raises(ValueError, match="vector index"):
        stores.phases(["extraction", "vector_indexing"])


def test_an_audit_event_keeps_its_envelope_out_of_its_details_and_names_its_kind() -> None:
    from reindex_pipeline.domain.audit import Refused, RequestFinished

    refused = Refused(org_id="o", workspace_id="w", actor_id="a", reason="busy", scope="workspace")
    assert refused.kind == "reindex.refused"
    assert refused.details() == {"reason": "busy", "scope": "workspace"}  # None fields left out
    done = RequestFinished(org_id="o", request_id="r", completed=3)
    assert done.kind == "reindex.completed"
    assert RequestFinished(org_id="o", request_id="r", error="gone", attempts=5).kind == "reindex.failed"
    assert done.details() == {"request_id": "r", "completed": 3, "unchanged": 0, "failed": 0, "errors": []}


def test_the_operator_acts_across_organisations_everyone_else_within_their_own() -> None:
    from reindex_pipeline.domain.selection import Requester, acting_as

    admin = Requester(id="u1", role="admin", status="active", org_id="o1", username="admin")
    operator = Requester(id="u1", role="admin", status="active", org_id=None, username="admin")
    assert acting_as(admin, "u1") == (operator, "operator")
    assert acting_as(admin, "u2") == (admin, "run_config")
    assert acting_as(admin, None) == (admin, "run_config")
