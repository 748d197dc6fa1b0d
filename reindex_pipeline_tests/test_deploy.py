"""deploy/: the code location's Dockerfile and the Helm values, linted (no container engine or helm here), and
kept in step with the project (the module Dagster loads, the environment variables the code reads)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from reindex_pipeline.settings import ENV_VARS
from reindex_pipeline_tests.conftest import project_root

BIN = Path(sys.executable).parent
YAMLLINT = "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}"


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "deploy/Dockerfile"], cwd=project_root(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_values_and_instance_yaml_pass_yamllint() -> None:
    files = ["deploy/values.yaml", "dagster.yaml", "workspace.yaml"]
    result = subprocess.run(
        [str(BIN / "yamllint"), "-d", YAMLLINT, *files], cwd=project_root(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_files_load_what_the_project_defines() -> None:
    root = project_root()
    module = yaml.safe_load((root / "workspace.yaml").read_text())["load_from"][0]["python_module"]["module_name"]
    values = yaml.safe_load((root / "deploy/values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert module in (root / "deploy/Dockerfile").read_text()
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"] is False
    named = set(re.findall(r"\b(?:[A-Z][A-Z0-9]*_)+[A-Z0-9]+\b", (root / "deploy/values.yaml").read_text()))
    assert named and named <= set(ENV_VARS), sorted(named - set(ENV_VARS))


#: The instance config Dagster's chart 1.13 renders into its ``<release>-instance`` ConfigMap (storage part).
CHART_INSTANCE = """
scheduler:
  module: dagster.core.scheduler
  class: DagsterDaemonScheduler
schedule_storage:
  module: dagster_postgres.schedule_storage
  class: PostgresScheduleStorage
  config:
    postgres_db: {username: dagster, password: {env: DAGSTER_PG_PASSWORD}, hostname: pg, db_name: dagster, port: 5432}
run_storage:
  module: dagster_postgres.run_storage
  class: PostgresRunStorage
  config:
    postgres_db: {username: dagster, password: {env: DAGSTER_PG_PASSWORD}, hostname: pg, db_name: dagster, port: 5432}
event_log_storage:
  module: dagster_postgres.event_log
  class: PostgresEventLogStorage
  config:
    postgres_db: {username: dagster, password: {env: DAGSTER_PG_PASSWORD}, hostname: pg, db_name: dagster, port: 5432}
"""


def _rendered_chart() -> str:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "reindex-dagster-instance"},
        "data": {"dagster.yaml": CHART_INSTANCE},
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "reindex-dagster-daemon"}}
    return yaml.safe_dump_all([deployment, configmap])


def test_the_post_renderer_gives_the_charts_instance_the_projects_storages() -> None:
    """Kubernetes runs the instance code dagster.yaml runs: deploy/post_render.py (Helm's --post-renderer)."""
    result = subprocess.run(
        [sys.executable, "deploy/post_render.py"],
        input=_rendered_chart(),
        cwd=project_root(),
        capture_output=True,
        text=True,
        check=True,
    )
    deployment, configmap = yaml.safe_load_all(result.stdout)
    assert deployment["metadata"]["name"] == "reindex-dagster-daemon"  # other manifests pass through
    instance = yaml.safe_load(configmap["data"]["dagster.yaml"])
    local = yaml.safe_load((project_root() / "dagster.yaml").read_text())
    for key in ("run_storage", "event_log_storage"):
        assert (instance[key]["module"], instance[key]["class"]) == (local[key]["module"], local[key]["class"])
        assert instance[key]["config"]["postgres_db"]["hostname"] == "pg"  # the chart's database, kept
    assert instance["schedule_storage"]["class"] == "PostgresScheduleStorage"
    values = (project_root() / "deploy/values.yaml").read_text()
    assert "--post-renderer deploy/post_render.py" in values


def test_the_post_renderer_refuses_manifests_without_the_instance() -> None:
    result = subprocess.run(
        [sys.executable, "deploy/post_render.py"],
        input=yaml.safe_dump({"kind": "ConfigMap", "metadata": {"name": "other"}, "data": {}}),
        cwd=project_root(),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "expected one '<release>-instance' ConfigMap" in result.stderr


#: The dagster-postgres code ``reindex_pipeline.instance_storage`` overrides or calls, as of dagster-postgres
#: 0.29.27 (sha256 of its source, first 16 hex digits). When an upgrade changes one, this fails: read the new
#: code, check the override still does what it says (and the tests around it pass), then record the new hash.
UPSTREAM = {
    ("PostgresEventLogStorage", "__init__"): "647dff00b58c1222",
    ("PostgresEventLogStorage", "store_event"): "4a2e37e5871bf2c8",
    ("PostgresEventLogStorage", "store_event_batch"): "ff147ed514ba9786",
    ("PostgresEventLogStorage", "has_table"): "78217fbd74d0e09d",
    ("PostgresEventLogStorage", "dispose"): "ce4ee18aa28915d1",
    ("PostgresEventLogStorage", "_connect"): "a1935b91a983062d",
    ("PostgresEventLogStorage", "_store_asset_check_evaluation_planned"): "bbecef7ab5ce9d01",
    ("PostgresEventLogStorage", "_store_asset_event_tags"): "85d6f17ef04b926f",
    ("PostgresEventLogStorage", "_store_asset_event"): "2dc70ccdb0feb5be",
    ("PostgresEventLogStorage", "_event_insert_timestamp"): "02e6947ee3f9408a",
    ("PostgresEventLogStorage", "optimize_for_webserver"): "c084cd79114d5e5e",
    ("PostgresRunStorage", "__init__"): "c20e1fcd1ee52b39",
    ("PostgresRunStorage", "optimize_for_webserver"): "c084cd79114d5e5e",
}


def test_the_dagster_postgres_internals_the_instance_storage_overrides_are_unchanged() -> None:
    import hashlib
    import inspect

    import dagster_postgres

    changed = []
    for (cls, name), digest in UPSTREAM.items():
        source = inspect.getsource(getattr(getattr(dagster_postgres, cls), name))
        if hashlib.sha256(source.encode()).hexdigest()[:16] != digest:
            changed.append(f"{cls}.{name}")
    assert changed == [], (
        f"dagster-postgres {dagster_postgres.__version__} changed {changed}: re-check instance_storage"
    )
