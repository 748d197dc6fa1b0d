"""Cross-store consistency as Dagster asset checks on the document partitions.

``document_consistency`` checks each selected document partition (Postgres chunks = live Qdrant points =
live graph chunks; payload and Document node owner/workspace = the documents table; nothing left of a
deleted document) and records one result per partition, whose description names the difference. Run it
from the UI (the asset's Checks tab, or the ``check_documents`` job over a partition range), or with
``reindex-pipeline check``. To repair a failed partition, materialise it (a forced reindex of that
document), or run ``reindex-pipeline repair DOCUMENT_ID``.
"""

import dagster as dg

from reindex_pipeline.defs.reindex import EMBEDDINGS, EXTRACTED, GRAPH_ENTITIES
from reindex_pipeline.embeddings import EmbeddingModel
from reindex_pipeline.partitions import documents
from reindex_pipeline.reindex import consistency
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore, vector_index

CHECK_ASSETS = {
    consistency.EXTRACTED_CHECK: EXTRACTED,
    consistency.POINTS_CHECK: EMBEDDINGS,
    consistency.GRAPH_CHECK: GRAPH_ENTITIES,
}
DESCRIPTIONS = {
    consistency.EXTRACTED_CHECK: "extraction ran for an indexed document; no rows left for a deleted one",
    consistency.POINTS_CHECK: "live Qdrant points = Postgres chunks, one slot, payload owner/workspace current",
    consistency.GRAPH_CHECK: "live graph chunks = Postgres chunks, Document node owner/workspace current",
}
BATCH = 200


@dg.multi_asset_check(
    name="document_consistency",
    specs=[
        dg.AssetCheckSpec(name, asset=asset, partitions_def=documents, description=DESCRIPTIONS[name])
        for name, asset in CHECK_ASSETS.items()
    ],
    can_subset=True,
    pool="qdrant",
)
def document_consistency(
    context: dg.AssetCheckExecutionContext,
    app_db: AppDatabase,
    qdrant: QdrantStore,
    graph: GraphDatabase,
    embeddings: EmbeddingModel,
):
    op = context.op_execution_context
    keys = list(op.partition_keys) if op.has_partition_key_range or op.has_partition_key else []
    selected = {key.name for key in context.selected_asset_check_keys}
    vectors = vector_index(qdrant, embeddings)
    if not vectors.client.collection_exists(vectors.collection):
        vectors.ensure_collection()
    failed = 0
    with graph.open() as graph_store, app_db.connect() as conn:
        for start in range(0, len(keys), BATCH):
            facts = consistency.gather(conn, keys[start : start + BATCH], vectors, graph_store)
            for doc_id, doc_facts in facts.items():
                for result in consistency.evaluate(doc_facts):
                    if result.check not in selected:
                        continue
                    failed += not result.passed
                    op.log_event(
                        dg.AssetCheckEvaluation(
                            asset_key=CHECK_ASSETS[result.check],
                            check_name=result.check,
                            passed=result.passed,
                            partition=doc_id,
                            description=result.description,
                            metadata={
                                "document_id": doc_id,
                                "problems": dg.MetadataValue.json(result.problems),
                                "chunks": doc_facts.chunks,
                            },
                        )
                    )
    context.log.info(f"checked {len(keys)} documents: {failed} failed check results")
    return
    yield  # results are logged per partition above


check_documents = dg.define_asset_job(
    "check_documents",
    selection=dg.AssetSelection.checks(document_consistency),
    description="Cross-store consistency of the selected document partitions (launch over a range or backfill).",
)


@dg.definitions
def check_definitions() -> dg.Definitions:
    return dg.Definitions(asset_checks=[document_consistency], jobs=[check_documents])
