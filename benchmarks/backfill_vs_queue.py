"""A UI backfill and a queue request over the same documents, back to back on one Dagster stack.

``./dev bench backfill_vs_queue --documents 4000 --pairs 1``: each pair is a queue request for every document,
then a UI backfill of every partition. Printed for each: seconds inside its runs, the runs' own step time
(from their audit rows) and documents/s, and the CPU the run workers used per document (read from /proc while
they live). Same work per document means the same CPU per document; a difference in seconds with the same
CPU is the machine, not the way in.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from benchmarks.dagster_path import DagsterPath
from benchmarks.reindex import SEED, admin_of
from reindex_pipeline.db import migrate
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.supervisor import Stack

#: A run worker is a process the code server spawns (Dagster's default run launcher).
WORKER = "multiprocessing.spawn import spawn_main"
TICKS = 100  # clock ticks per second on Linux


class WorkerCpu:
    """CPU seconds of every run worker seen, by pid, sampled twice a second until ``stop``."""

    def __init__(self) -> None:
        self.ticks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            found = subprocess.run(["pgrep", "-f", WORKER], capture_output=True, text=True).stdout.split()
            for pid in found:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=4000, help="demo corpus size")
    parser.add_argument("--pairs", type=int, default=1, help="pairs of: queue request, backfill")
    args = parser.parse_args()
    cpu = WorkerCpu()
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings.from_env({"REINDEX_STATE_DIR": tmp})) as stack:
        url = stack.state.environment["DATABASE_URL"]
        migrate.upgrade(url)
        report = load_demo_corpus(url, args.documents, seed=SEED)
        print(f"demo corpus: {report.documents} documents, {report.chunks} chunks")
        with psycopg.connect(url) as conn:
            live = conn.execute("SELECT count(*) FROM documents WHERE deleted_at IS NULL").fetchone()[0]
        with DagsterPath(stack, url, admin_of(url)) as dagster:
            dagster.wait_for_partitions(live)  # one partition per live document
            time.sleep(2)
            keys = dagster.all_partitions()
            for pair in range(1, args.pairs + 1):
                for way in ("queue request", "UI backfill"):
                    before = set(cpu.ticks)
                    timing = dagster.queue_request() if way == "queue request" else dagster.backfill(keys)
                    time.sleep(1)  # the last worker's final sample
                    worker_s = sum(t for pid, t in cpu.ticks.items() if pid not in before) / TICKS
                    documents, steps = timing.documents, timing.step_s
                    print(
                        f"pair {pair}, {way:13s}: {timing.in_runs:6.1f} s in {timing.runs} run(s); "
                        f"steps {steps:6.1f} s for {documents} documents = {documents / steps:5.2f} docs/s; "
                        f"run workers' CPU {worker_s:6.1f} s = {worker_s / documents * 1000:5.1f} ms per document",
                        flush=True,
                    )
    cpu.stop()


if __name__ == "__main__":
    main()
