"""Learn the ranker's weights from the dev sets, and score them leave-issuer-out (needs scikit-learn, the
``dev`` extra; the product itself only reads the written model).

Per field, every candidate of every document is a row, labelled right or wrong against the answer. Folds
are groups of issuers (:class:`~sklearn.model_selection.GroupKFold`), so a document is always scored by a
model, and a threshold, chosen without its issuer: the threshold of a fold is the lowest at which the
fold's training documents, themselves scored leave-issuer-out, had at least :data:`PRECISION` of their
stored values right.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from reindex_pipeline.invoices.candidates import Candidate
from reindex_pipeline.invoices.evaluation import DEMO, FIELDS, Sample, matches
from reindex_pipeline.invoices.extractor import RANKED, Reading, read_candidates
from reindex_pipeline.invoices.ranker import FieldModel, Ranker

PRECISION = 0.95
#: the demo corpus weighs as one more dev set: its layout is learned beside the real ones
DEMO_WEIGHT = 1.0
FOLDS = 5
#: expected.json key of each ranked field
KEY = {name: key for key, name in FIELDS.items()}


@dataclass
class Scored:
    """One document's best candidate for a field: its value, probability and whether it is right."""

    sample: Sample
    value: str | None
    probability: float
    right: bool
    stored: bool = False


def readings(samples: list[Sample]) -> list[Reading | None]:
    return [read_candidates(s.pages) if s.error is None else None for s in samples]


def _rows(
    field: str, samples: list[Sample], reads: list[Reading | None]
) -> tuple[list[list[float]], list[int], list[float], list[str]]:
    """Every candidate a row; each dev set weighs the same, and each document the same within its set."""
    names = sorted({n for r in reads if r for c in r.candidates[field] for n in c.features})
    x, y, w = [], [], []
    key = KEY[field]
    per_set = Counter(s.dataset for s in samples if key in s.answered())
    for sample, reading in zip(samples, reads, strict=True):
        if reading is None or key not in sample.answered():
            continue
        weight = (DEMO_WEIGHT if sample.dataset == DEMO else 1.0) / (
            per_set[sample.dataset] * max(len(reading.candidates[field]), 1)
        )
        for candidate in reading.candidates[field]:
            x.append([candidate.features.get(n, 0.0) for n in names])
            y.append(int(matches(key, sample.expected[key], candidate.value)))
            w.append(weight)
    return x, y, w, names


def fit_field(field: str, samples: list[Sample], reads: list[Reading | None], threshold: float = 0.5) -> FieldModel:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x, y, w, names = _rows(field, samples, reads)
    if not x or len(set(y)) < 2:
        return FieldModel(tuple(names), (0.0,) * len(names), (1.0,) * len(names), (0.0,) * len(names), -5.0, 1.0)
    data = np.asarray(x, dtype=float)
    mean = data.mean(axis=0)
    scale = data.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=2.0, max_iter=2000)
    weights = np.asarray(w) * len(w) / sum(w)
    model.fit((data - mean) / scale, y, sample_weight=weights)
    return FieldModel(
        tuple(names),
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in model.coef_[0]),
        float(model.intercept_[0]),
        threshold,
    )


def best(model: FieldModel, candidates: list[Candidate]) -> tuple[str | None, float]:
    found = Ranker("fold", {candidates[0].field: model}).best(candidates) if candidates else None
    return found if found else (None, 0.0)


def score(field: str, model: FieldModel, samples: list[Sample], reads: list[Reading | None]) -> list[Scored]:
    key = KEY[field]
    out = []
    for sample, reading in zip(samples, reads, strict=True):
        if key not in sample.answered():
            continue
        value, p = best(model, reading.candidates[field]) if reading else (None, 0.0)
        out.append(Scored(sample, value, p, value is not None and matches(key, sample.expected[key], value)))
    return out


def choose_threshold(scored: list[Scored], precision: float = PRECISION) -> float:
    """The lowest probability at which the values stored (probability at or above it) are at least
    ``precision`` right; 1.0 (store nothing) when no threshold reaches it. The demo corpus does not count."""
    ranked = sorted(
        (s for s in scored if s.value is not None and s.sample.dataset != DEMO), key=lambda s: -s.probability
    )
    chosen, right = 1.0, 0
    for i, s in enumerate(ranked, start=1):
        right += s.right
        if right / i >= precision and (i == len(ranked) or ranked[i].probability < s.probability):
            chosen = s.probability
    return chosen


def _folds(samples: list[Sample], k: int) -> list[list[int]]:
    from sklearn.model_selection import GroupKFold

    groups = [s.group for s in samples]
    n = min(k, len(set(groups)))
    return [list(test) for _, test in GroupKFold(n_splits=n).split(samples, groups=groups)]


def out_of_fold(
    field: str, samples: list[Sample], reads: list[Reading | None], k: int = FOLDS, nested: bool = True
) -> list[Scored]:
    """Every document scored by a model (and, when ``nested``, a threshold) learned without its group."""
    result: dict[int, Scored] = {}
    for test in _folds(samples, k):
        held = set(test)
        train = [i for i in range(len(samples)) if i not in held]
        train_samples, train_reads = [samples[i] for i in train], [reads[i] for i in train]
        threshold = 0.5
        if nested:
            threshold = choose_threshold(out_of_fold(field, train_samples, train_reads, k - 1, nested=False))
        model = fit_field(field, train_samples, train_reads, threshold)
        for i, scored in zip(
            [i for i in test if KEY[field] in samples[i].answered()],
            score(field, model, [samples[i] for i in test], [reads[i] for i in test]),
            strict=True,
        ):
            scored.stored = scored.value is not None and scored.probability >= threshold
            result[i] = scored
    return [result[i] for i in sorted(result)]


def train(samples: list[Sample], reads: list[Reading | None]) -> Ranker:
    """The shipped model: each field fitted on every document, its threshold from the leave-issuer-out scores."""
    fields = {}
    for field in RANKED:
        threshold = choose_threshold(out_of_fold(field, samples, reads, nested=False))
        fields[field] = fit_field(field, samples, reads, threshold)
    fields = {f: FieldModel.from_json(m.to_json()) for f, m in fields.items()}  # as written: to 6 decimals
    body = json.dumps({f: m.to_json() for f, m in fields.items()}, sort_keys=True)
    return Ranker("ranker-" + hashlib.sha256(body.encode()).hexdigest()[:10], fields)


def to_json(ranker: Ranker, trained_on: dict[str, int]) -> str:
    return json.dumps(
        {
            "version": ranker.version,
            "trained_on": trained_on,
            "precision_target": PRECISION,
            "fields": {f: m.to_json() for f, m in ranker.fields.items()},
        },
        indent=1,
    )
