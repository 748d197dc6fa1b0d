"""The reindex: three document-partitioned assets materialised by one step per run.

``extracted_data`` (Postgres), ``chunk_embeddings`` (Qdrant) and ``graph_entities`` (graph) all derive
from ``preserved_ocr_output``. Reindex = re-materialise selected document partitions. A ranged run
(a UI backfill) handles many documents in one run, up to ``max_documents_per_run``; every document
is checked for eligibility and the requester's rights before anything is written. The run's lifecycle
(requester, selection, progress, audit) is ``reindex.run.ReindexRun``'s; this step turns its outcomes into
Dagster events.
"""

import os
import time
from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from reindex_pipeline.db import documents as db
from reindex_pipeline.db.heartbeats import Heartbeat
from reindex_pipeline.domain.fingerprints import ALL_PHASES, EXTRACTION, GRAPH, VECTORS, Producers
from reindex_pipeline.domain.ids import is_uuid
from reindex_pipeline.domain.queue_rules import ATTEMPT_TAG, REQUEST_TAG
from reindex_pipeline.domain.selection import REASON_TEXT, Requester, RequesterRefused, Selection
from reindex_pipeline.embeddings import EmbeddingModel
from reindex_pipeline.partitions import documents
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.reindex.run import ReindexRun, RunAsk
from reindex_pipeline.reindex.runner import ReindexRunner
from reindex_pipeline.resources import (
    AppDatabase,
    GraphDatabase,
    QdrantStore,
    ReindexPolicy,
    build_resources,
    reindex_stores,
)
from reindex_pipeline.settings import Settings
from reindex_pipeline.vectors import publish

#: Dagster's tags for a materialisation's data and code versions (what the UI's staleness reads), and the
#: tag of a run launched by a backfill.
DATA_VERSION_TAG, CODE_VERSION_TAG = "dagster/data_version", "dagster/code_version"
BACKFILL_TAG = "dagster/backfill"

OCR = dg.AssetKey("preserved_ocr_output")
EXTRACTED = dg.AssetKey("extracted_data")
EMBEDDINGS = dg.AssetKey("chunk_embeddings")
GRAPH_ENTITIES = dg.AssetKey("graph_entities")
PHASE_OF = {EXTRACTED: EXTRACTION, EMBEDDINGS: VECTORS, GRAPH_ENTITIES: GRAPH}
ASSET_OF = {phase: key for key, phase in PHASE_OF.items()}


class ReindexConfig(dg.Config):
    """Who asked and what for. Every field is optional so a UI backfill runs with no config at all."""

    requester_id: str | None = Field(default=None, description="user id; empty: the deployment's operator")
    workspace_id: str | None = Field(default=None, description="limit to one workspace; empty: all")
    document_ids: list[str] | None = Field(default=None, description="limit to these documents")
    phases: list[str] = Field(default=list(ALL_PHASES), description="extraction, vector_indexing, graphrag_indexing")
    dry_run: bool = Field(default=False, description="preview the selection, write nothing")
    stale_only: bool = Field(
        default=False,
        description="skip each phase whose inputs and producer (fingerprint) "
        "are unchanged since it last succeeded; false: reindex every selected phase",
    )


def _run_documents(context: dg.AssetExecutionContext, config: ReindexConfig) -> list[str]:
    """The documents a run is for: its partitions (a backfill, a partition's Materialize), or, in a run without
    partitions (a queue request's), the ``document_ids`` of its config."""
    if context.has_partition_key_range or context.has_partition_key:
        return list(context.partition_keys)
    if config.document_ids is None:
        raise dg.Failure("a run without partitions names its documents in document_ids", allow_retries=False)
    return list(config.document_ids)


def build_reindex_asset(
    max_documents_per_run: int, producers: Producers | None = None, pool: str = "qdrant"
) -> dg.AssetsDefinition:
    """``producers`` (the deployment's extractor, embedding model and graph rules) become the assets'
    code versions, so the UI marks partitions materialised by an older producer as stale."""
    producers = producers or Producers(extractor="unknown", embedding_model="unknown")
    spec = dict(partitions_def=documents, group_name="derived", skippable=True)

    @dg.multi_asset(
        name="reindex_documents",
        specs=[
            dg.AssetSpec(
                EXTRACTED,
                deps=[OCR],
                kinds={"postgres"},
                code_version=producers.code_version(EXTRACTION),
                **spec,
                description="documents_data, documents_data_line_items and document metadata",
            ),
            dg.AssetSpec(
                EMBEDDINGS,
                deps=[OCR],
                kinds={"qdrant"},
                code_version=producers.code_version(VECTORS),
                **spec,
                description="one Qdrant point per preserved chunk, deterministic ids",
            ),
            dg.AssetSpec(
                GRAPH_ENTITIES,
                deps=[OCR, EXTRACTED],
                kinds={"neo4j"},
                code_version=producers.code_version(GRAPH),
                **spec,
                description="(Document)-[:HAS_CHUNK]->(Chunk)-[:MENTIONS]->(Entity) and entity relations",
            ),
        ],
        partitions_def=documents,
        can_subset=True,
        pool=pool,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=max_documents_per_run),
    )
    def reindex_documents(
        context: dg.AssetExecutionContext,
        config: ReindexConfig,
        app_db: AppDatabase,
        qdrant: QdrantStore,
        graph: GraphDatabase,
        extractor: Extractor,
        embeddings: EmbeddingModel,
        reindex_policy: ReindexPolicy,
    ):
        selected = {PHASE_OF[k] for k in context.selected_asset_keys}
        unknown = set(config.phases) - set(ALL_PHASES)
        if unknown:
            raise dg.Failure(f"unknown phases {sorted(unknown)}; use {list(ALL_PHASES)}")
        phases = [p for p in ALL_PHASES if p in selected and p in config.phases]
        run_id = context.run.run_id
        ask = RunAsk(
            run_id=run_id,
            requester_id=config.requester_id,
            operator_id=reindex_policy.operator_user_id,
            workspace_id=config.workspace_id,
            document_ids=config.document_ids,
            phases=phases,
            stale_only=config.stale_only,
            request_id=context.run.tags.get(REQUEST_TAG),
            attempt=context.run.tags.get(ATTEMPT_TAG),
        )
        run = ReindexRun(app_db.connect, ask)
        keys = _run_documents(context, config)
        with app_db.connect() as conn:
            dead_runs = ended_runs(context.instance, db.indexing_runs(conn, keys) - {run_id})
        if dead_runs:
            context.log.warning(
                f"Taking over documents left 'indexing' by {len(dead_runs)} run(s) that ended without releasing "
                f"them: {', '.join(sorted(dead_runs))}"
            )
        try:
            selection = run.open(keys, dead_runs, dry_run=config.dry_run)
        except RequesterRefused as exc:
            context.log.error(f"Reindex refused: {exc}")
            raise dg.Failure(description=f"Reindex refused: {exc}", allow_retries=False) from None
        requester = run.requester
        assert requester is not None
        context.log.info(f"{selection.confirmation()} Skipped: {selection.skipped_summary()}.")
        # Partitions left alone by design are reported as such, not as failures of the backfill.
        yield from _left_alone(selection, phases, run.recorded, requester, dry_run=config.dry_run)
        if config.dry_run:
            context.log.info(f"Dry run: nothing written; {len(selection.eligible)} documents would be reindexed.")
            return
        run.begin()

        # A run worker killed without a word stops beating; reindex_run_watch then fails its run.
        with (
            Heartbeat(app_db.url, run_id),
            reindex_stores(app_db, extractor, embeddings, qdrant, graph, phases) as stores,
        ):
            filenames = {d.id: d.filename for d in selection.eligible}
            in_backfill = BACKFILL_TAG in context.run.tags
            events_s = 0.0  # time Dagster spends storing this step's materialisations
            started = time.monotonic()
            warnings: list[str] = []  # the runner works in a background thread; Dagster logs from this one
            runner = ReindexRunner(
                stores, run_id, phases, warnings.append, force=not config.stale_only, dead_runs=dead_runs
            )
            for outcome in run.reindex(runner):
                while warnings:
                    context.log.warning(warnings.pop(0))
                if not outcome.ok:
                    # On the partition's timeline in the UI: a queue run plans no partitions, so Dagster would not
                    # mark this one failed. An observation, not a materialisation: the previous index stays.
                    for phase in phases:
                        yield dg.AssetObservation(
                            asset_key=ASSET_OF[phase],
                            partition=outcome.document_id,
                            metadata={
                                "outcome": "failed",
                                "failed_phase": outcome.failed_phase or "",
                                "error": (outcome.error or "")[:500],
                                "filename": filenames.get(outcome.document_id, ""),
                                "kept": "the previous index of this document",
                            },
                        )
                    continue
                for phase in outcome.unchanged:
                    if in_backfill:  # a backfill counts a partition it targeted and got nothing for as failed
                        yield _unchanged(phase, outcome.document_id, outcome.fingerprints[phase], requester)
                for phase, metadata in outcome.metadata.items():
                    handed = time.monotonic()
                    yield dg.AssetMaterialization(
                        asset_key=ASSET_OF[phase],
                        partition=outcome.document_id,
                        metadata={
                            "outcome": "reindexed",
                            "filename": filenames.get(outcome.document_id, ""),
                            **metadata,
                            "requester": requester.username,
                            "requester_id": requester.id,
                            "fingerprint": outcome.fingerprints[phase],
                        },
                        tags={
                            DATA_VERSION_TAG: outcome.fingerprints[phase],
                            CODE_VERSION_TAG: runner.producers.code_version(phase),
                        },
                    )
                    events_s += time.monotonic() - handed

        for warning in warnings:
            context.log.warning(warning)
        if stores.vectors is not None:
            with app_db.connect() as conn:
                missing = db.missing_vectors(conn, stores.vectors.collection, runner.producers.embedding_model)
            context.log.info(publish(stores.vectors.client, qdrant.collection, stores.vectors.collection, missing))
        counts = run.finish(time.monotonic() - started, events_s, getattr(stores.embedder, "usage", None))
        usage, failed = run.counts.usage, run.progress.failures
        context.log.info(
            f"{counts['completed']} of {len(selection.eligible)} documents reindexed, {len(failed)} failed, "
            f"{counts['unchanged_documents']} unchanged, in {counts['duration_s']} s "
            f"({counts['event_log_s']} s of it recording materialisations in Dagster's event log)."
            + (f" Model calls: {usage.summary()}." if usage.calls else "")
        )
        if usage.calls:  # the run's cost, on the run itself (the UI's run list and page show its tags)
            context.instance.add_run_tags(run_id, {f"reindex/{k}": str(v) for k, v in usage.as_dict().items()})
        if failed:
            raise dg.Failure(
                description=f"{len(failed)} of {len(selection.eligible)} documents failed; the others completed. "
                "Failed documents kept their previous index. Retry re-runs only the failed ones.",
                metadata={
                    **{k: v for k, v in counts.items() if not isinstance(v, dict)},
                    "failed_documents": dg.MetadataValue.json(failed),
                },
            )

    return reindex_documents


def _left_alone(
    selection: Selection, phases: list[str], recorded: dict[str, dict], requester: Requester, dry_run: bool
) -> Iterator[dg.AssetMaterialization]:
    """A materialisation per phase of every partition the run leaves alone by design: skipped (with the
    reason), or, in a dry run, every one. Its data version stays the one recorded when the phase last really
    ran, so nothing downstream turns stale; its metadata says nothing was written, and why."""
    left = [(s.id, s.filename, s.reason, REASON_TEXT.get(s.reason, s.reason)) for s in selection.skipped]
    if dry_run:
        left += [
            (d.id, d.filename, "dry_run", "dry run: would be reindexed, nothing written") for d in selection.eligible
        ]
    for document_id, filename, reason, text in left:
        for phase in phases:
            version = recorded.get(document_id, {}).get(phase)
            yield dg.AssetMaterialization(
                asset_key=ASSET_OF[phase],
                partition=document_id,
                description=f"not reindexed: {text}",
                metadata={
                    "outcome": "skipped",
                    "reason": reason,
                    "why": text,
                    "filename": filename,
                    "requester": requester.username,
                    "requester_id": requester.id,
                },
                tags={DATA_VERSION_TAG: version} if version else None,
            )


def _unchanged(phase: str, document_id: str, fingerprint: str, requester: Requester) -> dg.AssetMaterialization:
    """A phase a stale-only run left alone because its inputs and producer are unchanged."""
    return dg.AssetMaterialization(
        asset_key=ASSET_OF[phase],
        partition=document_id,
        description="not reindexed: unchanged since it was last built (stale-only run)",
        metadata={"outcome": "unchanged", "requester": requester.username, "requester_id": requester.id},
        tags={DATA_VERSION_TAG: fingerprint},
    )


def ended_runs(instance: dg.DagsterInstance, run_ids: set[str]) -> frozenset[str]:
    """Of these runs, those this instance knows have finished (success, failure, canceled): a document one of
    them left ``indexing`` was abandoned (its worker was killed). Runs the instance does not know are left to
    the claim's lease."""
    ended = set()
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id) if is_uuid(run_id) else None
        if run is not None and run.is_finished:
            ended.add(run_id)
    return frozenset(ended)


@dg.definitions
def reindex_definitions() -> dg.Definitions:
    """The reindex asset; its resources are wired with the others in ``defs/resources.py``."""
    resources = build_resources(os.environ)
    producers = Producers(extractor=resources["extractor"].identity, embedding_model=resources["embeddings"].identity)
    settings = Settings.from_env(os.environ)
    asset = build_reindex_asset(settings.max_documents_per_run, producers, pool=settings.reindex_pool)
    return dg.Definitions(assets=[asset])
