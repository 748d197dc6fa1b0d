"""The package's floors, read from its imports: nothing imports upwards, and the ground floor imports nothing.

- ``domain``: pure rules and schemas; imports nothing of the project;
- the stores and readers (``db``, ``graph``, ``vectors``, ``invoices``, ``ingest``, ``embeddings``, ...): may
  import ``domain`` and each other, never the services above them;
- ``reindex``: the services that use them (the runner, admission, the consistency check);
- ``defs``, ``cli``, ``stack``, ``definitions`` and ``resources`` (the Dagster resources, built from the
  settings for the definitions): wiring, which may import anything below.

Imports inside functions count as much as those at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "reindex_pipeline"
TOP = {"defs": 3, "cli": 3, "stack": 3, "definitions": 3, "resources": 3, "reindex": 2, "domain": 0}


def floor(part: str) -> int:
    return TOP.get(part, 1)


def imports() -> list[tuple[str, str]]:
    """(importing module's first part, imported module's first part) of every project import."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reindex_pipeline."):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("reindex_pipeline.")]
            for name in names:
                found.append((here, name.split(".")[1]))
    return found


def test_no_import_runs_upwards_and_the_ground_floor_imports_nothing() -> None:
    pairs = imports()
    assert len(pairs) > 100  # the walk sees the package
    upwards = sorted({(a, b) for a, b in pairs if a != b and floor(b) > floor(a)})
    assert upwards == []
    assert sorted({b for a, b in pairs if a == "domain" and b != "domain"}) == []


def test_audit_events_are_written_in_one_place_from_typed_events() -> None:
    writers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and "INSERT INTO audit_events" in path.read_text()
    )
    assert writers == ["db/audit.py"]


def test_the_readme_layout_names_every_module_and_folder_of_the_package_and_nothing_else() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    named = {
        line.split()[0].rstrip("/").split("/")[0]
        for line in block.splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    }
    present = {
        p.name.removesuffix(".py")
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert {n.removesuffix(".py") for n in named} == present
