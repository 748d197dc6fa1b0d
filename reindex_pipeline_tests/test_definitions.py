"""The code location loads: in-process, and through `dagster definitions validate` on Postgres storage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from reindex_pipeline.definitions import defs
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore
from reindex_pipeline_tests.conftest import project_root


def test_definitions_load_with_resources_for_the_running_stack(stack_state) -> None:
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    repo = loaded.get_repository_def()
    assert dg.AssetKey("preserved_ocr_output") in repo.asset_graph.get_all_asset_keys()
    resources = loaded.resources or {}
    assert {"app_db", "qdrant", "graph", "bucket"} <= set(resources)
    assert isinstance(resources["graph"], GraphDatabase) and resources["graph"].backend == "falkordb"
    qdrant = resources["qdrant"]
    assert isinstance(qdrant, QdrantStore) and qdrant.url is None and qdrant.path == os.environ["QDRANT_PATH"]
    db = AppDatabase(url=os.environ["DATABASE_URL"])
    with db.connect() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_dagster_definitions_validate_against_postgres_storage(stack_state, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(project_root() / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=project_root(), env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr
