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
    q.follow()
    code, out = cli("status", request_id, "--interval", "0.1")
    expected = len(
        {
            d
            for d in _eligible(q.url, owner=USERS["bob"])
            if d in run.run_config["ops"]["reindex_documents"]["config"]["document_ids"]
        }
    )
    assert code == 0 and f"Request {request_id}: done; {expected} completed, 0 failed" in out

    code, out = cli("history")
    assert code == 0 and request_id[:8] in out and "done" in out


def test_preview_prints_the_admin_and_the_user_wording(q: Queue) -> None:
    code, admin = cli("preview", "--as", "admin", "--workspace", "Invoices")
    assert code == 0 and re.search(r"for ALL \d+ documents in this workspace", admin)
    code, user = cli("preview", "--as", "carol", "--all")
    assert code == 0 and re.search(r"for \d+ documents that you own across all workspaces", user)
    assert "not_owner" in user and "not_converted" in user


def test_errors_are_one_clear_line(q: Queue) -> None:
    code, out = cli("request", "--as", "nobody", "--all")
    assert code == 1 and out == "error: no user 'nobody' (give a username or a user id)"
    code, out = cli("request", "--as", "bob")
    assert code == 1 and "choose exactly one of" in out
    code, out = cli("preview", "--as", "erin", "--all")
    assert code == 1 and "erin is inactive" in out
    code, out = cli("requeue", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and "is not failed or refused" in out
