"""The reindex assets on a real instance against the embedded Postgres, Qdrant (local) and FalkorDB."""

from __future__ import annotations

import json
import os
import threading
import time

import psycopg
from psycopg.types.json import Jsonb

from reindex_pipeline.db import documents as db
from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.embeddings import EmbeddingModel
from reindex_pipeline.graph import queries
from reindex_pipeline.reindex import consistency
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.resources import QdrantStore
from reindex_pipeline.vectors import VectorIndex, collection_name
from reindex_pipeline_tests.corpus_env import (
    ASSET,
    USERS,
    Env,
    FailingEmbeddingModel,
    FailingGraphDatabase,
    chunk_count,
    reindexed_events,
)
from reindex_pipeline_tests.fake_openai import FakeOpenAI, completion, embeddings_answer


def test_admin_reindexes_every_eligible_document_user_only_theirs(env: Env) -> None:
    bob = USERS["bob"].id
    everything_before = {d: env.snapshot(d) for d in env.doc_ids}

    env.run(requester_id=str(bob))
    bobs = set(env.eligible(owner=str(bob)))
    assert bobs
    for doc_id in env.doc_ids:
        after = env.snapshot(doc_id)
        if doc_id in bobs:
            assert after["derived"]["data"] and after["points"] and after["graph"]["nodes"]
        else:  # foreign, unowned and ineligible documents: byte-for-byte unchanged in all three stores
            assert after == everything_before[doc_id], doc_id

    env.run(requester_id=str(USERS["admin"].id))
    for doc_id in env.eligible():
        snap = env.snapshot(doc_id)
        assert len(snap["points"]) == chunk_count(env, doc_id) and snap["derived"]["data"]
    with psycopg.connect(env.db_url) as conn:
        audit = conn.execute("SELECT kind, details FROM audit_events ORDER BY id").fetchall()
    kinds = [k for k, _ in audit]
    assert kinds == ["reindex.initiated", "reindex.completed", "reindex.initiated", "reindex.completed"]
    assert audit[0][1]["scope"] == "owned_documents" and audit[0][1]["user_role"] == "user"
    assert audit[2][1]["scope"] == "all_documents" and audit[3][1]["completed"] == len(env.eligible())
    assert audit[0][1]["skipped"]["not_owner"] > 0


def test_new_extraction_version_reaches_every_eligible_document_and_nothing_else(env: Env) -> None:
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin)
    before = {d: env.snapshot(d) for d in env.doc_ids}
    env.run(requester_id=admin, resources=env.resources(version="rules-2.0"), phases=["extraction"])
    eligible = set(env.eligible())
    for doc_id in env.doc_ids:
        after = env.snapshot(doc_id)
        assert after["ocr"] == before[doc_id]["ocr"] and after["chunks"] == before[doc_id]["chunks"]
        assert after["points"] == before[doc_id]["points"] and after["graph"] == before[doc_id]["graph"]
        versions = {row["extractor_version"] for row in after["derived"]["data"]}
        assert versions == ({"rules-2.0"} if doc_id in eligible else set())


def test_two_reindexes_in_a_row_leave_no_duplicates_or_leftovers(env: Env) -> None:
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin)
    first = {d: env.snapshot(d)["derived"] for d in env.eligible()}
    env.run(requester_id=admin)
    index = env.vectors()
    with env.graph() as g:
        for doc_id in env.eligible():
            chunks = chunk_count(env, doc_id)
            assert index.count(doc_id) == chunks
            assert len({str(p.id) for p in index.points(doc_id)}) == chunks
            assert g.run(queries.COUNT_DOCUMENT_GRAPH, {"document_id": doc_id})[0]["chunks"] == chunks
            assert env.snapshot(doc_id)["derived"] == first[doc_id]
        total_chunks = g.run("MATCH (c:Chunk) RETURN count(c) AS n")[0]["n"]
    assert total_chunks == sum(chunk_count(env, d) for d in env.eligible())


def test_a_failing_document_keeps_its_old_index_and_the_others_complete(env: Env) -> None:
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin)
    eligible = env.eligible()
    victim_vec, victim_graph = eligible[3], eligible[7]
    before = {d: env.snapshot(d) for d in (victim_vec, victim_graph)}
    with psycopg.connect(env.db_url) as conn:
        poison = conn.execute(
            "SELECT chunk_content FROM chunks WHERE document_id = %s AND chunk_index = 0", (victim_vec,)
        ).fetchone()[0]

    resources = env.resources(
        version="rules-3.0",
        embeddings=FailingEmbeddingModel(poison=poison),
        graph=FailingGraphDatabase(
            falkordb_port=int(os.environ["FALKORDB_PORT"]), graph_name=env.graph_name, poison_document=victim_graph
        ),
    )
    result = env.run(requester_id=admin, resources=resources, raise_on_error=False)
    assert not result.success

    for victim, phase in ((victim_vec, "vector_indexing"), (victim_graph, "graphrag_indexing")):
        assert env.snapshot(victim) == before[victim], f"{victim} lost its previous index"
        with psycopg.connect(env.db_url) as conn:
            status, details = conn.execute(
                "SELECT index_status, indexing_details FROM documents WHERE id = %s", (victim,)
            ).fetchone()
            logged = conn.execute(
                "SELECT to_status, details FROM document_status_log WHERE document_id = %s ORDER BY id DESC LIMIT 1",
                (victim,),
            ).fetchone()
        assert status == "indexed"
        assert details["last_failure"]["phase"] == phase and details[phase]["status"] == "failed"
        assert logged[0] == "indexed" and logged[1]["outcome"] == "failed"
    for doc_id in set(eligible) - {victim_vec, victim_graph}:
        versions = {r["extractor_version"] for r in env.snapshot(doc_id)["derived"]["data"]}
        assert versions == {"rules-3.0"}
    materialized = {e.partition for e in reindexed_events(result)}
    assert victim_vec not in materialized and victim_graph not in materialized
    assert len(materialized) == len(eligible) - 2
    failed = result.failure_data_for_node("reindex_documents").user_failure_data.metadata["failed_documents"].value
    assert sorted(f["document_id"] for f in failed) == sorted([victim_vec, victim_graph])

    # The retry (what a backfill's "retry failed" launches) runs only the failed documents and completes them.
    others_before = {d: env.snapshot(d) for d in eligible[:3]}
    retry = env.run(
        keys=[victim_vec, victim_graph],
        requester_id=admin,
        document_ids=[victim_vec, victim_graph],
        resources=env.resources(version="rules-3.0"),
    )
    assert {e.partition for e in reindexed_events(retry)} == {victim_vec, victim_graph}
    for victim in (victim_vec, victim_graph):
        assert {r["extractor_version"] for r in env.snapshot(victim)["derived"]["data"]} == {"rules-3.0"}
    assert {d: env.snapshot(d) for d in eligible[:3]} == others_before


def test_a_document_postgres_refuses_fails_alone_and_the_next_ones_in_its_batch_complete(env: Env) -> None:
    """A batch's documents share one connection for their transactions: one rolled back by the database leaves
    the connection usable for the next document, and its own old extracted rows in place."""
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin, resources=env.resources(version="rules-3.0"))
    eligible = env.eligible()
    victim = eligible[3]
    before = env.snapshot(victim)["derived"]["data"]
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_victim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.document_id::text = TG_ARGV[0] THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_victim BEFORE INSERT ON documents_data FOR EACH ROW "
            f"EXECUTE FUNCTION refuse_victim('{victim}')"
        )
    try:
        result = env.run(requester_id=admin, resources=env.resources(version="rules-3.1"), raise_on_error=False)
    finally:
        with psycopg.connect(env.db_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse_victim ON documents_data")
            conn.execute("DROP FUNCTION refuse_victim()")
    assert not result.success
    failed = result.failure_data_for_node("reindex_documents").user_failure_data.metadata["failed_documents"].value
    assert [(f["document_id"], f["phase"]) for f in failed] == [(victim, "extraction")]
    assert "refused by the test trigger" in failed[0]["error"]
    assert env.snapshot(victim)["derived"]["data"] == before
    for doc_id in eligible[:3] + eligible[4:]:  # before and after it, in its batch and the next ones
        assert {r["extractor_version"] for r in env.snapshot(doc_id)["derived"]["data"]} == {"rules-3.1"}, doc_id


def test_a_failed_graph_cleanup_keeps_the_documents_done_and_their_next_pass_clears_it(env: Env) -> None:
    """The graph cleanup of earlier passes runs for a batch of documents after their new passes went live.
    If it fails, the documents are done (readers see the new passes), the consistency check names the
    leftovers, and the documents' next pass removes them."""
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin)
    docs = env.eligible()[:4]
    broken = FailingGraphDatabase(
        falkordb_port=int(os.environ["FALKORDB_PORT"]), graph_name=env.graph_name, fail_cleanup=True
    )
    result = env.run(keys=docs, requester_id=admin, document_ids=docs, resources=env.resources(graph=broken))
    assert result.success and {e.partition for e in reindexed_events(result)} == set(docs)

    def problems() -> dict[str, list[str]]:
        with psycopg.connect(env.db_url) as conn, env.graph() as g:
            facts = consistency.gather(conn, docs, env.vectors(), g)
        return {d: [r.description for r in consistency.evaluate(f) if not r.passed] for d, f in facts.items()}

    found = problems()
    assert all(any("of an old pass (leftovers)" in p for p in found[d]) for d in docs), found
    env.run(keys=docs, requester_id=admin, document_ids=docs)
    assert problems() == {d: [] for d in docs}


def test_a_reader_never_sees_fewer_points_during_a_reindex(env: Env) -> None:
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin, phases=["vector_indexing"])
    watched = env.eligible()[:5]
    index = env.vectors()
    baseline = {d: index.count(d) for d in watched}
    seen: dict[str, int] = dict(baseline)
    polls: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def poll() -> None:
        try:
            while not stop.is_set():
                for d in watched:
                    seen[d] = min(seen[d], index.count(d))
                polls.append(1)
                time.sleep(0.01)  # leave the writer room: local-mode calls take turns
        except BaseException as exc:  # a dead reader would make this test pass vacuously
            errors.append(exc)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        env.run(requester_id=admin, phases=["vector_indexing"])
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert len(polls) >= 10, "the reader barely ran during the reindex"
    assert seen == baseline


def test_dry_run_refusals_and_foreign_documents_write_nothing(env: Env) -> None:
    before = {d: env.snapshot(d) for d in env.doc_ids}
    env.run(requester_id=str(USERS["admin"].id), dry_run=True)
    refused = env.run(requester_id=str(USERS["erin"].id), raise_on_error=False)  # inactive
    assert not refused.success
    assert "erin is inactive" in str(refused.failure_data_for_node("reindex_documents").error.message)
    no_operator = env.run(raise_on_error=False)
    assert "REINDEX_OPERATOR_USER_ID" in str(no_operator.failure_data_for_node("reindex_documents").error.message)
    foreign = [d for d in env.eligible() if d not in env.eligible(owner=str(USERS["bob"].id))][:3]
    env.run(requester_id=str(USERS["bob"].id), document_ids=foreign)
    for doc_id in env.doc_ids:
        assert env.snapshot(doc_id) == before[doc_id]
    with psycopg.connect(env.db_url) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM audit_events ORDER BY id")]
        statuses = conn.execute("SELECT count(*) FROM document_status_log").fetchone()[0]
    # erin's and the operator-less run's refusals, then bob's (empty) run; the dry run wrote nothing
    assert kinds == ["reindex.refused", "reindex.refused", "reindex.initiated", "reindex.completed"]
    assert statuses == 0


def test_operator_identity_runs_a_backfill_of_fifty_documents_as_one_run(env: Env) -> None:
    fifty = env.doc_ids[:50]
    result = env.run(keys=fifty, resources=env.resources(operator=str(USERS["admin"].id)))
    assert result.success
    assert len(env.instance.get_run_records()) == 1
    assert ASSET.backfill_policy.max_partitions_per_run == 100
    eligible_in_range = set(env.eligible()) & set(fifty)
    outcomes: dict[str, set[str]] = {}
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        outcomes.setdefault(metadata["outcome"].value, set()).add(event.partition)
        if metadata["outcome"].value == "skipped":  # left alone by design, with the reason, not a failure
            assert metadata["reason"].value in ("not_converted", "not_fully_indexed", "deleted", "not_found")
    assert outcomes["reindexed"] == eligible_in_range
    assert outcomes["skipped"] == set(fifty) - eligible_in_range
    with psycopg.connect(env.db_url) as conn:
        details = conn.execute("SELECT details FROM audit_events WHERE kind = 'reindex.completed'").fetchone()[0]
    assert details["requester_source"] == "operator" and details["user_id"] == str(USERS["admin"].id)


def test_openai_paths_end_to_end_concurrently_and_a_failing_document_fails_alone(env: Env) -> None:
    """Extraction, embeddings and graph through the real OpenAI client against a local API stand-in: one
    structured output per document, several in flight at once; a document whose calls keep failing (500) fails
    after its retries, alone, and keeps the index it had."""
    admin = str(USERS["admin"].id)
    docs = env.eligible()[:6]
    env.run(keys=docs, requester_id=admin)  # the offline index the failing document must keep
    with psycopg.connect(env.db_url) as conn:
        victim_marker = db.load_pages(conn, docs[2])[0].split("\n")[2]  # the number line of one document
    before = env.snapshot(docs[2])
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def chat(body: dict):
        text = body["messages"][1]["content"]
        if victim_marker in text:
            return 500, {"error": {"message": "The server had an error while processing your request."}}, {}
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.3)  # the API's latency: the other documents' calls are sent meanwhile
        with lock:
            in_flight[0] -= 1
        answer = {
            "fields": Extraction(document_type="invoice", total="1.00").model_dump(),
            "graph": {
                "entities": [
                    {"name": "Blue Yonder Airlines", "type": "organization"},
                    {"name": "EUR", "type": "currency"},
                ],
                "relations": [{"source": "Blue Yonder Airlines", "relation": "PAID_IN", "target": "EUR"}],
            },
        }
        return 200, completion(json.dumps(answer)), {}

    api = FakeOpenAI()
    api.on("/chat/completions", chat)
    api.on("/embeddings", lambda body: embeddings_answer(body, dimensions=1536))
    try:
        extractor = Extractor(
            openai_api_key="sk-test", openai_base_url=api.base_url, version="gpt-run-1", max_in_flight=4, max_attempts=2
        )
        resources = env.resources(
            extractor=extractor, embeddings=EmbeddingModel(openai_api_key="sk-test", openai_base_url=api.base_url)
        )
        result = env.run(keys=docs, requester_id=admin, resources=resources, raise_on_error=False)
    finally:
        api.close()
    assert not result.success
    assert most[0] >= 3  # documents' calls were in flight together (max_in_flight=4)
    schemas = [body["response_format"]["json_schema"]["name"] for body, _ in api.calls("/chat/completions")]
    assert schemas.count("DocumentAnswer") == len(docs) + 1  # one call per document; the victim's retried once
    index = VectorIndex(
        QdrantStore(path=os.environ["QDRANT_PATH"]).client(),
        collection_name(env.collection, "text-embedding-3-small"),
        "text-embedding-3-small",
        1536,
    )
    for doc_id in docs:
        snap = env.snapshot(doc_id)
        if doc_id == docs[2]:
            assert snap == before and index.count(doc_id) == 0  # failed: its old index kept, nothing new written
            continue
        assert {r["extractor_version"] for r in snap["derived"]["data"]} == {"gpt-run-1"}
        assert index.count(doc_id) == chunk_count(env, doc_id)
        assert {r["entity"] for r in snap["graph"]["nodes"]} >= {"organization:blue yonder airlines", "currency:eur"}
    with psycopg.connect(env.db_url) as conn:
        details = conn.execute("SELECT indexing_details FROM documents WHERE id = %s", (docs[2],)).fetchone()[0]
        audit = conn.execute("SELECT details FROM audit_events WHERE kind = 'reindex.failed'").fetchone()[0]
    error = details["last_failure"]["error"]
    assert "OpenAI error 500" in error and "after 2 attempts" in error
    assert audit["model_usage"]["calls"] >= len(docs) + 1 and audit["model_usage"]["retries"] >= 1
    (extracted,) = [
        e.materialization
        for e in reindexed_events(result)
        if e.partition == docs[0] and e.asset_key.path == ["extracted_data"]
    ]
    assert extracted.metadata["model_calls"].value == 1 and extracted.metadata["tokens_in"].value == 10


def test_keys_inside_the_range_but_outside_the_request_are_never_touched(env: Env) -> None:
    admin = str(USERS["admin"].id)
    eligible = env.eligible()
    window = env.doc_ids[env.doc_ids.index(eligible[0]) : env.doc_ids.index(eligible[9]) + 1]
    wanted = [eligible[0], eligible[9]]
    before = {d: env.snapshot(d) for d in window}
    result = env.run(keys=window, requester_id=admin, document_ids=wanted)
    assert {e.partition for e in reindexed_events(result)} == set(wanted)
    for doc_id in window:
        if doc_id not in wanted:
            assert env.snapshot(doc_id) == before[doc_id]


def test_documents_a_dead_run_left_indexing_are_taken_over(env: Env) -> None:
    """A run killed mid-batch leaves its documents `indexing`. The next run takes them over at once when Dagster
    knows that run ended, or after the claim lease otherwise; a fresh claim of a run it does not know is left
    alone (that run may be alive elsewhere)."""
    admin = str(USERS["admin"].id)
    failed = env.run(requester_id=str(USERS["erin"].id), raise_on_error=False)  # a run that ended (failure)
    assert not failed.success
    ended, expired, live = env.eligible()[:2], env.eligible()[2:4], env.eligible()[4]
    with psycopg.connect(env.db_url) as conn:
        mark = "UPDATE documents SET index_status = 'indexing', indexing_details = %s, updated_at = {} WHERE id = %s"
        for doc in ended:
            conn.execute(mark.format("now()"), (Jsonb({"run_id": failed.run_id}), doc))
        for doc in expired:
            conn.execute(mark.format("now() - interval '1 hour'"), (Jsonb({"run_id": "a-worker-killed-long-ago"}), doc))
        conn.execute(mark.format("now()"), (Jsonb({"run_id": "a-run-of-another-instance"}), live))

    result = env.run(requester_id=admin)
    reindexed = {e.partition for e in reindexed_events(result)}
    assert set(ended) | set(expired) <= reindexed and live not in reindexed
    with psycopg.connect(env.db_url) as conn:
        statuses = dict(conn.execute("SELECT id::text, index_status FROM documents").fetchall())
    assert {statuses[d] for d in ended + expired} == {"indexed"} and statuses[live] == "indexing"
