"""The dev sets of real documents with checked answers, and how an extracted value is scored against them.

``../shared/datasets/`` beside the repository holds three sets (each with an ``expected.json``):
``invoices-dev`` (PDF invoices, one issuer each), ``sroie-dev`` (receipts as transcribed text, grouped by
issuer in ``source_labels.json``) and ``einvoices-dev`` (e-invoice PDFs, grouped by producer family). A
document's *group* is what leave-issuer-out folds keep together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from reindex_pipeline.domain.extraction import Extraction
from reindex_pipeline.ingest.parsing import UnreadableFile, parse_pages
from reindex_pipeline.invoices.parties import org_key, same_organisation
from reindex_pipeline.invoices.rules import extract_rules

#: the folder of dev sets beside the repository
DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
#: the development set of real invoices
DEV_SET = DATASETS / "invoices-dev"
SETS = ("invoices-dev", "sroie-dev", "einvoices-dev")
#: expected.json key -> Extraction field
FIELDS = {
    "total": "total",
    "date": "invoice_date",
    "currency": "currency",
    "issuer": "vendor_name",
    "invoice_number": "invoice_number",
}


@dataclass
class Sample:
    """One document of a dev set: its answers, its leave-issuer-out group and its pages (or why none)."""

    dataset: str
    file: str
    group: str
    expected: dict
    pages: list[str] = field(default_factory=list)
    error: str | None = None

    def answered(self) -> list[str]:
        """The fields this document has an answer for."""
        return [k for k in FIELDS if self.expected.get(k) not in (None, "")]


def load_set(folder: Path) -> list[Sample]:
    answers = json.loads((folder / "expected.json").read_text())
    labels_file = folder / "source_labels.json"
    labels = {x["file"]: x for x in json.loads(labels_file.read_text())} if labels_file.exists() else {}
    samples = []
    for answer in answers:
        label = labels.get(answer["file"], {})
        group = label.get("issuer_group") or label.get("family") or org_key(answer.get("issuer") or answer["file"])
        sample = Sample(folder.name, answer["file"], f"{folder.name}:{group}", answer)
        path = folder / answer["file"]
        try:
            sample.pages = parse_pages(path.read_bytes(), path.suffix.lower())
        except UnreadableFile as exc:
            sample.error = str(exc)
        samples.append(sample)
    return samples


def load_sets(root: Path = DATASETS, names: tuple[str, ...] = SETS, demo: int = 60) -> list[Sample]:
    """Every document of the named sets that exist under ``root``, and ``demo`` documents of the demo corpus
    (:data:`DEMO`: the ranker learns its layout too, so the demo still extracts fully; never scored)."""
    samples = [s for name in names if (root / name / "expected.json").exists() for s in load_set(root / name)]
    return samples + (demo_samples(demo) if demo else [])


#: the demo corpus's set name: trained on, never scored, never used to choose a threshold
DEMO = "demo"


def demo_samples(count: int) -> list[Sample]:
    from reindex_pipeline.demo.corpus import build_corpus

    samples = []
    for doc in build_corpus(count * 2, seed=11).documents:
        if not doc.pages or len(samples) >= count:
            continue
        want = doc.expected
        expected = {key: want.get(name) for key, name in FIELDS.items()}
        expected["total"] = want["total"].replace(",", "") if want.get("total") else None
        samples.append(Sample(DEMO, str(doc.id), f"{DEMO}:{want.get('vendor_name')}", expected, doc.pages))
    return samples


def matches(key: str, expected: object, got: str | None) -> bool:
    """Amounts compare as numbers; issuers by organisation key, one name may hold the other at its start or
    as most of it ("SwissDev Greg Janusz Tomasik" is the issuer "SwissDev", "AIK HUAT HARDWARE" the issuer
    "AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD"); invoice numbers without spaces; the rest as text."""
    if got is None or expected is None:
        return False
    if key == "total":
        try:
            return Decimal(got) == Decimal(str(expected))
        except InvalidOperation:
            return False
    if key == "issuer":
        return same_organisation(str(expected), got)
    if key == "invoice_number":
        return re.sub(r"\s", "", str(expected)).upper() == re.sub(r"\s", "", got).upper()
    return str(expected).strip().upper() == got.strip().upper()


@dataclass
class FileResult:
    file: str
    expected: dict
    got: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None

    def right(self, key: str) -> bool:
        return self.error is None and matches(key, self.expected.get(key), self.got.get(key))


def evaluate(samples: list[Sample], extract: Callable[[list[str]], Extraction] = extract_rules) -> list[FileResult]:
    """Each sample through ``extract`` (the offline extractor by default; the OpenAI extractor's to compare)."""
    results = []
    for sample in samples:
        result = FileResult(sample.file, sample.expected, error=sample.error)
        if sample.error is None:
            try:
                extraction = extract(sample.pages)
            except Exception as exc:  # an extractor's failure on one file (an API refusal, a timeout) is that file's
                result.error = f"extraction failed: {type(exc).__name__}: {exc}"
            else:
                result.got = {key: getattr(extraction, name) for key, name in FIELDS.items()}
        results.append(result)
    return results
