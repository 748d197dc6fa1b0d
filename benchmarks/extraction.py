"""``./dev bench extraction [FOLDER]``: the offline extractor on real invoices with checked answers.

Prints, per file, what was expected and what came out, then the accuracy per field. The default folder
is the development set beside the repository when there is one (``INVOICES_DEV_DIR``); any folder with PDFs
and an ``expected.json`` of the same shape works.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reindex_pipeline.invoices.evaluation import DEV_SET, FIELDS, accuracy, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEV_SET)
    args = parser.parse_args()
    started = time.perf_counter()
    results = evaluate(args.folder)
    elapsed = time.perf_counter() - started
    for r in results:
        print(f"{r.file}")
        if r.error:
            print(f"    rejected: {r.error}")
            continue
        for key in FIELDS:
            mark = "ok " if r.right(key) else "MISS"
            print(f"    {mark} {key:<8} expected {r.expected[key]!s:<32} got {r.got.get(key)!s}")
    n = len(results)
    print(f"\n{'field':<10}{'right':>8}")
    for key, right in accuracy(results).items():
        print(f"{key:<10}{right:>5}/{n}")
    print(f"\n{n} files in {elapsed:.1f} s ({elapsed / n * 1000:.0f} ms per file: PDF text + extraction)")


if __name__ == "__main__":
    main()
