"""Runs in parallel are safe: four runs at once over documents that share vendors, customers, currencies and
dates (FalkorDB and Postgres; extraction and graph, the phases that do not open local Qdrant) leave the same
graph as one run, with no entity twice and no mention lost, and every document indexed and audited once."""

from __future__ import annotations

import os
import threading
from collections import Counter

import dagster as dg
import psycopg

from reindex_pipeline.defs.ocr import preserved_ocr_output
from reindex_pipeline.graph import queries
from reindex_pipeline.resources import GraphDatabase
from reindex_pipeline_tests.corpus_env import ASSET, USERS, Env

PHASES = ["extraction", "graphrag_indexing"]

ENTITY_KEYS = "MATCH (e:Entity) RETURN e.key AS key"
DOCUMENT_FACTS = """
MATCH (d:Document {id: $document_id})-[:HAS_CHUNK]->(ch:Chunk)-[:MENTIONS]->(e:Entity)
WHERE ch.pass_id = d.pass_id
RETURN DISTINCT e.key AS key
"""


def _graph(name: str) -> GraphDatabase:
    return GraphDatabase(falkordb_port=int(os.environ["FALKORDB_PORT"]), graph_name=name)


def _picture(env: Env, graph_name: str, documents: list[str]) -> tuple[Counter, dict[str, set], set]:
    """Entity keys with their node counts, each document's live mentions, and every relation (no pass ids)."""
    with _graph(graph_name).open() as store:
        keys = Counter(row["key"] for row in store.run(ENTITY_KEYS))
        mentions = {d: {r["key"] for r in store.run(DOCUMENT_FACTS, {"document_id": d})} for d in documents}
        relations = {
            (d, r["source"], r["type"], r["target"])
            for d in documents
            for statement in queries.DOCUMENT_RELATIONS.values()
            for r in store.run(statement, {"document_id": d})
        }
    return keys, mentions, relations


def test_four_parallel_runs_leave_the_graph_one_run_leaves(env: Env) -> None:
    sequential, parallel = f"{env.graph_name}_one", f"{env.graph_name}_four"
    try:
        _compare_parallel_with_sequential(env, sequential, parallel)
    finally:
        for name in (sequential, parallel):
            with _graph(name).open() as store:
                store.delete_all()


def _compare_parallel_with_sequential(env: Env, sequential: str, parallel: str) -> None:
    admin = str(USERS["admin"].id)
    eligible = env.eligible()
    env.run(requester_id=admin, phases=PHASES, resources=env.resources(graph=_graph(sequential)))

    slices = [env.doc_ids[i::4] for i in range(4)]  # interleaved: every run meets every shared entity
    start = threading.Barrier(4)
    results: list[dg.ExecuteInProcessResult | BaseException] = []

    def run(keys: list[str]) -> None:
        # Each run has its own instance, created and disposed in its own thread (as a run worker has).
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("documents", env.doc_ids)
            config = {"requester_id": admin, "phases": PHASES, "document_ids": keys}
            start.wait()
            try:
                results.append(
                    dg.materialize(
                        [ASSET, preserved_ocr_output],
                        selection=[ASSET],
                        instance=instance,
                        resources=env.resources(graph=_graph(parallel)),
                        run_config={"ops": {"reindex_documents": {"config": config}}},
                        tags={
                            "dagster/asset_partition_range_start": env.doc_ids[0],
                            "dagster/asset_partition_range_end": env.doc_ids[-1],
                        },
                    )
                )
            except BaseException as exc:  # noqa: BLE001 - reported below
                results.append(exc)

    threads = [threading.Thread(target=run, args=(keys,)) for keys in slices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == 4 and all(isinstance(r, dg.ExecuteInProcessResult) and r.success for r in results)

    one_keys, one_mentions, one_relations = _picture(env, sequential, eligible)
    four_keys, four_mentions, four_relations = _picture(env, parallel, eligible)
    assert [k for k, n in four_keys.items() if n > 1] == []  # no entity twice
    assert set(four_keys) == set(one_keys)
    assert four_mentions == one_mentions and all(four_mentions.values())  # no mention lost
    assert four_relations == one_relations
    shared = [k for k in one_keys if sum(k in m for m in one_mentions.values()) > 1]
    assert len(shared) >= 5, "the corpus should share entities between documents"

    with psycopg.connect(env.db_url) as conn:
        statuses = Counter(
            r[0] for r in conn.execute("SELECT index_status FROM documents WHERE id = ANY(%s::uuid[])", (eligible,))
        )
        completed = conn.execute(
            "SELECT details->>'run_id', (details->>'completed')::int FROM audit_events WHERE kind = 'reindex.completed'"
        ).fetchall()
    assert statuses == {"indexed": len(eligible)}
    parallel_runs = {r.run_id for r in results}
    assert sum(n for run_id, n in completed if run_id in parallel_runs) == len(eligible)
