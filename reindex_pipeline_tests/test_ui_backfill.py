"""A backfill launched as the UI launches it, on a real Dagster webserver and daemon (Postgres instance
storage): partitions skipped by design are reported with their reason, and the backfill is not a failure."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg

from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.domain.selection import REASON_TEXT
from reindex_pipeline.stack import processes
from reindex_pipeline.stack.dagster_client import DagsterClient
from reindex_pipeline.stack.supervisor import Stack
from reindex_pipeline_tests.test_queue import SEED, USERS, _eligible


def _latest(instance: dg.DagsterInstance, asset: str, keys: list[str]) -> dict[str, dict]:
    """Each partition's latest materialisation metadata (plain values)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys), limit=10 * len(keys)
    ).records
    latest: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        event = record.asset_materialization
        latest[event.partition] = {k: v.value for k, v in event.metadata.items()}
    return latest


def test_a_ui_backfill_over_ineligible_partitions_completes_and_names_each_reason(
    stack: Stack, app_db: str, tmp_path: Path, monkeypatch
) -> None:
    load_demo_corpus(app_db, 16, SEED)
    with psycopg.connect(app_db) as conn:
        keys = [r[0] for r in conn.execute("SELECT id::text FROM documents WHERE deleted_at IS NULL ORDER BY id")]
    eligible = _eligible(app_db)
    assert eligible and set(keys) - eligible, "the corpus needs eligible and ineligible documents"

    url = stack.start_dagster(
        processes.free_port(3400),
        extra_env={
            "DATABASE_URL": app_db,
            "QDRANT_PATH": str(tmp_path / "qdrant"),
            "REINDEX_OPERATOR_USER_ID": USERS["admin"],
        },
    )
    client = DagsterClient(url)
    home = stack.state_dir / "dagster_home"
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DIR", str(stack.state_dir / "dagster_artifacts"))
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions("documents", keys)
            backfill_id = client.launch_backfill(keys)
            assert client.wait_backfill(backfill_id, timeout=600) == "COMPLETED_SUCCESS"
            assert {r["status"] for r in client.backfill_runs(backfill_id)} == {"SUCCESS"}
            for asset in ("extracted_data", "chunk_embeddings", "graph_entities"):
                latest = _latest(instance, asset, keys)
                assert set(latest) == set(keys), asset
                for key, metadata in latest.items():
                    if key in eligible:
                        assert metadata["outcome"] == "reindexed", (asset, key, metadata)
                    else:
                        assert metadata["outcome"] == "skipped", (asset, key, metadata)
                        assert metadata["why"] == REASON_TEXT[metadata["reason"]]
                        assert metadata["requester"] == "admin" and metadata["filename"]
    finally:
        client.close()
        stack.stop_dagster()
