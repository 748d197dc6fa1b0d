"""The preserved OCR output: pages' markdown and chunks, written once by conversion.

A reindex reads it and never re-runs it; it is declared (not materialized) here so the lineage
from OCR output to every derived index shows in the UI.
"""

import dagster as dg

from reindex_pipeline.partitions import documents

preserved_ocr_output = dg.AssetSpec(
    key="preserved_ocr_output",
    partitions_def=documents,
    group_name="source",
    kinds={"postgres"},
    description=(
        "Per document: `pages.markdown` and `chunks.chunk_content` / `chunk_metadata` in the app database. "
        "Produced by the app's OCR conversion; a reindex never modifies or recreates it."
    ),
    metadata={"tables": "pages, chunks"},
)
