"""Resources, wired to the environment when the code location loads (never at import)."""

import os

import dagster as dg

from reindex_pipeline.resources import build_resources


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(os.environ))
