#!/usr/bin/env python3
"""Helm post-renderer: the chart's instance runs the project's instance storages, as ``dagster.yaml`` does.

Dagster's chart writes ``run_storage`` and ``event_log_storage`` as the stock dagster-postgres classes and
has no value to change them. This reads the rendered manifests on stdin, names
``reindex_pipeline.instance_storage``'s classes in the ``<release>-instance`` ConfigMap (their config, the
chart's ``postgres_db``, is kept as it is), and writes every manifest to stdout:

    helm upgrade --install reindex dagster/dagster --version 1.13.27 -f deploy/values.yaml \
        --post-renderer deploy/post_render.py

The webserver, daemon and run pods all read that ConfigMap, and all run the image, which contains the classes.
"""

from __future__ import annotations

import sys

import yaml

STORAGES = {
    "run_storage": ("reindex_pipeline.instance_storage", "PooledPostgresRunStorage"),
    "event_log_storage": ("reindex_pipeline.instance_storage", "PooledPostgresEventLogStorage"),
}


def patch_instance(instance: dict) -> dict:
    """The instance config with the project's storages (their config unchanged)."""
    for key, (module, cls) in STORAGES.items():
        if key not in instance:
            raise ValueError(f"the chart's instance config has no {key}: is this Dagster's chart?")
        instance[key] = {**instance[key], "module": module, "class": cls}
    return instance


def render(manifests: str) -> str:
    docs = [d for d in yaml.safe_load_all(manifests) if d is not None]
    patched = 0
    for doc in docs:
        if doc.get("kind") == "ConfigMap" and doc.get("metadata", {}).get("name", "").endswith("-instance"):
            instance = yaml.safe_load(doc["data"]["dagster.yaml"])
            doc["data"]["dagster.yaml"] = yaml.safe_dump(patch_instance(instance), sort_keys=False)
            patched += 1
    if patched != 1:
        raise ValueError(f"expected one '<release>-instance' ConfigMap in the rendered chart, found {patched}")
    return yaml.safe_dump_all(docs, sort_keys=False)


if __name__ == "__main__":
    sys.stdout.write(render(sys.stdin.read()))
