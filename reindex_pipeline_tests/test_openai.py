"""The OpenAI paths, tested at the HTTP boundary: our code and the real client run unchanged against a
local server that answers like the API (see ``fake_openai``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.embeddings import EmbeddingModel, OpenAIEmbedder
from reindex_pipeline.graph.builder import GraphExtraction, from_llm
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


def test_a_429_is_waited_out_for_as_long_as_the_api_asks(api: FakeOpenAI, extractor: Extractor) -> None:
    body = Extraction(document_type="invoice", total="10.00").model_dump_json()
    answers = iter(
        [
            (429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"retry-after-ms": "400"}),
            (200, completion(body), {}),
        ]
    )
    arrived: list[float] = []

    def chat(_body: dict):
        arrived.append(time.monotonic())
        return next(answers)

    api.on("/chat/completions", chat)
    answer = extractor.answer(PAGES)
    assert answer.extraction is not None and answer.extraction.total == "10.00"
    assert arrived[1] - arrived[0] >= 0.4  # retried only after the wait it was asked for
    assert (answer.usage.calls, answer.usage.retries, answer.usage.rate_limited) == (2, 1, 1)


def test_a_call_that_times_out_is_retried(api: FakeOpenAI) -> None:
    body = Extraction(document_type="receipt", total="3.50").model_dump_json()
    calls: list[int] = []

    def chat(_body: dict):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.5)  # longer than the extractor's timeout
        return 200, completion(body), {}

    api.on("/chat/completions", chat)
    extractor = Extractor(openai_api_key="sk-test", openai_base_url=api.base_url, timeout_s=0.5, one_call=False)
    assert extractor.extract(PAGES).total == "3.50"
    assert len(calls) == 2


def test_a_call_that_keeps_failing_fails_with_the_apis_error(api: FakeOpenAI) -> None:
    api.on("/chat/completions", (503, {"error": {"message": "The engine is currently overloaded"}}, {}))
    extractor = Extractor(openai_api_key="sk-test", openai_base_url=api.base_url, max_attempts=3)
    with pytest.raises(ExtractionFailed, match=r"OpenAI error 503: The engine is currently overloaded \(after 3"):
        extractor.extract(PAGES)
    assert len(api.calls("/chat/completions")) == 3


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (400, {"message": "Invalid schema for response_format"}, "OpenAI error 400: Invalid schema"),
        (429, {"message": "You exceeded your current quota", "code": "insufficient_quota"}, "exceeded your"),
    ],
)
def test_an_error_retrying_cannot_fix_fails_at_once(
    api: FakeOpenAI, extractor: Extractor, status: int, error: dict, expected: str
) -> None:
    api.on("/chat/completions", (status, {"error": error}, {}))
    with pytest.raises(ExtractionFailed, match=expected):
        extractor.extract(PAGES)
    assert len(api.calls("/chat/completions")) == 1


def test_pacing_follows_the_rate_limit_headers(api: FakeOpenAI) -> None:
    """The API says 1 request is left of 120 a minute (2 a second): the next call waits for the refill."""
    body = Extraction(document_type="invoice").model_dump_json()
    limits = {"x-ratelimit-limit-requests": "120", "x-ratelimit-remaining-requests": "0"}
    arrived: list[float] = []

    def chat(_body: dict):
        arrived.append(time.monotonic())
        return 200, completion(body), limits

    api.on("/chat/completions", chat)
    extractor = Extractor(openai_api_key="sk-test", openai_base_url=api.base_url)
    extractor.extract(PAGES)
    extractor.extract(PAGES)
    assert arrived[1] - arrived[0] >= 0.45  # one request's worth refills in 0.5 s


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
    graph = extractor.answer(PAGES, fields=False, graph=True).graph
    assert graph is not None
    entities, relations = from_llm(graph)
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


def test_the_prompts_and_schemas_are_in_the_extractors_version() -> None:
    from reindex_pipeline.invoices.rules import RULES_VERSION

    one, two = Extractor(openai_api_key="sk-test"), Extractor(openai_api_key="sk-test", one_call=False)
    assert one.identity.startswith("openai:gpt-4o-mini@prompt-") and one.identity != two.identity
    assert Extractor().identity == f"rules@{RULES_VERSION}"
    assert (one.calls_per_document(), two.calls_per_document(), Extractor().calls_per_document()) == (1, 2, 0)


def test_one_structured_output_answers_fields_and_graph(api: FakeOpenAI, extractor: Extractor) -> None:
    body = {
        "fields": Extraction(document_type="invoice", invoice_number="INV-1", vendor_name="Acme GmbH").model_dump(),
        "graph": {"entities": [{"name": "Acme GmbH", "type": "organization"}], "relations": []},
    }
    api.on("/chat/completions", (200, completion(json.dumps(body)), {}))
    answer = extractor.answer(PAGES, fields=True, graph=True)
    assert answer.extraction is not None and answer.extraction.invoice_number == "INV-1"
    assert answer.graph is not None and [e.name for e in answer.graph.entities] == ["Acme GmbH"]
    ((sent, _),) = api.calls("/chat/completions")
    assert sent["response_format"]["json_schema"]["name"] == "DocumentAnswer"
    assert sent["max_completion_tokens"] == extractor.max_output_tokens
    assert (answer.usage.calls, answer.usage.tokens_in, answer.usage.tokens_out) == (1, 10, 10)
