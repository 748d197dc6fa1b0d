"""The demo corpus: the promised mix, identical for one seed, loaded by bulk COPY."""

from __future__ import annotations

import dataclasses
from collections import Counter

import psycopg
import pytest

from reindex_pipeline.demo.corpus import build_corpus
from reindex_pipeline.demo.loader import is_empty, load_demo_corpus


def _fingerprint(corpus) -> list[tuple]:
    return [
        (
            d.id,
            d.workspace_id,
            d.owner_id,
            d.filename,
            d.convert_status,
            d.index_status,
            d.deleted_at,
            tuple(d.pages),
            tuple((c.chunk_index, c.content) for c in d.chunks),
        )
        for d in corpus.documents
    ]


def test_same_seed_same_corpus_other_seed_other_corpus() -> None:
    assert _fingerprint(build_corpus(60, seed=3)) == _fingerprint(build_corpus(60, seed=3))
    assert _fingerprint(build_corpus(60, seed=3)) != _fingerprint(build_corpus(60, seed=4))


def test_the_promised_mix() -> None:
    corpus = build_corpus(60, seed=7)
    users = {u.username: u for u in corpus.users}
    assert len(corpus.users) >= 3 and len(corpus.workspaces) == 3
    assert Counter(u.role for u in corpus.users)["admin"] == 1
    assert {u.status for u in corpus.users} >= {"active", "suspended", "inactive"}

    docs = corpus.documents
    assert len(docs) == 60
    status = Counter((d.convert_status, d.index_status, d.deleted_at is not None) for d in docs)
    eligible = status[("converted", "indexed", False)]
    assert 30 <= eligible <= 55
    assert sum(n for (convert, _, _), n in status.items() if convert != "converted") >= 2  # not converted
    assert sum(n for (_, index, _), n in status.items() if index == "indexing") >= 2  # still indexing
    assert sum(n for (_, _, deleted), n in status.items() if deleted) >= 2

    owners = Counter(d.owner_id for d in docs)
    assert owners[None] >= 3, "unowned documents"
    assert owners[users["bob"].id] >= 3 and owners[users["carol"].id] >= 3 and owners[users["admin"].id] >= 3
    assert {d.workspace_id for d in docs} == {w.id for w in corpus.workspaces}
    # Mixed ownership inside a workspace, which is what the RBAC tests need.
    for workspace in corpus.workspaces:
        assert len({d.owner_id for d in docs if d.workspace_id == workspace.id}) >= 3

    assert Counter(d.kind for d in docs).keys() == {"invoice", "receipt"}
    assert len({d.language for d in docs}) >= 3
    multi_page = [d for d in docs if len(d.pages) > 1]
    assert len(multi_page) >= 10
    sample = multi_page[0]
    assert sample.expected["total"] in sample.pages[-1] and "|---" in sample.pages[0]


def test_only_converted_documents_have_pages_and_chunks() -> None:
    for doc in build_corpus(60, seed=7).documents:
        if doc.convert_status == "converted":
            assert doc.pages and doc.chunks
            assert [c.chunk_index for c in doc.chunks] == list(range(len(doc.chunks)))
            assert all(len(c.content) <= 800 for c in doc.chunks)
        else:
            assert doc.pages == [] and doc.chunks == []


def test_load_writes_exactly_the_generated_rows(app_db: str) -> None:
    assert is_empty(app_db)
    report = load_demo_corpus(app_db, 60, seed=11)
    corpus = build_corpus(60, seed=11)
    assert report.documents == 60
    assert report.chunks == sum(len(d.chunks) for d in corpus.documents)
    assert not is_empty(app_db)
    with psycopg.connect(app_db) as conn:
        rows = conn.execute(
            "SELECT d.id, d.owner_id, d.convert_status, d.index_status, d.deleted_at IS NOT NULL, "
            "(SELECT count(*) FROM pages p WHERE p.document_id = d.id), "
            "(SELECT string_agg(chunk_content, '|' ORDER BY chunk_index) FROM chunks c WHERE c.document_id = d.id) "
            "FROM documents d"
        ).fetchall()
        loaded = {r[0]: r[1:] for r in rows}
        for doc in corpus.documents:
            chunks = "|".join(c.content for c in doc.chunks) or None
            assert loaded[doc.id] == (
                doc.owner_id,
                doc.convert_status,
                doc.index_status,
                doc.deleted_at is not None,
                len(doc.pages),
                chunks,
            )
        details = conn.execute(
            "SELECT indexing_details FROM documents WHERE index_status = 'indexed' LIMIT 1"
        ).fetchone()[0]
        assert details == {p: {"status": "done"} for p in ("extraction", "vector_indexing", "graphrag_indexing")}
        users = dict(conn.execute("SELECT username, status FROM users").fetchall())
        assert users["dave"] == "suspended" and users["admin"] == "active"


def test_loading_the_same_seed_twice_is_refused_not_duplicated(app_db: str) -> None:
    load_demo_corpus(app_db, 10, seed=5)
    with pytest.raises(psycopg.errors.UniqueViolation):
        load_demo_corpus(app_db, 10, seed=5)
    with psycopg.connect(app_db) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 10


def test_documents_are_plain_data() -> None:
    doc = build_corpus(6, seed=1).documents[0]
    assert dataclasses.asdict(doc)["id"] == doc.id
