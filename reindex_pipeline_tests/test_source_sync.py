"""Deletions and access changes reach Qdrant, the graph and Postgres after one sensor tick (real stores)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import dagster as dg
import psycopg

from reindex_pipeline.defs.source_sync import JOB_NAME, propagate_source_changes, source_changes_sensor
from reindex_pipeline.embeddings import LocalEmbedder
from reindex_pipeline.graph import queries
from reindex_pipeline.partitions import apply_requests
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore
from reindex_pipeline_tests.corpus_env import USERS, Env, chunk_count


class BrokenGraphDatabase(GraphDatabase):
    """A real FalkorDB whose purge of document nodes fails (after chunks and relations went)."""

    @contextmanager
    def open(self):
        with super().open() as store:
            real_run = store.run

            def run(statement, params=None):
                if statement == queries.PURGE_DOCUMENTS:
                    raise ConnectionError("graph connection reset")
                return real_run(statement, params)

            store.run = run
            yield store


def _resources(env: Env, graph: GraphDatabase | None = None) -> dict:
    return {
        "app_db": AppDatabase(url=env.db_url),
        "qdrant": QdrantStore(path=os.environ["QDRANT_PATH"], collection=env.collection),
        "graph": graph or GraphDatabase(falkordb_port=int(os.environ["FALKORDB_PORT"]), graph_name=env.graph_name),
    }


def _tick(env: Env, cursor: str | None = None, graph: GraphDatabase | None = None) -> tuple[str | None, list]:
    """One sensor evaluation, its partition requests applied and its runs executed, as the daemon does."""
    resources = _resources(env, graph)
    context = dg.build_sensor_context(instance=env.instance, cursor=cursor, resources=resources)
    result = source_changes_sensor(context)
    apply_requests(env.instance, result.dynamic_partitions_requests)
    job = dg.Definitions(jobs=[propagate_source_changes], resources=resources).resolve_job_def(JOB_NAME)
    runs = [
        job.execute_in_process(instance=env.instance, tags=r.tags, raise_on_error=False)
        for r in result.run_requests or []
    ]
    return result.cursor, runs


def _sql(env: Env, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _search(env: Env, text: str) -> set[str]:
    """Document ids of the top hits for ``text`` in the live collection."""
    vector = LocalEmbedder().embed([text])[0]
    hits = env.vectors().client.query_points(env.vectors().collection, query=vector, limit=5).points
    return {h.payload["document_id"] for h in hits}


def _shared_entity(env: Env, victim: str) -> str:
    """An entity the victim mentions that another document mentions too."""
    with env.graph() as g:
        rows = g.run(
            "MATCH (c:Chunk {document_id: $d})-[:MENTIONS]->(e:Entity)<-[:MENTIONS]-(o:Chunk) "
            "WHERE o.document_id <> $d RETURN DISTINCT e.key AS key",
            {"d": victim},
        )
    assert rows, "the demo corpus shares entities (currencies, vendors) between documents"
    return rows[0]["key"]


def test_a_deleted_document_is_purged_from_every_store_after_one_tick(env: Env) -> None:
    env.run(requester_id=str(USERS["admin"].id))
    eligible = env.eligible()
    victim, hard_deleted, other = eligible[0], eligible[1], eligible[2]
    victim_text = _sql(env, "SELECT chunk_content FROM chunks WHERE document_id = %s AND chunk_index = 0", (victim,))[
        0
    ][0]
    assert victim in _search(env, victim_text)
    shared = _shared_entity(env, victim)
    others_before = {d: env.snapshot(d) for d in eligible[2:8]}

    _sql(env, "UPDATE documents SET deleted_at = now() WHERE id = %s", (victim,))
    _sql(env, "DELETE FROM documents WHERE id = %s", (hard_deleted,))
    cursor, runs = _tick(env)

    assert len(runs) == 1 and runs[0].success
    for gone in (victim, hard_deleted):
        snap = env.snapshot(gone)
        assert snap["points"] == [] and env.vectors().count(gone) == 0
        assert snap["graph"] == {"nodes": [], "relations": []}
        assert snap["derived"] == {"data": [], "line_items": []}
        assert gone not in env.instance.get_dynamic_partitions("documents")
    assert victim not in _search(env, victim_text)
    with env.graph() as g:
        assert g.run("MATCH (e:Entity {key: $k}) RETURN count(e) AS n", {"k": shared}) == [{"n": 1}]
    assert {d: env.snapshot(d) for d in eligible[2:8]} == others_before
    assert chunk_count(env, other) == env.vectors().count(other)
    purged = _sql(
        env,
        "SELECT details->>'document_id', details->>'reason' FROM audit_events "
        "WHERE kind = 'reindex.purged' ORDER BY details->>'document_id'",
    )
    assert sorted(purged) == sorted([(victim, "deleted"), (hard_deleted, "row deleted")])
    assert _sql(
        env, "SELECT to_status FROM document_status_log WHERE document_id = %s ORDER BY id DESC LIMIT 1", (victim,)
    ) == [("purged",)]

    # Idle: nothing due, no run; the cursor moved past the purges.
    cursor, runs = _tick(env, cursor)
    assert runs == []


def test_an_interrupted_purge_is_visible_and_completes_on_a_later_tick(env: Env) -> None:
    env.run(requester_id=str(USERS["admin"].id))
    victim = env.eligible()[4]
    _sql(env, "UPDATE documents SET deleted_at = now() WHERE id = %s", (victim,))

    broken = BrokenGraphDatabase(falkordb_port=int(os.environ["FALKORDB_PORT"]), graph_name=env.graph_name)
    cursor, runs = _tick(env, graph=broken)
    assert len(runs) == 1 and not runs[0].success
    assert "the graph" in runs[0].failure_data_for_node("propagate_changes").user_failure_data.description
    ((attempts, error, done),) = _sql(
        env, "SELECT attempts, last_error, done_at FROM source_changes WHERE document_id = %s", (victim,)
    )
    assert attempts == 1 and "graph connection reset" in error and done is None
    assert env.snapshot(victim)["points"] == []  # Qdrant went first; the rest is still to do
    assert env.snapshot(victim)["derived"]["data"]

    _sql(env, "UPDATE source_changes SET next_attempt_at = now()")  # the backoff (2 s) has passed
    cursor, runs = _tick(env, cursor)
    assert len(runs) == 1 and runs[0].success
    snap = env.snapshot(victim)
    assert snap["graph"] == {"nodes": [], "relations": []} and snap["derived"] == {"data": [], "line_items": []}
    assert _sql(env, "SELECT count(*) FROM source_changes WHERE done_at IS NULL") == [(0,)]


def test_an_owner_change_reaches_the_payload_and_the_graph_without_embedding(env: Env) -> None:
    env.run(requester_id=str(USERS["admin"].id))
    doc = env.eligible()[0]
    carol, finance = str(USERS["carol"].id), _sql(env, "SELECT id::text FROM workspaces ORDER BY name LIMIT 1")[0][0]
    vectors_before = {str(p.id): p.vector for p in env.vectors().points(doc)}
    neighbour_before = env.snapshot(env.eligible()[1])

    _sql(env, "UPDATE documents SET owner_id = %s, workspace_id = %s WHERE id = %s", (carol, finance, doc))
    _, runs = _tick(env)

    assert len(runs) == 1 and runs[0].success
    points = env.vectors().points(doc)
    assert {p.payload["owner_id"] for p in points} == {carol}
    assert {p.payload["workspace_id"] for p in points} == {finance}
    assert {str(p.id): p.vector for p in points} == vectors_before  # same points, same vectors: no embedding
    with env.graph() as g:
        props = g.run(queries.GET_DOCUMENT, {"document_id": doc})[0]["properties"]
    assert props["owner_id"] == carol and props["workspace_id"] == finance
    assert env.snapshot(env.eligible()[1]) == neighbour_before
