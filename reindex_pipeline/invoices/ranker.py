"""The learned weights that rank each field's candidates, and the confidence below which nothing is stored.

``ranker.json`` beside this file holds, per field, a conditional logit over the candidate features of
:mod:`reindex_pipeline.invoices.candidates` (feature names, standardisation, coefficients): a document's
candidates compete in one softmax beside a "none of them is right" option of learned score, so a value's
confidence is the probability that it, and not another candidate or nothing, is the document's answer. The
threshold is the confidence at which, leave-issuer-out, at least 95 % of stored values were right. It is written by
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
from reindex_pipeline.invoices.parties import same_organisation

MODEL_FILE = Path(__file__).with_name("ranker.json")
#: fields whose answer has several spellings: the candidates of one answer share its probability (the
#: training counts every spelling of the right answer right, see ``training._rows``)
SAME_VALUE = {"vendor_name": same_organisation}
#: the most probable values that may head a group of spellings (the rest only add to a group's probability)
HEADS = 10


@dataclass(frozen=True)
class FieldModel:
    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    none: float  # the score of "no candidate is right", in the same softmax as the candidates
    threshold: float
    strength: float = 1.0  # the L2 penalty it was fitted with (chosen leave-issuer-out; a record, not used)

    def logit(self, features: dict[str, float]) -> float:
        z = 0.0
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

        keys = ("names", "mean", "scale", "coef", "none", "threshold", "strength")
        return {k: rounded(getattr(self, k)) for k in keys}

    @classmethod
    def from_json(cls, data: dict) -> FieldModel:
        return cls(
            tuple(data["names"]),
            tuple(data["mean"]),
            tuple(data["scale"]),
            tuple(data["coef"]),
            float(data["none"]),
            float(data["threshold"]),
            float(data.get("strength", 1.0)),
        )


@dataclass(frozen=True)
class Ranker:
    version: str
    fields: dict[str, FieldModel]

    def best(self, candidates: list[Candidate]) -> tuple[str, float] | None:
        """The most probable value and its probability: the softmax over the document's candidates and the
        "none" option, each value's candidates (the same amount read twice) summed, and for a field of
        :data:`SAME_VALUE` each value's spellings too."""
        if not candidates:
            return None
        model = self.fields[candidates[0].field]
        scores = [model.logit(c.features) for c in candidates]
        top = max(max(scores), model.none)
        values: dict[str, float] = {}
        for candidate, z in zip(candidates, scores, strict=True):
            values[candidate.value] = values.get(candidate.value, 0.0) + math.exp(z - top)
        same = SAME_VALUE.get(candidates[0].field)
        if same is None:
            value = max(values, key=values.get)
            return value, values[value] / (sum(values.values()) + math.exp(model.none - top))
        # spellings of one answer ("THREE STOOGES", "THREE STOOGES BISTRO & CAFE") are one answer: the
        # one named by most probability wins, and is stored in its most probable spelling
        heads = sorted(values, key=values.get, reverse=True)[:HEADS]
        mass = {v: sum(m for w, m in values.items() if w == v or same(v, w)) for v in heads}
        group = max(mass, key=lambda v: (mass[v], values[v]))
        value = max((w for w in values if w == group or same(group, w)), key=values.get)
        return value, mass[group] / (sum(values.values()) + math.exp(model.none - top))


@lru_cache(maxsize=1)
def load(path: Path = MODEL_FILE) -> Ranker:
    data = json.loads(path.read_text())
    return Ranker(data["version"], {name: FieldModel.from_json(m) for name, m in data["fields"].items()})
