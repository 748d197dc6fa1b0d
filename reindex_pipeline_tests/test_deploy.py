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
