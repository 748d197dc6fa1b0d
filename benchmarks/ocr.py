"""``./dev bench ocr``: the extractor on OCR'd pictures of the dev sets' PDFs against their text layer.

Every page of the PDF dev sets (``invoices-dev``, ``einvoices-dev``) is rendered at 300 dpi by PDFium and read
by Tesseract, as a restore reads a scan (:mod:`reindex_pipeline.ingest.ocr`); the same documents are also read
from their text layer. Both are scored leave-issuer-out with the same folds: each fold's ranker (and
threshold) is fitted on the text layer of the other issuers, as the shipped one is, and scores the held-out
documents twice, from their text layer and from their OCR. Printed: seconds per page of OCR and, per set and
field, the share of documents right (and wrong among stored) from each. ``sroie-dev`` holds transcriptions,
not images, and is not part of it.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

from reindex_pipeline.ingest import ocr
from reindex_pipeline.ingest.parsing import tidy_layout
from reindex_pipeline.invoices import training
from reindex_pipeline.invoices.evaluation import DATASETS, load_sets
from reindex_pipeline.invoices.extractor import RANKED

SETS = ("invoices-dev", "einvoices-dev")


def ocr_pages(path: Path) -> tuple[list[str], int, float]:
    import pypdfium2 as pdfium

    data = path.read_bytes()
    count = len(pdfium.PdfDocument(data))
    started = time.perf_counter()
    pages = [tidy_layout(ocr.ocr_image(ocr.render_pdf_page(data, i))) for i in range(count)]
    return [p for p in pages if p], count, time.perf_counter() - started


def lio_twice(field: str, samples, text_reads, ocr_reads) -> tuple[list, list]:
    """Each fold's model fitted on the text layer of the other issuers, scoring the fold from both readings."""
    from_text, from_ocr = {}, {}
    for test in training.folds(samples, training.FOLDS):
        held = set(test)
        train = [i for i in range(len(samples)) if i not in held]
        tr_samples, tr_reads = [samples[i] for i in train], [text_reads[i] for i in train]
        strength, threshold = training.choose(field, tr_samples, tr_reads, training.FOLDS - 1)
        model = training.fit_field(field, tr_samples, tr_reads, threshold, strength)
        scored_ids = [i for i in test if training.KEY[field] in samples[i].answered()]
        for out, reads in ((from_text, text_reads), (from_ocr, ocr_reads)):
            rows = training.score(field, model, [samples[i] for i in test], [reads[i] for i in test])
            for i, row in zip(scored_ids, rows, strict=True):
                row.stored = row.value is not None and row.probability >= threshold
                out[i] = row
    return [from_text[i] for i in sorted(from_text)], [from_ocr[i] for i in sorted(from_ocr)]


def cell(rows) -> str:
    if not rows:
        return "-"
    stored = [r for r in rows if r.stored]
    right = sum(r.right for r in stored)
    return f"{right / len(rows):.0%} ({len(stored) - right}/{len(stored)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("DATASETS_DIR", DATASETS)))
    args = parser.parse_args()
    problem = ocr.available()
    if problem:
        raise SystemExit(problem)
    samples = load_sets(args.root)  # every set: the folds are the product's; only the PDF sets are scored
    pages_total, seconds = 0, 0.0
    ocr_samples = []
    for sample in samples:
        if sample.dataset in SETS:
            pages, count, took = ocr_pages(args.root / sample.dataset / sample.file)
            pages_total, seconds = pages_total + count, seconds + took
            ocr_samples.append(replace(sample, pages=pages, error=None if pages else "OCR read nothing"))
        else:
            ocr_samples.append(sample)
    print(
        f"OCR: {pages_total} pages of {sum(s.dataset in SETS for s in samples)} PDFs in {seconds:.0f} s "
        f"({seconds / max(pages_total, 1):.1f} s a page at {ocr.DPI} dpi, {ocr.LANGUAGES})\n"
    )
    text_reads, ocr_reads = training.readings(samples), training.readings(ocr_samples)
    print("leave-issuer-out, the same folds and models: right among all documents (wrong/stored)")
    print(f"{'set':<15}{'field':<16}{'text layer':>14}{'OCR':>14}")
    totals = {"text": [0, 0], "ocr": [0, 0]}
    for field in RANKED:
        from_text, from_ocr = lio_twice(field, samples, text_reads, ocr_reads)
        for dataset in SETS:
            a = [r for r in from_text if r.sample.dataset == dataset]
            b = [r for r in from_ocr if r.sample.dataset == dataset]
            if not a:
                continue
            print(f"{dataset:<15}{training.KEY[field]:<16}{cell(a):>14}{cell(b):>14}")
            for name, rows in (("text", a), ("ocr", b)):
                totals[name][0] += sum(r.right and r.stored for r in rows)
                totals[name][1] += len(rows)
    text, ocr_ = (totals[k][0] / totals[k][1] for k in ("text", "ocr"))
    print(
        f"\nall fields of both sets: {text:.1%} right from the text layer, {ocr_:.1%} from OCR "
        f"({(ocr_ - text) * 100:+.1f} points)"
    )


if __name__ == "__main__":
    main()
