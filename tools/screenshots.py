"""``./dev screenshots``: what a user sees in the Dagster UI, taken by headless Chromium (Debian's ``chromium``).

Starts a throwaway stack with the demo corpus and the Dagster webserver and daemon (as ``./dev up`` does),
launches a backfill of every partition through the webserver as a person would, waits for it, and saves into
``docs/screenshots/``:
the asset graph, one reindexed and one skipped partition of ``extracted_data`` (their metadata), and the
finished backfill.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from reindex_pipeline.db import migrate
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack import processes
from reindex_pipeline.stack.dagster_client import DagsterClient
from reindex_pipeline.stack.supervisor import Stack, project_root

SEED = 7
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def shoot(browser: str, url: str, target: Path, wait_ms: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--window-size=1600,1000",
                f"--virtual-time-budget={wait_ms}",
                f"--screenshot={target}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"  {target.relative_to(project_root())}  <- {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=project_root() / "docs" / "screenshots")
    parser.add_argument("--wait-ms", type=int, default=15000, help="page rendering budget per screenshot")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("error: no chromium on PATH (Debian: apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as state, Stack(Settings.from_env({"REINDEX_STATE_DIR": state})) as stack:
        url = stack.state.environment["DATABASE_URL"]
        migrate.upgrade(url)
        load_demo_corpus(url, 60, SEED)
        with psycopg.connect(url) as conn:
            admin = conn.execute(
                "SELECT id::text FROM users WHERE role = 'admin' ORDER BY username LIMIT 1"
            ).fetchone()[0]
            live = [r[0] for r in conn.execute("SELECT id::text FROM documents WHERE deleted_at IS NULL")]
            skipped = conn.execute(
                "SELECT id::text FROM documents WHERE deleted_at IS NULL AND convert_status <> 'converted' LIMIT 1"
            ).fetchone()[0]
            indexed = conn.execute(
                "SELECT id::text FROM documents WHERE deleted_at IS NULL AND convert_status = 'converted' "
                "AND index_status = 'indexed' ORDER BY filename LIMIT 1"
            ).fetchone()[0]
        ui = stack.start_dagster(processes.free_port(3500), extra_env={"REINDEX_OPERATOR_USER_ID": admin})
        client = DagsterClient(ui)
        deadline = time.monotonic() + 120
        while len(client.partition_keys()) < len(live):  # the partition sync sensor adds them
            if time.monotonic() > deadline:
                raise SystemExit("error: the documents' partitions did not appear within 2 minutes")
            time.sleep(2)
        backfill = client.launch_backfill(client.partition_keys())
        status = client.wait_backfill(backfill, timeout=900)
        print(f"backfill {backfill}: {status}")
        pages = {
            "asset-graph.png": f"{ui}/assets/graph_entities?view=lineage&lineageScope=upstream&lineageDepth=2",
            "partition-reindexed.png": f"{ui}/assets/extracted_data?view=partitions&partition={indexed}",
            "partition-skipped.png": f"{ui}/assets/extracted_data?view=partitions&partition={skipped}",
            "backfill.png": f"{ui}/runs/b/{backfill}?tab=overview",
        }
        client.gql("mutation { setNuxSeen }")  # the first-visit "join the community" dialog, already seen
        for name, page in pages.items():
            shoot(browser, page, args.out / name, args.wait_ms)
        client.close()


if __name__ == "__main__":
    main()
