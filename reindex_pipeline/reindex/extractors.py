"""Extractors behind one resource: the offline rules (default) or OpenAI structured outputs."""

from __future__ import annotations

from typing import TypeVar

import dagster as dg
from pydantic import Field

from reindex_pipeline.graph.builder import GraphExtraction
from reindex_pipeline.reindex.extraction import RULES_EXTRACTOR, RULES_VERSION, Extraction, extract_rules

T = TypeVar("T", Extraction, GraphExtraction)

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


class ExtractionFailed(RuntimeError):
    """The extractor gave no usable result for a document (refusal, malformed output, rate limit)."""


class Extractor(dg.ConfigurableResource):
    """Turns a document's markdown into :class:`Extraction`. ``version`` is recorded on every row."""

    version: str = Field(default=RULES_VERSION, description="recorded as documents_data.extractor_version")
    openai_api_key: str | None = Field(default=None, description="use OpenAI structured outputs when set")
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str | None = None

    @property
    def name(self) -> str:
        return f"openai:{self.openai_model}" if self.openai_api_key else RULES_EXTRACTOR

    @property
    def identity(self) -> str:
        """``name@version``: what the extraction fingerprint and the asset's code version record."""
        return f"{self.name}@{self.version}"

    @property
    def uses_llm(self) -> bool:
        return bool(self.openai_api_key)

    def extract(self, pages: list[str]) -> Extraction:
        if not self.openai_api_key:
            return extract_rules(pages)
        return self._parse(Extraction, OPENAI_PROMPT, pages)

    def extract_graph(self, pages: list[str]) -> GraphExtraction:
        """Entities and relations named by the LLM (only with an API key)."""
        if not self.openai_api_key:
            raise ExtractionFailed("LLM graph extraction needs OPENAI_API_KEY")
        return self._parse(GraphExtraction, GRAPH_PROMPT, pages)

    def _parse(self, schema: type[T], prompt: str, pages: list[str]) -> T:
        import openai

        client = openai.OpenAI(api_key=self.openai_api_key, base_url=self.openai_base_url, max_retries=0)
        try:
            completion = client.chat.completions.parse(
                model=self.openai_model,
                response_format=schema,
                messages=[
                    {"role": "system", "content": prompt},
                    {"role": "user", "content": "\n\n---\n\n".join(pages)},
                ],
            )
        except openai.RateLimitError as exc:
            raise ExtractionFailed(f"OpenAI rate limit: {exc.message}") from exc
        except openai.APIStatusError as exc:
            raise ExtractionFailed(f"OpenAI error {exc.status_code}: {exc.message}") from exc
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: output did not match the schema
            raise ExtractionFailed(f"OpenAI extraction failed: {type(exc).__name__}: {exc}") from exc
        message = completion.choices[0].message
        if message.refusal:
            raise ExtractionFailed(f"OpenAI refused: {message.refusal}")
        if message.parsed is None:
            raise ExtractionFailed("OpenAI returned no parsable extraction")
        return message.parsed
