"""Score the offline extractor on a folder of real invoices with checked answers (``expected.json``:
file, total, currency, issuer, date), through the restore path's own PDF reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from reindex_pipeline.ingest.parsing import UnreadableFile, parse_pages
from reindex_pipeline.invoices.parties import org_key
from reindex_pipeline.reindex.extraction import Extraction, extract_rules

#: the development set of real invoices, beside the repository
DEV_SET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "invoices-dev"
#: expected.json key -> Extraction field
FIELDS = {"total": "total", "currency": "currency", "date": "invoice_date", "issuer": "vendor_name"}


@dataclass
class FileResult:
    file: str
    expected: dict
    got: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None

    def right(self, key: str) -> bool:
        return self.error is None and matches(key, self.expected[key], self.got.get(key))


def matches(key: str, expected: object, got: str | None) -> bool:
    """Amounts compare as numbers; issuers by organisation key, where one name may carry extra words
    ("SwissDev Greg Janusz Tomasik" is the issuer "SwissDev"); the rest as text."""
    if got is None:
        return False
    if key == "total":
        try:
            return Decimal(got) == Decimal(str(expected))
        except InvalidOperation:
            return False
    if key == "issuer":
        want, have = org_key(str(expected)), org_key(got)
        return bool(want) and (want == have or f" {want} " in f" {have} " or f" {have} " in f" {want} ")
    return str(expected).strip().upper() == got.strip().upper()


def evaluate(folder: Path, extract: Callable[[list[str]], Extraction] = extract_rules) -> list[FileResult]:
    """Each file of ``folder`` through the restore path's PDF reading and ``extract`` (the offline rules by
    default; the OpenAI extractor's ``extract`` to compare)."""
    answers = json.loads((folder / "expected.json").read_text())
    results = []
    for answer in answers:
        result = FileResult(answer["file"], answer)
        path = folder / answer["file"]
        try:
            extraction = extract(parse_pages(path.read_bytes(), path.suffix.lower()))
        except UnreadableFile as exc:
            result.error = str(exc)
        except Exception as exc:  # an extractor's failure on one file (an API refusal, a timeout) is that file's
            result.error = f"extraction failed: {type(exc).__name__}: {exc}"
        else:
            result.got = {key: getattr(extraction, name) for key, name in FIELDS.items()}
        results.append(result)
    return results


def accuracy(results: list[FileResult]) -> dict[str, int]:
    """Files right per field."""
    return {key: sum(r.right(key) for r in results) for key in FIELDS}
