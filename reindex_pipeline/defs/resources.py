"""Resources, wired to the environment when the code location loads (never at import), and the executor."""

import os

import dagster as dg

from reindex_pipeline.resources import build_resources


@dg.definitions
def resources() -> dg.Definitions:
    """Every job here is one step (a batch of documents), so steps run in the run's own process: no second
    process start, no second import of the models (the multiprocess default costs ~2.5 s per run)."""
    return dg.Definitions(resources=build_resources(os.environ), executor=dg.in_process_executor)
