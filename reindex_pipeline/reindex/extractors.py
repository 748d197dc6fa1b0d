"""Extractors behind one resource: the offline rules (default) or OpenAI structured outputs.

With an API key, a document's fields and its graph entities come from one structured output
(:class:`DocumentAnswer`) by default, or from one call each with ``one_call=False``. The prompts and the JSON
schemas are hashed into the extractor's version, so changing either makes every document stale, and a
stale-only reindex skips what the model already answered.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import TypeVar

import dagster as dg
from pydantic import BaseModel, Field

from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.graph.builder import GraphExtraction
from reindex_pipeline.invoices.rules import RULES_EXTRACTOR, RULES_VERSION, extract_rules
from reindex_pipeline.llm.calls import ApiFailed, ModelEndpoint, Usage, estimate_tokens

T = TypeVar("T", bound=BaseModel)

OPENAI_PROMPT = (
    "You extract fields from OCR'd invoices and receipts given as markdown. Return only what the document "
    "states; use null for anything absent. Dates as YYYY-MM-DD, amounts as plain decimals (e.g. 1234.50), "
    "currencies as ISO 4217 codes."
)
GRAPH_PROMPT = (
    "You build a knowledge graph from an OCR'd invoice or receipt given as markdown. List the entities it names "
    "(organizations, the invoice or receipt by its number, products, currencies, people) with their exact names, "
    "and the relations between them using only the allowed relation types."
)
ONE_CALL_PROMPT = f"{OPENAI_PROMPT}\nIn the same answer, under `graph`: {GRAPH_PROMPT[0].lower()}{GRAPH_PROMPT[1:]}"


class DocumentAnswer(BaseModel):
    """One structured output with both: the document's fields and its graph entities."""

    fields: Extraction
    graph: GraphExtraction


class ExtractionFailed(RuntimeError):
    """The extractor gave no usable result for a document (refusal, malformed output, API failure).
    ``usage``: what its calls cost all the same."""

    def __init__(self, message: str, usage: Usage | None = None):
        super().__init__(message)
        self.usage = usage or Usage()


@dataclass
class ModelAnswer:
    """What the extractor answered for one document, and what the answer cost."""

    extraction: Extraction | None = None
    graph: GraphExtraction | None = None
    usage: Usage = field(default_factory=Usage)


@functools.cache
def schema_text(schema: type[BaseModel]) -> str:
    """A schema's JSON, as sent (computed once: pydantic builds it afresh on every call)."""
    return json.dumps(schema.model_json_schema(), sort_keys=True)


@functools.cache
def prompt_version(one_call: bool) -> str:
    """A hash of the prompts and schemas the OpenAI path sends: changes when either does."""
    if one_call:
        sent = [ONE_CALL_PROMPT, schema_text(DocumentAnswer)]
    else:
        sent = [OPENAI_PROMPT, schema_text(Extraction), GRAPH_PROMPT, schema_text(GraphExtraction)]
    return "prompt-" + hashlib.sha256(json.dumps(sent).encode()).hexdigest()[:10]


class Extractor(dg.ConfigurableResource):
    """Turns a document's markdown into :class:`Extraction` (and, with OpenAI, its graph entities)."""

    version: str | None = Field(
        default=None,
        description="recorded as documents_data.extractor_version; default: the rules' version, or with OpenAI a "
        "hash of the prompts and schemas",
    )
    openai_api_key: str | None = Field(default=None, description="use OpenAI structured outputs when set")
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str | None = None
    one_call: bool = Field(default=True, description="fields and graph entities in one structured output")
    max_in_flight: int = Field(default=32, description="documents whose model calls may be in flight at once")
    timeout_s: float = Field(default=120.0, description="seconds one model call may take before it is retried")
    max_attempts: int = Field(default=6, description="tries per call (429s, 5xx, timeouts) before a document fails")
    max_output_tokens: int = Field(
        default=2048, description="the most tokens one answer may hold (counted against the tokens-per-minute limit)"
    )

    @property
    def name(self) -> str:
        return f"openai:{self.openai_model}" if self.openai_api_key else RULES_EXTRACTOR

    @property
    def recorded_version(self) -> str:
        if self.version:
            return self.version
        return prompt_version(self.one_call) if self.openai_api_key else RULES_VERSION

    @property
    def identity(self) -> str:
        """``name@version``: what the extraction fingerprint and the asset's code version record."""
        return f"{self.name}@{self.recorded_version}"

    @property
    def uses_llm(self) -> bool:
        return bool(self.openai_api_key)

    def calls_per_document(self, fields: bool = True, graph: bool = True) -> int:
        """Model calls one document costs (0 offline)."""
        if not self.openai_api_key:
            return 0
        return 1 if self.one_call or not (fields and graph) else int(fields) + int(graph)

    def estimate_tokens_in(self, characters: int, fields: bool = True, graph: bool = True) -> int:
        """Prompt tokens of a document of ``characters`` characters, prompts and schemas included."""
        if not self.openai_api_key:
            return 0
        if self.one_call and fields and graph:
            return estimate_tokens(ONE_CALL_PROMPT + schema_text(DocumentAnswer)) + characters // 4
        total = 0
        for wanted, prompt, schema in ((fields, OPENAI_PROMPT, Extraction), (graph, GRAPH_PROMPT, GraphExtraction)):
            if wanted:
                total += estimate_tokens(prompt + schema_text(schema)) + characters // 4
        return total

    def extract(self, pages: list[str]) -> Extraction:
        """The fields alone (offline, or one call with OpenAI)."""
        answer = self.answer(pages, fields=True, graph=False)
        assert answer.extraction is not None
        return answer.extraction

    def answer(
        self, pages: list[str], fields: bool = True, graph: bool = False, einvoice: bytes | None = None
    ) -> ModelAnswer:
        """The document's fields and/or graph entities. Offline: the rules' fields (no graph; it is built from
        the fields). With OpenAI: one call for both (``one_call``), or one each. An e-invoice's XML
        (``einvoice``) gives the fields it holds at confidence 1, over what the page gave. Raises
        ExtractionFailed."""
        answer = self._answer(pages, fields, graph)
        if einvoice is not None and answer.extraction is not None:
            from reindex_pipeline.invoices.einvoice import read_einvoice, with_page_fields

            answer.extraction = with_page_fields(read_einvoice(einvoice).extraction, answer.extraction)
        return answer

    def _answer(self, pages: list[str], fields: bool, graph: bool) -> ModelAnswer:
        if not self.openai_api_key:
            return ModelAnswer(extraction=extract_rules(pages))
        answer = ModelAnswer()
        try:
            if fields and graph and self.one_call:
                both = self._parse(DocumentAnswer, ONE_CALL_PROMPT, pages, answer.usage)
                answer.extraction, answer.graph = both.fields, both.graph
                return answer
            if fields:
                answer.extraction = self._parse(Extraction, OPENAI_PROMPT, pages, answer.usage)
            if graph:
                answer.graph = self._parse(GraphExtraction, GRAPH_PROMPT, pages, answer.usage)
        except ExtractionFailed as exc:
            raise ExtractionFailed(str(exc), answer.usage) from exc.__cause__
        return answer

    def _parse(self, schema: type[T], prompt: str, pages: list[str], usage: Usage) -> T:
        import openai

        assert self.openai_api_key
        endpoint = ModelEndpoint(
            self.openai_api_key, self.openai_model, self.openai_base_url, self.timeout_s, self.max_attempts
        )
        text = "\n\n---\n\n".join(pages)
        tokens = estimate_tokens(prompt + schema_text(schema) + text) + self.max_output_tokens
        try:
            completion = endpoint.call(
                lambda client: client.chat.completions.with_raw_response.parse(
                    model=self.openai_model,
                    response_format=schema,
                    max_completion_tokens=self.max_output_tokens,
                    messages=[{"role": "system", "content": prompt}, {"role": "user", "content": text}],
                ),
                tokens,
                usage,
            )
        except ApiFailed as exc:
            raise ExtractionFailed(str(exc)) from exc
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: output did not match the schema
            raise ExtractionFailed(f"OpenAI extraction failed: {type(exc).__name__}: {exc}") from exc
        if completion.usage is not None:
            usage.tokens_in += completion.usage.prompt_tokens
            usage.tokens_out += completion.usage.completion_tokens
        message = completion.choices[0].message
        if message.refusal:
            raise ExtractionFailed(f"OpenAI refused: {message.refusal}")
        if message.parsed is None:
            raise ExtractionFailed("OpenAI returned no parsable extraction")
        return message.parsed
