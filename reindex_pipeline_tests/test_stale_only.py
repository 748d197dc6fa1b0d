"""Fingerprints: a "stale only" reindex does exactly the phases whose inputs or producer changed."""

from __future__ import annotations

import psycopg

from reindex_pipeline.domain.fingerprints import (
    EXTRACTION,
    GRAPH,
    VECTORS,
    Producers,
    SourceHashes,
    phase_fingerprints,
    phases_to_run,
)
from reindex_pipeline.embeddings import EmbeddingModel, LocalEmbedder
from reindex_pipeline_tests.corpus_env import USERS, Env, reindexed_events

EMBEDDED: list[int] = []  # texts embedded, counted at the embedder


class CountingEmbeddingModel(EmbeddingModel):
    """The real offline embedder, counting every text it is asked to embed."""

    def embedder(self):
        real = LocalEmbedder(self.batch_size)

        class Counting:
            model, dimensions = real.model, real.dimensions

            def embed(self, texts):
                EMBEDDED.append(len(texts))
                return real.embed(texts)

        return Counting()


def _completed(env: Env) -> dict:
    with psycopg.connect(env.db_url) as conn:
        return conn.execute(
            "SELECT details FROM audit_events WHERE kind = 'reindex.completed' ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]


def _writes(env: Env) -> tuple[int, int]:
    with psycopg.connect(env.db_url) as conn:
        return (
            conn.execute("SELECT count(*) FROM document_status_log").fetchone()[0],
            conn.execute("SELECT count(*) FROM documents_data").fetchone()[0],
        )


def test_stale_only_after_an_extractor_bump_reextracts_without_embedding(env: Env) -> None:
    admin = str(USERS["admin"].id)
    EMBEDDED.clear()
    env.run(requester_id=admin, resources=env.resources(embeddings=CountingEmbeddingModel()))
    eligible = env.eligible()
    assert sum(EMBEDDED) > 0
    before = {d: env.snapshot(d) for d in eligible}

    EMBEDDED.clear()
    bumped = env.resources(version="rules-9.9", embeddings=CountingEmbeddingModel())
    result = env.run(requester_id=admin, stale_only=True, resources=bumped)
    assert EMBEDDED == []  # 0 embedding calls
    done = _completed(env)
    assert done["mode"] == "stale_only"
    assert done["unchanged_phases"] == {EXTRACTION: 0, VECTORS: len(eligible), GRAPH: 0}
    materialized = {(e.asset_key.path[-1], e.partition) for e in reindexed_events(result)}
    assert materialized == {(a, d) for a in ("extracted_data", "graph_entities") for d in eligible}
    for doc_id in eligible:
        after = env.snapshot(doc_id)
        assert {r["extractor_version"] for r in after["derived"]["data"]} == {"rules-9.9"}
        assert after["points"] == before[doc_id]["points"]  # same points, same vectors
    # Each materialisation carries the phase's fingerprint as its Dagster data version.
    event = reindexed_events(result)[0]
    with psycopg.connect(env.db_url) as conn:
        recorded = conn.execute(
            "SELECT extraction_fingerprint, graph_fingerprint FROM document_index_state WHERE document_id = %s",
            (event.partition,),
        ).fetchone()
    assert event.materialization.tags["dagster/data_version"] in recorded
    assert event.materialization.tags["dagster/code_version"] in ("rules@rules-9.9", "graph-2+rules@rules-9.9")

    # Nothing changed since: a stale-only run writes nothing at all, and says so.
    writes, snapshots = _writes(env), {d: env.snapshot(d) for d in eligible}
    EMBEDDED.clear()
    idle = env.run(requester_id=admin, stale_only=True, resources=bumped)
    assert EMBEDDED == [] and reindexed_events(idle) == []
    assert _writes(env) == writes and {d: env.snapshot(d) for d in eligible} == snapshots
    assert _completed(env)["unchanged_documents"] == len(eligible)

    # "force" reindexes anyway.
    env.run(requester_id=admin, resources=bumped, phases=[VECTORS])
    assert sum(EMBEDDED) > 0


def test_changed_chunks_make_only_that_documents_phases_stale(env: Env) -> None:
    admin = str(USERS["admin"].id)
    env.run(requester_id=admin)
    changed = env.eligible()[2]
    with psycopg.connect(env.db_url) as conn:
        conn.execute(
            "UPDATE chunks SET chunk_content = chunk_content || ' (restored)' WHERE document_id = %s "
            "AND chunk_index = 0",
            (changed,),
        )
    result = env.run(requester_id=admin, stale_only=True)
    assert {e.partition for e in reindexed_events(result)} == {changed}
    assert {e.asset_key.path[-1] for e in reindexed_events(result)} == {
        "chunk_embeddings",
        "graph_entities",
    }


def test_fingerprints_cover_their_inputs_and_producers() -> None:
    source = SourceHashes(pages="p1", chunks="c1")
    producers = Producers(extractor="rules@1", embedding_model="minilm/384")
    base = phase_fingerprints(source, producers)
    new_extractor = phase_fingerprints(source, Producers("rules@2", "minilm/384"))
    new_model = phase_fingerprints(source, Producers("rules@1", "minilm/128"))
    new_chunks = phase_fingerprints(SourceHashes("p1", "c2"), producers)
    assert [p for p in base if base[p] != new_extractor[p]] == [EXTRACTION, GRAPH]
    assert [p for p in base if base[p] != new_model[p]] == [VECTORS]
    assert [p for p in base if base[p] != new_chunks[p]] == [VECTORS, GRAPH]
    recorded = dict(base)
    assert phases_to_run([EXTRACTION, VECTORS, GRAPH], new_extractor, recorded, force=False) == [EXTRACTION, GRAPH]
    assert phases_to_run([VECTORS], new_extractor, recorded, force=False) == []
    assert phases_to_run([VECTORS], base, recorded, force=True) == [VECTORS]
