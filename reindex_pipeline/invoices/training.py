"""Learn the ranker's weights from the dev sets, and score them leave-issuer-out (needs scipy and scikit-learn, the
``dev`` extra; the product itself only reads the written model).

Per field, a document's candidates compete in one softmax (a conditional logit, with a "none" option for the
documents where no candidate is right), each candidate labelled right or wrong against the answer. Folds
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
#: The least confidence a value is stored at, whatever share of the values above it were right: a stored value
#: is one its ranker gives at least even odds ("Thank you! See you soon: 12.50" stores no total at 0.40).
MIN_CONFIDENCE = 0.5
#: the demo corpus weighs as one more dev set: its layout is learned beside the real ones
DEMO_WEIGHT = 1.0
FOLDS = 5
#: the weight of each document's copy without its right candidates (see _rows)
ABSENT_WEIGHT = 0.25
#: the L2 penalties tried per field; the one kept is chosen leave-issuer-out on the training folds
STRENGTHS = (1.0, 3.0, 10.0)
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


@dataclass
class Rows:
    """A field's candidates as one matrix: ``start`` holds where each document's rows begin."""

    names: list[str]
    x: list[list[float]]
    right: list[bool]
    start: list[int]
    weight: list[float]  # per document: each dev set weighs the same, each document the same within its set


def _rows(field: str, samples: list[Sample], reads: list[Reading | None]) -> Rows:
    names = sorted({n for r in reads if r for c in r.candidates[field] for n in c.features})
    key = KEY[field]
    rows = Rows(names, [], [], [], [])
    per_set = Counter(s.dataset for s, r in zip(samples, reads, strict=True) if r and key in s.answered())
    for sample, reading in zip(samples, reads, strict=True):
        candidates = reading.candidates[field] if reading else []
        if not candidates or key not in sample.answered():
            continue  # no candidate: only "none" can be chosen, nothing to learn
        weight = (DEMO_WEIGHT if sample.dataset == DEMO else 1.0) / per_set[sample.dataset]
        right = [matches(key, sample.expected[key], c.value) for c in candidates]
        x = [[c.features.get(n, 0.0) for n in names] for c in candidates]
        rows.start.append(len(rows.x))
        rows.weight.append(weight)
        rows.x.extend(x)
        rows.right.extend(right)
        wrong = [row for row, r in zip(x, right, strict=True) if not r]
        if wrong and len(wrong) < len(x):
            # the same document without its answer: "none" should then win, so a candidate's score also says
            # how much it looks like an answer at all, not only that it beats the others
            rows.start.append(len(rows.x))
            rows.weight.append(weight * ABSENT_WEIGHT)
            rows.x.extend(wrong)
            rows.right.extend([False] * len(wrong))
    return rows


def fit_field(
    field: str, samples: list[Sample], reads: list[Reading | None], threshold: float = 0.5, strength: float = 1.0
) -> FieldModel:
    """The conditional logit of the field: per document, the log-probability of its right candidates (or of
    "none" when no candidate is right) maximised, with an L2 penalty of ``strength`` on the coefficients."""
    import numpy as np
    from scipy.optimize import minimize

    rows = _rows(field, samples, reads)
    if not rows.x:
        return FieldModel(
            tuple(rows.names),
            (0.0,) * len(rows.names),
            (1.0,) * len(rows.names),
            (0.0,) * len(rows.names),
            5.0,
            threshold,
            strength,
        )
    data = np.asarray(rows.x, dtype=float)
    mean, scale = data.mean(axis=0), data.std(axis=0)
    scale[scale == 0] = 1.0
    x = (data - mean) / scale
    right = np.asarray(rows.right)
    start = np.asarray(rows.start)
    doc = np.repeat(np.arange(len(start)), np.diff(np.append(start, len(x))))
    weight = np.asarray(rows.weight) * len(start) / sum(rows.weight)
    answered = np.logical_or.reduceat(right, start)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, none = theta[:-1], theta[-1]
        z = x @ w
        with np.errstate(divide="ignore", invalid="ignore"):
            total = np.logaddexp(np.logaddexp.reduceat(z, start), none)
            chosen = np.where(answered, np.logaddexp.reduceat(np.where(right, z, -np.inf), start), none)
        p = np.exp(z - total[doc])
        q = np.where(right, np.exp(z - chosen[doc]), 0.0)
        value = float(weight @ (total - chosen)) + strength / 2 * float(w @ w)
        grad_w = x.T @ (weight[doc] * (p - q)) + strength * w
        grad_none = float(weight @ (np.exp(none - total) - (~answered)))
        return value, np.append(grad_w, grad_none)

    theta = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return FieldModel(
        tuple(rows.names),
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in theta[:-1]),
        float(theta[-1]),
        threshold,
        strength,
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


def folds(samples: list[Sample], k: int) -> list[list[int]]:
    from sklearn.model_selection import GroupKFold

    groups = [s.group for s in samples]
    n = min(k, len(set(groups)))
    return [list(test) for _, test in GroupKFold(n_splits=n).split(samples, groups=groups)]


def out_of_fold(
    field: str,
    samples: list[Sample],
    reads: list[Reading | None],
    k: int = FOLDS,
    nested: bool = True,
    strength: float = 1.0,
) -> list[Scored]:
    """Every document scored by a model learned without its group; when ``nested``, the model's penalty and
    threshold too are chosen without it (:func:`choose`, on the training folds alone)."""
    result: dict[int, Scored] = {}
    for test in folds(samples, k):
        held = set(test)
        train = [i for i in range(len(samples)) if i not in held]
        train_samples, train_reads = [samples[i] for i in train], [reads[i] for i in train]
        threshold = 0.5
        if nested:
            strength, threshold = choose(field, train_samples, train_reads, k - 1)
        model = fit_field(field, train_samples, train_reads, threshold, strength)
        for i, scored in zip(
            [i for i in test if KEY[field] in samples[i].answered()],
            score(field, model, [samples[i] for i in test], [reads[i] for i in test]),
            strict=True,
        ):
            scored.stored = scored.value is not None and scored.probability >= threshold
            result[i] = scored
    return [result[i] for i in sorted(result)]


def choose(field: str, samples: list[Sample], reads: list[Reading | None], k: int) -> tuple[float, float]:
    """The penalty (of :data:`STRENGTHS`) and threshold under which most documents, scored leave-issuer-out,
    get a right value stored at :data:`PRECISION`; on a tie the stronger penalty (the simpler model). The
    threshold is at least :data:`MIN_CONFIDENCE`."""
    best_key, chosen = (-1, 0.0), (STRENGTHS[-1], 1.0)
    for strength in STRENGTHS:
        scored = out_of_fold(field, samples, reads, k, nested=False, strength=strength)
        threshold = choose_threshold(scored)
        key = (sum(s.right for s in scored if s.value is not None and s.probability >= threshold), strength)
        if key > best_key:
            best_key, chosen = key, (strength, threshold)
    return chosen[0], max(chosen[1], MIN_CONFIDENCE)


def train(samples: list[Sample], reads: list[Reading | None]) -> Ranker:
    """The shipped model: each field fitted on every document, its penalty and threshold chosen from the
    leave-issuer-out scores."""
    fields = {}
    for field in RANKED:
        strength, threshold = choose(field, samples, reads, FOLDS)
        fields[field] = fit_field(field, samples, reads, threshold, strength)
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
