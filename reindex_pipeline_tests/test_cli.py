"""The CLI for people, through the database and the queue (the same path the app uses)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from reindex_pipeline.cli import app
from reindex_pipeline_tests.test_queue import USERS, Queue, _eligible

runner = CliRunner()


@pytest.fixture()
def q(app_db: str, monkeypatch) -> Queue:
    from reindex_pipeline.demo.loader import load_demo_corpus

    load_demo_corpus(app_db, 60, 7)
    monkeypatch.setenv("DATABASE_URL", app_db)
    return Queue(app_db)


def cli(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, " ".join(result.output.split())


def test_request_then_status_shows_completion(q: Queue) -> None:
    code, out = cli("request", "--as", "bob", "--workspace", "Invoices")
    assert code == 0, out
    request_id = re.search(r"Queued request ([0-9a-f-]{36})", out).group(1)
    code, out = cli("status", request_id, "--no-follow")
    assert code == 0 and "running" not in out and "pending" in out

    [run] = q.tick()
    assert q.execute(run).success
    expected = len(
        {
            d
            for d in _eligible(q.url, owner=USERS["bob"])
            if d in run.run_config["ops"]["reindex_documents"]["config"]["document_ids"]
        }
    )
    # the queue has not decided yet: status reads what the run reported batch by batch
    code, out = cli("status", request_id, "--no-follow")
    assert code == 0 and f"Request {request_id}: running; {expected} completed, 0 failed" in out
    assert re.search(r"eligible, \d+ skipped \(.*\d+ not owner\)", out), out
    q.follow()
    code, out = cli("status", request_id, "--interval", "0.1")
    assert code == 0 and f"Request {request_id}: done; {expected} completed, 0 failed" in out

    code, out = cli("history")
    assert code == 0 and request_id[:8] in out and "done" in out


def test_preview_prints_the_admin_and_the_user_wording(q: Queue) -> None:
    code, admin = cli("preview", "--as", "admin", "--workspace", "Invoices")
    assert code == 0 and re.search(r"for ALL \d+ documents in this workspace", admin)
    code, user = cli("preview", "--as", "carol", "--all")
    assert code == 0 and re.search(r"for \d+ documents that you own across all workspaces", user)
    assert "not_owner" in user and "not_converted" in user


def test_preview_counts_the_skipped_by_reason_and_lists_them_all_only_when_asked(q: Queue, tmp_path) -> None:
    code, out = cli("preview", "--as", "carol", "--all", "--show", "1")
    counts = dict(re.findall(r"(\w+): ([\d,]+)[,)]", out.split(" eligible, ")[1]))
    skipped = int(re.search(r"([\d,]+) skipped", out).group(1).replace(",", ""))
    assert code == 0 and counts["not_owner"] and sum(int(v.replace(",", "")) for v in counts.values()) == skipped
    more = int(counts["not_owner"]) - 1
    assert f"… and {more:,} more" in out and "List them all with --full" in out
    code, out = cli("preview", "--as", "carol", "--all", "--csv", str(tmp_path / "skipped.csv"))
    rows = (tmp_path / "skipped.csv").read_text().splitlines()
    assert code == 0 and rows[0] == "document_id,filename,reason" and len(rows) == 1 + skipped
    assert sum(row.endswith(",not_owner") for row in rows) == int(counts["not_owner"])
    code, out = cli("preview", "--as", "carol", "--all", "--full")
    assert code == 0 and out.count(" not_owner ") == int(counts["not_owner"]) and "more" not in out


def test_preview_estimates_the_model_calls_and_tokens_of_the_api_path(q: Queue, monkeypatch) -> None:
    code, offline = cli("preview", "--as", "admin", "--all")
    assert code == 0 and "Model calls" not in offline
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code, out = cli("preview", "--as", "admin", "--all")
    eligible = int(re.search(r"(\d+) eligible", out).group(1))
    found = re.search(r"Model calls \(estimated\): ([\d,]+) to gpt-4o-mini \(~([\d,]+) tokens in", out)
    assert code == 0 and found, out
    assert int(found.group(1).replace(",", "")) == eligible  # one structured output per document
    assert int(found.group(2).replace(",", "")) > eligible * 100  # the prompt and schema, then the pages
    assert "to text-embedding-3-small" in out


def test_errors_are_one_clear_line(q: Queue) -> None:
    code, out = cli("request", "--as", "nobody", "--all")
    assert code == 1 and out == "error: no user 'nobody' (give a username or a user id)"
    code, out = cli("request", "--as", "bob")
    assert code == 1 and "choose exactly one of" in out
    code, out = cli("preview", "--as", "erin", "--all")
    assert code == 1 and "erin is inactive" in out
    code, out = cli("requeue", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and "is not failed or refused" in out


def _one_line_error(*args: str) -> tuple[int, str]:
    """Run a verb; it must end with an exit code, not an exception, and say one line."""
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and "Traceback" not in result.output, (args, result.output)
    return result.exit_code, lines[0]


def test_every_verb_refuses_bad_input_with_one_line_and_a_non_zero_exit(q: Queue) -> None:
    bad_uuid, unknown = "not-a-uuid", "00000000-0000-0000-0000-000000000000"
    cases = {
        ("request", "--as", "bob", "--document", bad_uuid): "'not-a-uuid' is not a document id",
        ("request", "--as", "bob", "--document", unknown): f"no document {unknown}",
        ("request", "--as", "bob", "--workspace", "Nowhere"): "no workspace 'Nowhere'",
        ("request", "--as", "bob", "--all", "--phase", "ocr"): "unknown phase 'ocr'",
        ("preview", "--as", "bob", "--document", bad_uuid): "is not a document id",
        ("status", bad_uuid): "'not-a-uuid' is not a request id (a UUID)",
        ("status", unknown): f"no request {unknown}",
        ("requeue", bad_uuid): "'not-a-uuid' is not a request id (a UUID)",
        ("requeue", unknown): f"request {unknown} is not failed or refused (or does not exist)",
        ("check", bad_uuid): "is not a document id",
        ("check", unknown): f"no document {unknown}",
        ("repair", "--as", "admin", bad_uuid): "is not a document id",
        ("history", "--limit", "many"): "Invalid value for '--limit'",
        ("no-such-verb",): "No such command",
        ("demo-load", "--documents", "-5"): "",
    }
    for args, expected in cases.items():
        _, line = _one_line_error(*args)
        assert expected in line, (args, line)


def test_request_refuses_at_once_what_the_queue_would_refuse(q: Queue) -> None:
    import psycopg

    code, line = _one_line_error("request", "--as", "dave", "--all")
    assert code == 1 and line == "error: request refused: requester dave is suspended, not active"
    code, out = cli("request", "--as", "bob", "--workspace", "Invoices")
    assert code == 0, out
    code, line = _one_line_error("request", "--as", "bob", "--workspace", "Invoices")
    assert line == "error: request refused: rate_limited: at most 1 reindex request per user per minute"
    with psycopg.connect(q.url) as conn:
        queued = conn.execute("SELECT count(*) FROM reindex_queue").fetchone()[0]
        refused = conn.execute(
            "SELECT details->>'requester', details->>'reason' FROM audit_events WHERE kind = 'reindex.refused' "
            "ORDER BY id"
        ).fetchall()
    assert queued == 1  # only the accepted one
    assert [r[0] for r in refused] == ["dave", "bob"] and refused[1][1].startswith("rate_limited")


def test_status_of_a_refused_request_exits_2_without_an_error_line(q: Queue) -> None:
    request_id = q.request(requested_by=USERS["dave"], scope="all")
    assert q.tick() == []  # the sensor refuses it
    result = runner.invoke(app, ["status", request_id, "--no-follow"])
    assert result.exit_code == 2 and "refused" in result.output
    assert "why: requester dave is suspended, not active" in result.output
    assert not any(line.startswith("error:") for line in result.output.splitlines())


def test_audit_scans_every_store_from_the_cli(q: Queue) -> None:
    """The org-wide audit through the CLI's own (autocommit) connection: it reads the documents with a
    server-side cursor, which needs a transaction (it once failed with 'DECLARE CURSOR can only be used in
    transaction blocks')."""
    code, out = cli("audit")
    assert code in (0, 1) and "error" not in out, out
    assert re.search(r"\d+ documents in Postgres; \d+ points in \S+; \d+ graph chunks", out), out


def test_preview_counted_in_the_database_decides_as_the_stream_of_every_document(q: Queue) -> None:
    """The grouped count (what ``preview`` runs) and the document-by-document selection agree for every kind of
    requester and scope; each example is a document the stream skips for that reason; a claim left by a dead
    run counts as the stream counts it."""
    import psycopg

    from reindex_pipeline.db import documents as db
    from reindex_pipeline.demo.corpus import build_workspaces
    from reindex_pipeline.domain.selection import Requester, summarise_groups, summarise_selection

    with psycopg.connect(q.url) as conn:
        conn.execute(
            "UPDATE documents SET index_status = 'indexing', indexing_details = '{\"run_id\": \"gone\"}', "
            "updated_at = now() - interval '1 day' WHERE id = (SELECT id FROM documents "
            "WHERE index_status = 'indexed' AND deleted_at IS NULL ORDER BY id LIMIT 1)"
        )
        conn.commit()
        workspace = str(build_workspaces(7)[0].id)
        for name in ("admin", "bob", "carol"):
            who = db.load_requester(conn, USERS[name])
            operator = Requester(who.id, who.role, who.status, who.username, org_id=None)
            for requester in (who, operator):
                for ws in (None, workspace):
                    skipped = []
                    stream = summarise_selection(
                        requester,
                        db.iter_documents(conn, ws, org_id=requester.org_id),
                        ws,
                        on_skipped=skipped.append,
                    )
                    groups = db.document_groups(conn, requester.id, ws, org_id=requester.org_id, keep=2)
                    counted = summarise_groups(requester, groups, ws, keep=2)
                    assert (counted.eligible, counted.skipped_by_reason) == (
                        stream.eligible,
                        stream.skipped_by_reason,
                    )
                    assert counted.confirmation() == stream.confirmation()
                    assert sum(g.count for g in groups) == stream.eligible + stream.skipped
                    for reason, count in counted.skipped_by_reason.items():
                        examples = counted.examples[reason]
                        assert len(examples) == min(2, count) and set(examples) <= set(skipped)


def test_the_stack_status_shows_no_address_for_a_process_without_one() -> None:
    from reindex_pipeline.cli import _address

    assert _address({"pid": 7}) == "-"  # the daemon: was "127.0.0.1:None"
    assert _address({"pid": 7, "port": 5432}) == "127.0.0.1:5432"
    assert _address({"url": "http://127.0.0.1:3000", "port": 3000}) == "http://127.0.0.1:3000"


def test_a_workspace_request_behind_a_queued_global_one_is_refused_at_once(q: Queue) -> None:
    """Was: "Queued …", exit 0, then refused by the sensor a second later (the pending global request did not
    count until it ran). The sensor's own decision agrees."""
    code, out = cli("request", "--as", "admin", "--all")
    assert code == 0, out
    global_id = re.search(r"Queued request ([0-9a-f-]{36})", out).group(1)
    code, line = _one_line_error("request", "--as", "bob", "--workspace", "Invoices")
    assert line == f"error: request refused: busy: a global reindex is queued (request {global_id})"
    runs = q.tick()
    assert runs and q.row(global_id)["status"] == "running"
    code, line = _one_line_error("request", "--as", "bob", "--workspace", "Invoices")
    assert line == f"error: request refused: busy: a global reindex is running (request {global_id})"


def test_status_of_a_stale_only_request_says_how_many_were_unchanged(q: Queue) -> None:
    """Was "N completed" for documents the stale-only request found nothing stale in."""
    import psycopg

    from reindex_pipeline.demo.corpus import build_workspaces

    workspace = str(build_workspaces(7)[0].id)
    first = q.request(requested_by=USERS["admin"], scope="workspace", workspace_id=workspace)
    assert all(q.execute(r).success for r in q.tick())
    q.follow()
    code, out = cli("status", first, "--no-follow")
    assert code == 0 and "unchanged" not in out and q.row(first)["status"] == "done"
    again = q.request(requested_by=USERS["admin"], scope="workspace", workspace_id=workspace, stale_only=True)
    with psycopg.connect(q.url) as conn:  # the first request is older than the one-a-minute limit
        conn.execute("UPDATE reindex_queue SET created_at = now() - interval '2 minutes' WHERE id = %s", (first,))
    assert all(q.execute(r).success for r in q.tick())
    q.follow()
    row = q.row(again)
    assert row["status"] == "done" and row["counts"]["unchanged"] == row["counts"]["completed"] > 0
    code, out = cli("status", again, "--no-follow")
    done = row["counts"]["completed"]
    assert code == 0 and f"{done} completed ({done} of them unchanged: nothing stale)" in out


def test_restores_lists_each_restored_file_with_its_outcome_and_why(q: Queue, tmp_path) -> None:
    from reindex_pipeline_tests.test_restores import INVOICE, Restores, key, make_pdf

    r = Restores(q, tmp_path / "bucket")
    r.put(key("good.pdf"), make_pdf(INVOICE))
    r.put(key("broken.pdf"), make_pdf(INVOICE)[:200])
    r.put(key("x.pdf").replace("2026-11-23T10-00-00Z", "nots"), make_pdf(INVOICE))
    r.tick()
    code, out = cli("restores")
    assert code == 0 and "ingested good.pdf" in out and "failed broken.pdf" in out and "corrupt PDF" in out
    assert "rejected x.pdf" in out and "<ts> is not a timestamp" in out
    code, out = cli("restores", "--status", "failed")
    assert code == 0 and "broken.pdf" in out and "good.pdf" not in out
    code, out = cli("restores", "--status", "lost")
    assert code == 1 and "unknown status 'lost'" in out


def test_status_of_restores_that_shared_runs_shows_each_its_own_and_the_runs_together(q: Queue) -> None:
    from reindex_pipeline_tests.test_queue import WORKSPACES

    docs = sorted(_eligible(q.url, workspace=WORKSPACES["Invoices"]))[:3]
    first = q.request(requested_by=None, scope="restore", document_ids=docs[:1], source="restore")
    second = q.request(requested_by=None, scope="restore", document_ids=docs[1:], source="restore")
    [run] = q.tick()
    assert q.execute(run).success
    code, out = cli("status", second, "--no-follow")  # the runs' progress, tagged with the first request
    assert code == 0 and f"Request {second}: running; 3 completed, 0 failed, 3 eligible" in out, out
    assert f"runs shared with other restore requests (request {first}'s)" in out
    q.follow()
    code, out = cli("status", second, "--no-follow")
    assert code == 0 and f"Request {second}: done; 2 completed, 0 failed, 2 eligible" in out, out
    assert "together 3 completed (0 unchanged), 0 failed" in out
    code, out = cli("status", first, "--no-follow")
    assert code == 0 and "done; 1 completed" in out and "(its own)" in out
