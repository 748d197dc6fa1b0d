"""Cross-store consistency: partitioned asset checks, the store-wide audit, and a model switch behind an alias."""

from __future__ import annotations

import threading
import time

import dagster as dg
import psycopg
from qdrant_client import models

from reindex_pipeline.defs.checks import check_documents, document_consistency
from reindex_pipeline.embeddings import EmbeddingModel
from reindex_pipeline.reindex import consistency, store_audit
from reindex_pipeline.vectors import alias_target, collection_name, drop_unpublished, model_collections
from reindex_pipeline_tests.corpus_env import ASSET, USERS, Env, chunk_count

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _check(env: Env, keys: list[str]) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """Run the check job over a partition range; (partition, check) -> evaluation."""
    defs = dg.Definitions(
        assets=[ASSET], asset_checks=[document_consistency], jobs=[check_documents], resources=env.resources()
    )
    result = defs.resolve_job_def("check_documents").execute_in_process(
        instance=env.instance, tags={RANGE_START: keys[0], RANGE_END: keys[-1]}
    )
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return {(e.partition, e.check_name): e for e in evaluations}


def _drop_points(env: Env, document_id: str) -> None:
    env.vectors().client.delete(
        env.vectors().collection,
        points_selector=models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
            )
        ),
    )


def test_checks_fail_on_points_deleted_behind_the_pipelines_back_and_pass_after_repair(env: Env) -> None:
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin)
    eligible = env.eligible()
    keys = env.doc_ids
    results = _check(env, keys)
    assert len(results) == 3 * len(keys) and all(e.passed for e in results.values())

    victim = eligible[3]
    _drop_points(env, victim)
    results = _check(env, keys)
    failed = {k: e for k, e in results.items() if not e.passed}
    assert list(failed) == [(victim, consistency.POINTS_CHECK)]
    assert (
        failed[(victim, consistency.POINTS_CHECK)].description
        == f"0 live Qdrant points for {chunk_count(env, victim)} chunks (missing)"
    )

    # The store-wide audit names it too.
    with psycopg.connect(env.db_url) as conn:
        source = store_audit.scan_postgres(conn)
    with env.graph() as g:
        graph_chunks, graph_nodes = store_audit.scan_graph(g)
    points = store_audit.scan_points(env.vectors().client, env.vectors().collection, source)
    report = store_audit.compare(source, points, {}, graph_chunks, graph_nodes)
    assert report.differences == {"missing points": [victim]}

    # Repair = materialise that partition (one click in the UI): a forced reindex of that document.
    env.run(keys=[victim], requester_id=admin)
    assert all(e.passed for e in _check(env, keys).values())


def test_audit_finds_orphans_and_stale_access_left_by_changes_that_were_not_propagated(env: Env) -> None:
    env.run(requester_id=str(USERS["admin"].id))
    deleted, moved = env.eligible()[0], env.eligible()[1]
    with psycopg.connect(env.db_url) as conn:  # behind the pipeline's back: no trigger, no sensor
        conn.execute("ALTER TABLE documents DISABLE TRIGGER documents_source_change")
        conn.execute("UPDATE documents SET deleted_at = now() WHERE id = %s", (deleted,))
        conn.execute("UPDATE documents SET owner_id = %s WHERE id = %s", (str(USERS["carol"].id), moved))
        conn.execute("ALTER TABLE documents ENABLE TRIGGER documents_source_change")
        conn.commit()
        source = store_audit.scan_postgres(conn)
    with env.graph() as g:
        graph_chunks, graph_nodes = store_audit.scan_graph(g)
        facts = consistency.gather(psycopg.connect(env.db_url), [moved], env.vectors(), g)[moved]
    points = store_audit.scan_points(env.vectors().client, env.vectors().collection, source)
    report = store_audit.compare(source, points, {}, graph_chunks, graph_nodes)
    assert report.differences == {
        "orphaned points (document deleted)": [deleted],
        "orphaned graph nodes (document deleted)": [deleted],
        "stale payload owner/workspace": [moved],
        "stale graph owner/workspace": [moved],
    }
    problems = {r.check: r.description for r in consistency.evaluate(facts) if not r.passed}
    assert set(problems) == {consistency.POINTS_CHECK, consistency.GRAPH_CHECK}
    assert "(stale)" in problems[consistency.POINTS_CHECK]


def test_a_model_switch_keeps_readers_on_a_complete_collection(env: Env) -> None:
    admin = str(USERS["admin"].id)
    client = env.vectors().client
    old = collection_name(env.collection, "all-MiniLM-L6-v2")
    new = collection_name(env.collection, "all-MiniLM-L6-v2@128")
    env.run(requester_id=admin)
    assert alias_target(client, env.collection) == old
    eligible = env.eligible()
    total = sum(chunk_count(env, d) for d in eligible)

    seen: list[tuple[str, int]] = []
    stop = threading.Event()

    def read() -> None:  # a reader always queries the alias
        while not stop.is_set():
            target = alias_target(client, env.collection)
            seen.append((target, client.count(env.collection, exact=True).count))
            time.sleep(0.02)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        smaller = env.resources(embeddings=EmbeddingModel(dimensions=128))
        half = eligible[: len(eligible) // 2]
        env.run(keys=half, document_ids=half, requester_id=admin, resources=smaller)
        assert alias_target(client, env.collection) == old  # the new collection is not complete yet
        env.run(requester_id=admin, resources=smaller, stale_only=True)  # only what is not in it yet
        assert alias_target(client, env.collection) == new
    finally:
        stop.set()
        reader.join()
    assert {t for t, _ in seen} <= {old, new} and len(seen) > 5
    assert all(count == total for _, count in seen), "a reader saw a partial collection"
    assert client.get_collection(new).config.params.vectors.size == 128
    assert drop_unpublished(client, env.collection) == [old]
    assert model_collections(client, env.collection) == [new]
