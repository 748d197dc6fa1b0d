"""The learned weights that rank each field's candidates, and the confidence below which nothing is stored.

``ranker.json`` beside this file holds, per field, a logistic model over the candidate features of
:mod:`reindex_pipeline.invoices.candidates` (feature names, standardisation, coefficients) and the threshold
at which, leave-issuer-out, at least 95 % of stored values were right. It is written by
``./dev bench extraction --write`` and versioned: its ``version`` is part of the extractor's version, so a
new model re-runs extraction (and the graph) on a stale-only reindex.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reindex_pipeline.invoices.candidates import Candidate

MODEL_FILE = Path(__file__).with_name("ranker.json")


@dataclass(frozen=True)
class FieldModel:
    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    def logit(self, features: dict[str, float]) -> float:
        z = self.intercept
        for name, mean, scale, coef in zip(self.names, self.mean, self.scale, self.coef, strict=True):
            z += coef * (features.get(name, 0.0) - mean) / scale
        return max(min(z, 50.0), -50.0)

    def to_json(self) -> dict:
        """Numbers to 6 decimals: the file (and its version) is the same on every machine and run."""

        def rounded(value: object) -> object:
            if isinstance(value, float):
                return round(value, 6)
            if isinstance(value, tuple) and value and isinstance(value[0], float):
                return [round(v, 6) for v in value]
            return list(value) if isinstance(value, tuple) else value

        return {k: rounded(getattr(self, k)) for k in ("names", "mean", "scale", "coef", "intercept", "threshold")}

    @classmethod
    def from_json(cls, data: dict) -> FieldModel:
        return cls(
            tuple(data["names"]),
            tuple(data["mean"]),
            tuple(data["scale"]),
            tuple(data["coef"]),
            float(data["intercept"]),
            float(data["threshold"]),
        )


@dataclass(frozen=True)
class Ranker:
    version: str
    fields: dict[str, FieldModel]

    def best(self, candidates: list[Candidate]) -> tuple[str, float] | None:
        """The value whose best candidate scores highest, and a confidence: the candidate's own probability of
        being right times its share of the document's values (a softmax over each value's best score)."""
        if not candidates:
            return None
        model = self.fields[candidates[0].field]
        scored: dict[str, float] = {}
        for candidate in candidates:
            z = model.logit(candidate.features)
            scored[candidate.value] = max(z, scored.get(candidate.value, -math.inf))
        value = max(scored, key=scored.get)
        top = scored[value]
        share = 1 / sum(math.exp(z - top) for z in scored.values())
        return value, share / (1 + math.exp(-top))


@lru_cache(maxsize=1)
def load(path: Path = MODEL_FILE) -> Ranker:
    data = json.loads(path.read_text())
    return Ranker(data["version"], {name: FieldModel.from_json(m) for name, m in data["fields"].items()})
