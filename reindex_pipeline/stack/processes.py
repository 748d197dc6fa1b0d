"""Child processes that die with their parent, and safe checks on pids read back from disk."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


def _parent_death_signal(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` asking Linux to send ``sig`` to the child when its parent dies.

    It runs after Popen's uid switch, so the setting survives it (a uid change clears it).
    """

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, sig)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    death_signal: int = signal.SIGTERM,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start a supervised child in its own session, output appended to ``log_path``.

    Its own session keeps a terminal's Ctrl-C away from it, so the launcher stops children in order.
    If the launcher is killed (even by SIGKILL) the kernel sends ``death_signal`` to the child.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            **as_user(user),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_parent_death_signal(death_signal),
        )


def as_user(user: str | None) -> dict:
    """Popen arguments to run as ``user`` with its own group and none of ours (root's group bits
    would otherwise shadow the "other" bits that let it traverse parent folders)."""
    if user is None:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


def process_matches(pid: int | None, needle: str) -> bool:
    """True when ``pid`` is alive and its command line contains ``needle``.

    Guards against pid reuse: a pid read from a stale file is only acted on when it is still ours.
    """
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return needle in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def terminate(pid: int, sig: int = signal.SIGTERM, timeout: float = 20.0) -> bool:
    """Signal ``pid`` and wait for it to go; SIGKILL after ``timeout``. True if it is gone."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
        return True
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        try:
            proc.kill()
            proc.wait(timeout=5)
        except psutil.NoSuchProcess:
            pass
        return not psutil.pid_exists(pid)


def terminate_group(pgid: int, timeout: float = 10.0) -> list[int]:
    """SIGTERM what is left of process group ``pgid`` (its leader already gone), SIGKILL after ``timeout``.

    Dagster's code servers outlive the webserver or daemon that started them when they still count a
    finished run as theirs, and never exit once the instance's database is gone. Returns the pids found."""
    members = [p for p in psutil.process_iter() if _group_of(p) == pgid]
    for proc in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(members, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return [p.pid for p in members]


def _group_of(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, PermissionError):
        return None


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free on 127.0.0.1, otherwise any free port."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Free for a server to listen on (servers set SO_REUSEADDR, so old TIME_WAIT sockets don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    proc: subprocess.Popen | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``check`` until it is true; fail with the log's tail if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}.{_tail(log_path)}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s.{_tail(log_path)}")


def _tail(log_path: Path | None, lines: int = 15) -> str:
    if log_path is None or not log_path.exists():
        return ""
    text = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"\nLast lines of {log_path}:\n" + "\n".join(text)


def current_user_is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
