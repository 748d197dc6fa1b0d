"""``./dev bench extraction [FOLDER]``: the offline extractor on real invoices with checked answers.

Prints, per file, what was expected and what came out, then the accuracy per field. The default folder
is the development set beside the repository when there is one (``INVOICES_DEV_DIR``); any folder with PDFs
and an ``expected.json`` of the same shape works. With OPENAI_API_KEY set (``OPENAI_MODEL`` optional), the
OpenAI structured-output extractor runs over the same files and its accuracy is printed beside.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from reindex_pipeline.invoices.evaluation import DEV_SET, FIELDS, FileResult, accuracy, evaluate
from reindex_pipeline.reindex.extractors import Extractor


def report(name: str, results: list[FileResult], elapsed: float) -> dict[str, int]:
    print(f"== {name}")
    for r in results:
        print(f"{r.file}")
        if r.error:
            print(f"    rejected: {r.error}")
            continue
        for key in FIELDS:
            mark = "ok " if r.right(key) else "MISS"
            print(f"    {mark} {key:<8} expected {r.expected[key]!s:<32} got {r.got.get(key)!s}")
    n = len(results)
    print(f"{n} files in {elapsed:.1f} s ({elapsed / n * 1000:.0f} ms per file: PDF text + extraction)\n")
    return accuracy(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path(os.environ.get("INVOICES_DEV_DIR", DEV_SET)))
    args = parser.parse_args()
    runs: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    results = evaluate(args.folder)
    runs["offline rules"] = report("offline rules", results, time.perf_counter() - started)
    if os.environ.get("OPENAI_API_KEY"):
        extractor = Extractor(
            openai_api_key=os.environ["OPENAI_API_KEY"], openai_model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        )
        started = time.perf_counter()
        runs[extractor.name] = report(
            extractor.name, evaluate(args.folder, extractor.extract), time.perf_counter() - started
        )
    else:
        print("(OPENAI_API_KEY is not set: the OpenAI extractor is not compared)\n")
    n = len(results)
    print(f"{'field':<10}" + "".join(f"{name:>20}" for name in runs))
    for key in FIELDS:
        print(f"{key:<10}" + "".join(f"{f'{right[key]}/{n}':>20}" for right in runs.values()))


if __name__ == "__main__":
    main()
