"""The OpenAI paths, tested at the HTTP boundary: our code and the real client run unchanged against a
local server that answers like the API (see ``fake_openai``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from reindex_pipeline.embeddings import EmbeddingModel, OpenAIEmbedder
from reindex_pipeline.graph.builder import GraphExtraction, from_llm
from reindex_pipeline.reindex.extraction import Extraction
from reindex_pipeline.reindex.extractors import ExtractionFailed, Extractor
from reindex_pipeline_tests.fake_openai import FakeOpenAI, completion, embeddings_answer

PAGES = ["# INVOICE\n\n**Invoice No:** INV-1  \n**Currency:** EUR\n\n## From\nAcme GmbH"]


@pytest.fixture()
def api() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture()
def extractor(api: FakeOpenAI) -> Extractor:
    return Extractor(
        openai_api_key="sk-test", openai_model="gpt-4o-mini", version="openai-2026-11", openai_base_url=api.base_url
    )


def test_structured_output_becomes_an_extraction(api: FakeOpenAI, extractor: Extractor) -> None:
    body = Extraction(
        document_type="invoice", invoice_number="INV-1", currency="EUR", vendor_name="Acme GmbH", total="10.00"
    ).model_dump_json()
    api.on("/chat/completions", (200, completion(body), {}))
    result = extractor.extract(PAGES)
    assert result.invoice_number == "INV-1" and result.vendor_name == "Acme GmbH"
    ((sent, headers),) = api.calls("/chat/completions")
    assert sent["model"] == "gpt-4o-mini"
    assert sent["response_format"]["type"] == "json_schema"
    assert "Acme GmbH" in sent["messages"][1]["content"]
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer sk-test"
    assert extractor.name == "openai:gpt-4o-mini"


def test_malformed_output_is_a_clear_failure(api: FakeOpenAI, extractor: Extractor) -> None:
    api.on("/chat/completions", (200, completion('{"document_type": "invoice", "total": '), {}))
    with pytest.raises(ExtractionFailed, match="OpenAI extraction failed"):
        extractor.extract(PAGES)


def test_refusal_is_a_clear_failure(api: FakeOpenAI, extractor: Extractor) -> None:
    api.on("/chat/completions", (200, completion(None, refusal="I can't help with that."), {}))
    with pytest.raises(ExtractionFailed, match="OpenAI refused: I can't help with that."):
        extractor.extract(PAGES)


def test_rate_limit_is_a_clear_failure(api: FakeOpenAI, extractor: Extractor) -> None:
    api.on(
        "/chat/completions",
        (429, {"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests"}}, {"retry-after": "20"}),
    )
    with pytest.raises(ExtractionFailed, match="rate limit.*Rate limit reached"):
        extractor.extract(PAGES)


def test_llm_graph_extraction_keeps_only_relations_between_named_entities(
    api: FakeOpenAI, extractor: Extractor
) -> None:
    body = {
        "entities": [{"name": "Acme GmbH", "type": "organization"}, {"name": "INV-1", "type": "invoice"}],
        "relations": [
            {"source": "Acme GmbH", "relation": "ISSUED", "target": "INV-1"},
            {"source": "Acme GmbH", "relation": "ISSUED", "target": "INV-404"},
        ],
    }
    api.on("/chat/completions", (200, completion(json.dumps(body)), {}))
    entities, relations = from_llm(extractor.extract_graph(PAGES))
    assert {e.key for e in entities} == {"organization:acme", "invoice:inv-1"}  # keyed without legal form
    assert [(t, s.key, d.key) for t, s, d in relations] == [("ISSUED", "organization:acme", "invoice:inv-1")]


def test_an_unknown_relation_type_is_rejected_by_the_schema() -> None:
    with pytest.raises(ValueError):
        GraphExtraction.model_validate(
            {"entities": [], "relations": [{"source": "a", "relation": "OWNS", "target": "b"}]}
        )


def test_openai_embeddings_in_order_and_batched(api: FakeOpenAI) -> None:
    api.on("/embeddings", embeddings_answer)
    embedder = OpenAIEmbedder(api_key="sk-test", batch_size=2, base_url=api.base_url)
    vectors = embedder.embed(["a", "bb", "ccc"])
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0]
    assert len(api.calls("/embeddings")) == 2
    assert embedder.dimensions == 1536
    assert isinstance(EmbeddingModel(openai_api_key="sk-test").embedder(), OpenAIEmbedder)
