"""The embedded stack: start, stop and inspect every service the project runs for itself.

One launcher process owns the stack. It holds an exclusive lock on ``<state>/stack.lock`` for its
whole life and records what it started in ``<state>/stack.json``. Children are started with a
parent-death signal, so even a SIGKILLed launcher leaves no server behind; should one survive anyway
(an older launcher, a different kernel), the next start finds it by pid and cmdline and stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reindex_pipeline.settings import RESTORE_INGEST_POOL, Settings
from reindex_pipeline.stack import processes
from reindex_pipeline.stack.falkordb import EmbeddedFalkorDB, FalkorProcess
from reindex_pipeline.stack.postgres import EmbeddedPostgres, PostgresProcess

Notify = Callable[[str], None]


class StackError(RuntimeError):
    """A problem a person can act on; the CLI prints it as one line."""


class AlreadyRunning(StackError):
    pass


def project_root() -> Path:
    """The checkout holding ``dagster.yaml`` and ``workspace.yaml`` (the package is installed editable)."""
    return Path(__file__).resolve().parents[2]


@dataclass
class StackState:
    """What ``stack.json`` records: enough for ``status`` and ``down`` from another process."""

    launcher_pid: int
    started_at: float
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> StackState | None:
        try:
            raw = json.loads(path.read_text())
            return cls(**raw)
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, TypeError) as exc:
            raise StackError(f"{path} is unreadable ({exc}); delete it and start again") from exc


class Stack:
    """Embedded services for one state folder. Use as a context manager or call start/stop."""

    def __init__(self, settings: Settings, notify: Notify | None = None):
        self.settings = settings
        self.notify = notify or (lambda message: None)
        self.state_dir = settings.state_dir
        self.state_path = self.state_dir / "stack.json"
        self.lock_path = self.state_dir / "stack.lock"
        self.logs = self.state_dir / "logs"
        self.postgres = EmbeddedPostgres(self.state_dir / "postgres", self.logs / "postgres.log")
        self.falkordb = EmbeddedFalkorDB(self.state_dir / "falkordb", self.logs / "falkordb.log")
        self._lock: IO[str] | None = None
        self._pg: PostgresProcess | None = None
        self._fk: FalkorProcess | None = None
        self._dagster: dict[str, subprocess.Popen] = {}  # "dagster" (the webserver), "dagster-daemon"
        self.state: StackState | None = None

    # -- start ------------------------------------------------------------------------------------
    def start(self) -> StackState:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            previous = StackState.read(self.state_path)
            self._recover(previous)
            ports = self._remembered_ports()
            services: dict[str, dict[str, Any]] = {}
            env = self._external_environment()
            if self.settings.database_url is None:
                self._pg = self.postgres.start(preferred_port=ports.get("postgres", {}).get("port"))
                services["postgres"] = {"pid": self._pg.pid, "port": self._pg.port, "url": self._pg.app_url}
                env["DATABASE_URL"] = self._pg.app_url
                env.setdefault("DAGSTER_PG_URL", self._pg.dagster_url)
            if self.settings.neo4j_uri is None:
                self._fk = self.falkordb.start(preferred_port=ports.get("falkordb", {}).get("port"))
                services["falkordb"] = {"pid": self._fk.pid, "port": self._fk.port}
                env["FALKORDB_HOST"], env["FALKORDB_PORT"] = "127.0.0.1", str(self._fk.port)
            if self.settings.qdrant_url is None:
                self.settings.qdrant_path.mkdir(parents=True, exist_ok=True)
                services["qdrant"] = {"path": str(self.settings.qdrant_path), "mode": "local"}
                env["QDRANT_PATH"] = str(self.settings.qdrant_path)
            if self.settings.bucket_url is None:
                self.settings.bucket_path.mkdir(parents=True, exist_ok=True)
            env["BUCKET_URL"] = self.settings.effective_bucket_url
            env["REINDEX_STATE_DIR"] = str(self.state_dir)
            self.state = StackState(os.getpid(), time.time(), services, env)
            self._write_state()
            self._remember_ports(services)
            return self.state
        except BaseException:
            self.stop()
            raise

    def _external_environment(self) -> dict[str, str]:
        s = self.settings
        env: dict[str, str] = {}
        if s.database_url:
            env["DATABASE_URL"] = s.database_url
            env["DAGSTER_PG_URL"] = s.dagster_pg_url or s.database_url
        elif s.dagster_pg_url:
            env["DAGSTER_PG_URL"] = s.dagster_pg_url
        if s.qdrant_url:
            env["QDRANT_URL"] = s.qdrant_url
        if s.neo4j_uri:
            env["NEO4J_URI"] = s.neo4j_uri
        return env

    def start_dagster(self, port: int, host: str = "127.0.0.1", extra_env: dict[str, str] | None = None) -> str:
        """Run Dagster as a deployment does: ``dagster-daemon run`` (sensors, schedules, the run queue and
        backfills) and ``dagster-webserver`` (the UI), on Postgres-backed instance storage."""
        assert self.state is not None, "start the stack first"
        dagster_env = dagster_environment(self.state_dir, self.state.environment)
        home = Path(dagster_env["DAGSTER_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project_root() / "dagster.yaml", home / "dagster.yaml")
        env = {**os.environ, **dagster_env, **(extra_env or {})}
        set_pool_slots(home, Settings.from_env(env), env)
        port = processes.free_port(port)
        workspace = str(project_root() / "workspace.yaml")
        commands = {
            "dagster-daemon": [_venv_bin("dagster-daemon"), "run", "-w", workspace],
            "dagster": [_venv_bin("dagster-webserver"), "-w", workspace, "-h", host, "-p", str(port)],
        }
        url = f"http://{host}:{port}"
        for name, argv in commands.items():
            self._dagster[name] = processes.spawn(
                argv, log_path=self.logs / f"{name}.log", env=env, death_signal=signal.SIGTERM, cwd=project_root()
            )
            self.state.services[name] = {"pid": self._dagster[name].pid}
        self.state.services["dagster"].update(port=port, url=url)
        self._write_state()
        processes.wait_until(
            lambda: _http_ok(f"{url}/server_info"),
            timeout=180,
            what="Dagster webserver",
            proc=self._dagster["dagster"],
            log_path=self.logs / "dagster.log",
        )
        return url

    def kill_graph(self) -> None:
        """Fault injection (``./dev bench faults``): SIGKILL the embedded FalkorDB."""
        assert self._fk is not None, "no embedded FalkorDB to kill"
        processes.terminate(self._fk.pid, signal.SIGKILL)
        if self._fk.proc is not None:
            self._fk.proc.wait(timeout=5)

    def restart_graph(self) -> None:
        """Start the embedded FalkorDB again on its port and data. Call it from a thread that outlives the
        server: the parent-death signal of a child follows the thread that started it."""
        assert self._fk is not None and self.state is not None, "no embedded FalkorDB to restart"
        self._fk = self.falkordb.start(preferred_port=self._fk.port)
        self.state.services["falkordb"]["pid"] = self._fk.pid
        self._write_state()

    # -- stop -------------------------------------------------------------------------------------
    def stop_dagster(self) -> None:
        """Stop the webserver and the daemon (and their code servers); the stores keep running."""
        for name in ("dagster", "dagster-daemon"):
            proc = self._dagster.pop(name, None)
            if proc is None:
                continue
            # Both shut down cleanly on SIGINT, the webserver with its code server.
            processes.terminate(proc.pid, signal.SIGINT, timeout=60)
            proc.wait(timeout=5)
            # A code server that still counts a finished run as its own outlives them: end their group.
            processes.terminate_group(proc.pid)
            if self.state is not None:
                self.state.services.pop(name, None)
        if self.state is not None:
            self._write_state()

    def stop(self) -> None:
        """Stop what this launcher started, newest first. Safe to call twice."""
        self.stop_dagster()
        if self._fk is not None:
            EmbeddedFalkorDB.stop(self._fk)
            self._fk = None
        if self._pg is not None:
            EmbeddedPostgres.stop(self._pg)
            self._pg = None
        if self._lock is not None:
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dagster_exited(self) -> tuple[str, int] | None:
        """(process, exit code) of a Dagster process that stopped by itself, if any."""
        for name, proc in self._dagster.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    # -- recovery ---------------------------------------------------------------------------------
    def _take_lock(self) -> None:
        handle = open(self.lock_path, "a+")  # noqa: SIM115 - held for the launcher's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            state = StackState.read(self.state_path)
            owner = f" (launcher pid {state.launcher_pid})" if state else ""
            raise AlreadyRunning(
                f"the stack in {self.state_dir} is already running{owner}; "
                "see `reindex-pipeline status`, or stop it with `reindex-pipeline down`"
            ) from None
        self._lock = handle

    def _recover(self, previous: StackState | None) -> None:
        """We hold the lock, so any recorded launcher is dead: stop what it left behind."""
        if previous is not None:
            self.notify(
                f"Recovering from an unclean stop: launcher pid {previous.launcher_pid} is gone "
                f"but left {self.state_path.name} behind."
            )
            for name, service in previous.services.items():
                self.stop_leftover(name, service.get("pid"))
            self.state_path.unlink(missing_ok=True)
        orphan = self.postgres.stop_orphan()
        if orphan is not None:
            self.notify(f"Stopped an orphaned PostgreSQL server (pid {orphan}) on {self.postgres.data_dir}.")

    def stop_leftover(self, name: str, pid: int | None) -> None:
        """Stop a service a dead launcher left running, if that pid is still that service of ours."""
        if pid and self.is_ours(name, pid):
            self.notify(f"Stopping leftover {name} (pid {pid}).")
            # PostgreSQL's fast shutdown and Dagster's clean shutdown are both SIGINT.
            processes.terminate(
                pid, signal.SIGINT if name in ("postgres", "dagster", "dagster-daemon") else signal.SIGTERM
            )
            if name in ("dagster", "dagster-daemon"):
                processes.terminate_group(pid)

    def is_ours(self, name: str, pid: int) -> bool:
        if name == "postgres":
            return processes.process_matches(pid, str(self.postgres.data_dir))
        if name == "falkordb":
            return self.falkordb.is_ours(pid)
        if name in ("dagster", "dagster-daemon"):
            return processes.process_matches(pid, "dagster-webserver" if name == "dagster" else "dagster-daemon")
        return False

    def _remembered_ports(self) -> dict[str, dict[str, Any]]:
        """Ports of the last start, so addresses stay stable across restarts when they are free."""
        try:
            return json.loads((self.state_dir / "ports.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _remember_ports(self, services: dict[str, dict[str, Any]]) -> None:
        ports = {name: {"port": s["port"]} for name, s in services.items() if "port" in s}
        (self.state_dir / "ports.json").write_text(json.dumps(ports))

    def _write_state(self) -> None:
        assert self.state is not None
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(self.state.to_json())
        tmp.replace(self.state_path)


def set_pool_slots(home: Path, settings: Settings, env: dict[str, str]) -> None:
    """Give the pools their slots before the daemon dequeues a run: ``qdrant`` one (local mode admits one
    process), with a Qdrant server the ``reindex`` pool REINDEX_PARALLEL_RUNS, and ``restore_ingest``
    RESTORE_INGEST_RUNS.

    ``pools.default_limit`` alone is not enough: Dagster's run queue gives a pool its default limit the first
    time a queued run needs it, but decides that same pass as if the pool had no limit, so on a fresh instance
    the runs queued at that moment started at once (measured: two runs of one request; the second failed after
    waiting 30 s for the Qdrant folder, and the request was retried from the start)."""
    with dagster_instance(home, env) as instance:
        instance.event_log_storage.set_concurrency_slots("qdrant", 1)
        instance.event_log_storage.set_concurrency_slots(RESTORE_INGEST_POOL, settings.restore_ingest_runs)
        if settings.reindex_pool != "qdrant":
            instance.event_log_storage.set_concurrency_slots(settings.reindex_pool, settings.parallel_runs)


@contextlib.contextmanager
def dagster_instance(home: Path, env: dict[str, str]):
    """The stack's Dagster instance, opened in this process (its config reads the database URL and the
    artifacts folder from the environment, set from ``env`` for as long as it is open)."""
    import dagster as dg

    saved = {k: os.environ.get(k) for k in ("DAGSTER_PG_URL", "DAGSTER_ARTIFACTS_DIR")}
    os.environ.update({k: env[k] for k in saved if k in env})
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dagster_environment(state_dir: Path, environment: dict[str, str]) -> dict[str, str]:
    """What Dagster's processes need: the stack's exported variables plus its instance folders.

    (``start`` always exports DAGSTER_PG_URL: the embedded `dagster` database, or the external URL.)"""
    return {
        **environment,
        "DAGSTER_HOME": str(state_dir / "dagster_home"),
        "DAGSTER_ARTIFACTS_DIR": str(state_dir / "dagster_artifacts"),
        # Dagster hands a run's planned materialisations (3 per partition of its range) to the event log in
        # batches, which dagster.yaml's storage writes in one statement each (instance_storage.py).
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
    }


# -- used by `status` and `down` from another process ------------------------------------------------
def read_status(settings: Settings) -> tuple[StackState | None, dict[str, bool]]:
    """The recorded state and, per service with a pid, whether that process is alive and ours."""
    state = StackState.read(settings.state_dir / "stack.json")
    if state is None:
        return None, {}
    stack = Stack(settings)
    alive = {"launcher": _lock_is_held(settings.state_dir / "stack.lock")}
    for name, service in state.services.items():
        if service.get("pid"):
            alive[name] = stack.is_ours(name, service["pid"])
    return state, alive


def stop_running(settings: Settings, notify: Notify, timeout: float = 90.0) -> bool:
    """Ask a running launcher to stop (SIGTERM) and wait; clean up orphans if it is gone. True if stopped."""
    state, alive = read_status(settings)
    if state is None:
        return False
    if alive.get("launcher"):
        notify(f"Stopping the stack (launcher pid {state.launcher_pid}) ...")
        if not processes.terminate(state.launcher_pid, signal.SIGTERM, timeout=timeout):
            raise StackError(f"launcher pid {state.launcher_pid} did not stop within {timeout:.0f}s")
    stack = Stack(settings, notify)
    for name, service in state.services.items():
        if alive.get(name):
            stack.stop_leftover(name, service["pid"])
    (settings.state_dir / "stack.json").unlink(missing_ok=True)
    return True


def _lock_is_held(lock_path: Path) -> bool:
    """True while a launcher holds the stack lock (the kernel drops it when that process dies)."""
    try:
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except BlockingIOError:
        return True


def _venv_bin(name: str) -> str:
    import sys

    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
