"""The embedded stack: starts, answers, stops, survives a SIGKILLed launcher, reuses its data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from qdrant_client import QdrantClient, models

from reindex_pipeline.graph.store import FalkorGraph
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack import postgres as pg
from reindex_pipeline.stack.processes import as_user, free_port, terminate_group
from reindex_pipeline.stack.supervisor import AlreadyRunning, Stack, read_status, stop_running
from reindex_pipeline_tests.conftest import pids_alive, project_root


def _settings(state_dir: Path, **extra: str) -> Settings:
    return Settings.from_env({"REINDEX_STATE_DIR": str(state_dir), **extra})


def _pids(state) -> list[int]:
    return [s["pid"] for s in state.services.values() if "pid" in s]


def test_stack_starts_answers_and_stops_leaving_no_process(tmp_path: Path) -> None:
    stack = Stack(_settings(tmp_path / "state"))
    state = stack.start()
    try:
        env = state.environment
        assert set(state.services) == {"postgres", "falkordb", "qdrant"}
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT 1 + 1").fetchone()[0] == 2
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"  # the app's data: durable
        with psycopg.connect(env["DAGSTER_PG_URL"]) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "dagster"
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "off"  # Dagster's events: fast
        graph = FalkorGraph("127.0.0.1", int(env["FALKORDB_PORT"]), graph="smoke")
        assert graph.run("RETURN $x AS x", {"x": 41})[0]["x"] == 41
        graph.close()
        qdrant = QdrantClient(path=env["QDRANT_PATH"])
        qdrant.create_collection("smoke", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
        qdrant.upsert("smoke", [models.PointStruct(id=1, vector=[1.0, 0.0, 0.0], payload={"a": 1})])
        hits = qdrant.query_points("smoke", query=[1.0, 0.0, 0.0], limit=1).points
        assert hits[0].id == 1
        qdrant.close()
        pids = _pids(state)
        assert len(pids) == 2 and pids_alive(pids) == pids
    finally:
        stack.stop()
    assert pids_alive(pids) == []
    assert not (tmp_path / "state" / "stack.json").exists()


def test_second_start_reuses_the_data(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    with Stack(settings) as stack:
        env = stack.state.environment
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        graph = FalkorGraph("127.0.0.1", int(env["FALKORDB_PORT"]))
        graph.run("CREATE (:Kept {v: $v})", {"v": "graph too"})
        graph.close()
    with Stack(settings) as stack:
        env = stack.state.environment
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone()[0] == "still here"
        graph = FalkorGraph("127.0.0.1", int(env["FALKORDB_PORT"]))
        assert graph.run("MATCH (k:Kept) RETURN k.v AS v") == [{"v": "graph too"}]
        graph.close()


def test_a_second_launcher_on_the_same_state_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    with Stack(settings), pytest.raises(AlreadyRunning, match="already running"):
        Stack(settings).start()


def _launch(state_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "REINDEX_STATE_DIR": str(state_dir)}
    for name in ("DATABASE_URL", "DAGSTER_PG_URL", "QDRANT_PATH", "FALKORDB_PORT", "FALKORDB_HOST", "BUCKET_URL"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "reindex_pipeline.cli", "up", "--no-dagster", "--no-demo"],
        env=env,
        cwd=project_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_services(settings: Settings, launcher: subprocess.Popen, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, alive = read_status(settings)
        if state is not None and state.launcher_pid == launcher.pid and alive.get("postgres"):
            return state
        if launcher.poll() is not None:
            raise AssertionError(f"launcher exited early: {launcher.stdout.read()}")
        time.sleep(0.1)
    raise AssertionError("the launcher did not start the stack in time")


def _wait_gone(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while pids_alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids_alive(pids)


def test_sigkilled_launcher_leaves_no_orphan_and_next_start_recovers(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    launcher = _launch(settings.state_dir)
    state = _wait_for_services(settings, launcher)
    pids = _pids(state)
    assert len(pids) == 2

    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=10)
    assert _wait_gone(pids) == [], "a server outlived its SIGKILLed launcher"

    # The dead launcher left stack.json behind: the next start says so and carries on.
    messages: list[str] = []
    with Stack(settings, notify=messages.append) as stack:
        assert any("unclean stop" in m and str(launcher.pid) in m for m in messages)
        with psycopg.connect(stack.state.environment["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_orphaned_postgres_from_a_crash_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    """A server nobody supervises (started detached, as an older launcher would) is found and stopped."""
    settings = _settings(tmp_path / "state")
    with Stack(settings):
        pass
    data_dir = settings.state_dir / "postgres"
    user = pg.PG_OS_USER if os.geteuid() == 0 else None
    subprocess.run(
        [
            str(pg._bin_dir() / "pg_ctl"),
            "-D",
            str(data_dir),
            "-o",
            f"-c listen_addresses=127.0.0.1 -c unix_socket_directories= -p {free_port()}",
            "-l",
            str(data_dir / "orphan.log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
        **as_user(user),
    )
    orphan = pg.EmbeddedPostgres(data_dir, tmp_path / "x.log").running_postmaster()
    assert orphan is not None

    messages: list[str] = []
    with Stack(settings, notify=messages.append) as stack:
        assert any(f"orphaned PostgreSQL server (pid {orphan})" in m for m in messages)
        assert stack.state.services["postgres"]["pid"] != orphan
    assert pids_alive([orphan]) == []


def test_down_stops_a_running_launcher(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    launcher = _launch(settings.state_dir)
    state = _wait_for_services(settings, launcher)
    pids = _pids(state)
    assert stop_running(settings, notify=lambda m: None)
    assert launcher.wait(timeout=30) == 0
    assert _wait_gone(pids) == []
    assert read_status(settings) == (None, {})


def test_status_file_records_every_service(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    with Stack(settings):
        recorded = json.loads((settings.state_dir / "stack.json").read_text())
        assert recorded["launcher_pid"] == os.getpid()
        assert {"postgres", "falkordb", "qdrant"} <= set(recorded["services"])
        assert recorded["environment"]["BUCKET_URL"].startswith("file://")


def test_terminate_group_ends_what_a_stopped_leader_left_behind() -> None:
    """A code server the daemon started outlives the daemon when it still counts a run as its own; stopping
    Dagster ends the daemon's whole process group."""
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    left = int(leader.stdout.readline())
    leader.send_signal(signal.SIGKILL)  # the leader goes; its child stays, reparented
    leader.wait(timeout=5)
    assert pids_alive([left]) == [left]
    assert left in terminate_group(leader.pid, timeout=5)
    assert pids_alive([left]) == []
