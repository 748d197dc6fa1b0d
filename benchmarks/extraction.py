"""``./dev bench extraction [--write]``: the offline extractor on every dev set, leave-issuer-out.

Reads the three dev sets beside the repository (``../shared/datasets``: invoices-dev, sroie-dev,
einvoices-dev; ``DATASETS_DIR`` for another folder of the same shape) and prints, per set and field, the
share of documents whose stored value is right and how many stored values are wrong:

- *in-sample*: the ranker fitted on every document and scored on the same documents (fit, not proof);
- *leave-issuer-out*: each document scored by a ranker, and a threshold, chosen without its issuer's
  documents (group k-fold over issuers; the threshold from an inner leave-issuer-out over the training
  folds). Only this one says how the extractor does on issuers it has never seen.

Then a calibration table (stored confidence bucket -> share right, leave-issuer-out), and the customer
(read by rules, nothing fitted) where a set has its answers. ``--write`` writes
the ranker fitted on every document to ``reindex_pipeline/invoices/ranker.json`` (bump ``RANKER_VERSION``
in ``reindex_pipeline/invoices/rules.py`` to the printed version). With OPENAI_API_KEY set, the OpenAI
structured-output extractor is scored on the same documents (nothing to fit: one figure).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

from reindex_pipeline.invoices import training
from reindex_pipeline.invoices.evaluation import DATASETS, DEMO, FIELDS, SETS, evaluate, load_sets, matches
from reindex_pipeline.invoices.extractor import RANKED
from reindex_pipeline.invoices.ranker import MODEL_FILE

BUCKETS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.01)


def table(title: str, scored: dict[str, list[training.Scored]]) -> None:
    print(f"== {title}: right among all documents (wrong among stored)")
    print(f"{'set':<15}{'docs':>5}" + "".join(f"{training.KEY[f]:>20}" for f in RANKED))
    for dataset in SETS:
        cells, docs = [], 0
        for field in RANKED:
            rows = [s for s in scored[field] if s.sample.dataset == dataset]
            if not rows:
                cells.append(f"{'-':>20}")
                continue
            docs = max(docs, len(rows))
            stored = [s for s in rows if s.stored]
            right = sum(s.right for s in stored)
            wrong = len(stored) - right
            share = f"{right / len(rows):.0%} ({wrong}/{len(stored)} {wrong / max(len(stored), 1):.0%})"
            cells.append(f"{share:>20}")
        print(f"{dataset:<15}{docs:>5}" + "".join(cells))
    print()


def calibration(scored: dict[str, list[training.Scored]]) -> None:
    print("== calibration, leave-issuer-out: every field's best candidate by its confidence (dev sets, no demo)")
    print(f"{'confidence':<14}{'values':>8}{'right':>8}{'share right':>14}")
    for low, high in zip(BUCKETS, BUCKETS[1:], strict=False):
        rows = [
            s
            for f in RANKED
            for s in scored[f]
            if s.value is not None and low <= s.probability < high and s.sample.dataset != DEMO
        ]
        right = sum(s.right for s in rows)
        share = f"{right / len(rows):.0%}" if rows else "-"
        print(f"{f'{low:.2f}-{min(high, 1):.2f}':<14}{len(rows):>8}{right:>8}{share:>14}")
    stored = [s for f in RANKED for s in scored[f] if s.stored and s.sample.dataset != DEMO]
    print(f"stored (at or above each fold's threshold): {len(stored)}, right {sum(s.right for s in stored)}\n")


def corroboration(totals: list[training.Scored], samples: list, reads: list) -> None:
    """Totals the product stores below the ranker's threshold because the page's arithmetic confirms them,
    leave-issuer-out: each document's total as its fold's ranker chose it (the rule itself was not fitted)."""
    from reindex_pipeline.invoices.extractor import arithmetic_confirms

    reading = {id(s): r for s, r in zip(samples, reads, strict=True)}
    print("== totals stored on the page's arithmetic (below the ranker's threshold), leave-issuer-out")
    print(f"{'set':<15}{'added':>8}{'right':>8}   total with them: right among all documents (wrong/stored)")
    for dataset in SETS:
        rows = [s for s in totals if s.sample.dataset == dataset]
        added = [
            s
            for s in rows
            if s.value is not None and not s.stored and arithmetic_confirms(reading[id(s.sample)], s.value)
        ]
        right = sum(s.right for s in rows if s.stored) + sum(s.right for s in added)
        stored = sum(s.stored for s in rows) + len(added)
        print(
            f"{dataset:<15}{len(added):>8}{sum(s.right for s in added):>8}   "
            f"{right / len(rows):.0%} ({stored - right}/{stored})"
        )
    print()


def customers(samples: list, reads: list) -> None:
    """The customer (a rule, nothing fitted): right and stored wrong where a set has the answer."""
    print("== customer (rules, nothing fitted): right among all documents (wrong among stored)")
    for dataset in SETS:
        rows = [(s, r) for s, r in zip(samples, reads, strict=True) if s.dataset == dataset]
        answered = [(s, r) for s, r in rows if s.expected.get("customer")]
        if not answered:
            stored = sum(1 for _, r in rows if r and r.customer)
            print(f"{dataset:<15}{len(rows):>5}   no answers; a customer stored for {stored} documents")
            continue
        got = [(s, r.customer.name if r and r.customer else None) for s, r in answered]
        right = sum(1 for s, name in got if name and matches("issuer", s.expected["customer"], name))
        stored = sum(1 for _, name in got if name)
        wrong = stored - right
        share = f"{right / len(answered):.0%}"
        print(f"{dataset:<15}{len(answered):>5}{share:>8} ({wrong}/{stored} {wrong / max(stored, 1):.0%})")
    print()


def extraction_ms(samples: list, passes: int = 3) -> float:
    """Milliseconds a document the offline extractor takes on pages already read (its caches warm)."""
    from reindex_pipeline.invoices.rules import extract_rules

    pages = [s.pages for s in samples if s.error is None]
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for page in pages:
            extract_rules(page)
        best = min(best, time.perf_counter() - started)
    return best / max(len(pages), 1) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("DATASETS_DIR", DATASETS)))
    parser.add_argument("--write", action="store_true", help=f"write the fitted ranker to {MODEL_FILE}")
    args = parser.parse_args()
    started = time.perf_counter()
    samples = load_sets(args.root)
    reads = training.readings(samples)
    print(f"{len(samples)} documents read in {time.perf_counter() - started:.1f} s")
    print(f"the offline extractor alone: {extraction_ms(samples):.1f} ms a document (best of 3 passes)")
    unreadable = [s for s in samples if s.error]
    for s in unreadable:
        print(f"  unreadable, counted wrong: {s.dataset}/{s.file}: {s.error}")
    print()

    lio = {f: training.out_of_fold(f, samples, reads) for f in RANKED}
    ranker = training.train(samples, reads)
    in_sample: dict[str, list[training.Scored]] = defaultdict(list)
    for field in RANKED:
        for s in training.score(field, ranker.fields[field], samples, reads):
            s.stored = s.value is not None and s.probability >= ranker.fields[field].threshold
            in_sample[field].append(s)
    table("in-sample (fitted and scored on the same documents)", in_sample)
    table("leave-issuer-out (the figure that counts)", lio)
    calibration(lio)
    corroboration(lio["total"], samples, reads)
    customers(samples, reads)
    print("thresholds of the fitted ranker: " + ", ".join(f"{f} {m.threshold:.2f}" for f, m in ranker.fields.items()))
    print(f"fitted ranker: {ranker.version}")
    if args.write:
        counts = {d: sum(s.dataset == d for s in samples) for d in SETS}
        MODEL_FILE.write_text(training.to_json(ranker, counts) + "\n")
        print(f"written to {MODEL_FILE}")
    if os.environ.get("OPENAI_API_KEY"):
        from reindex_pipeline.reindex.extractors import Extractor

        extractor = Extractor(
            openai_api_key=os.environ["OPENAI_API_KEY"], openai_model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        )
        results = evaluate(samples, extractor.extract)
        print(f"\n== {extractor.name} (nothing fitted): right among all documents")
        for dataset in SETS:
            rows = [(s, r) for s, r in zip(samples, results, strict=True) if s.dataset == dataset]
            cells = []
            for key in FIELDS:
                answered = [r for s, r in rows if key in s.answered()]
                cells.append(f"{key} {sum(r.right(key) for r in answered)}/{len(answered)}" if answered else "")
            print(f"{dataset:<15}" + "  ".join(c for c in cells if c))
    else:
        print("(OPENAI_API_KEY is not set: the OpenAI extractor is not scored)")


if __name__ == "__main__":
    main()
