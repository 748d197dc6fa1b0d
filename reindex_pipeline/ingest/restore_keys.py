"""Restores-bucket keys: ``org/<org>/project/<project>/restores/<ts>__<file>``, validated strictly (pure).

Stricter than a prefix check: no ``..``, no absolute path, no empty or dot segments, no backslashes or
control characters, no percent-encoded ``.``, ``/`` or ``\\``, exactly that shape, a supported file type,
and (checked by the caller against the database) an org/project that exist and belong together.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

SUPPORTED = {
    ".pdf": "application/pdf",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
    ".xml": "application/xml",  # an e-invoice: XRechnung, UBL or CII
}
_ENCODED_SEPARATOR = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)
_NAME = re.compile(r"^(?P<ts>[^_/]+)__(?P<file>[^/]+)$")
#: ``<ts>``: an ISO 8601 date or date-time (time separators ``:``, ``-`` or none, as keys often avoid ``:``),
#: or Unix seconds / milliseconds.
_ISO = re.compile(
    r"^(?P<y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?:[-:]?(?P<M>\d{2})(?:[-:]?(?P<S>\d{2})(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)
_EPOCH = re.compile(r"^\d{10}(?:\d{3})?$")
_NOT_UTF8 = re.compile(r"\\x[0-9a-f]{2}")


class InvalidRestoreKey(ValueError):
    """A key that must not be processed; the message says why."""


@dataclass(frozen=True)
class RestoreKey:
    key: str
    org_id: str
    project_id: str
    timestamp: str
    filename: str

    @property
    def extension(self) -> str:
        return "." + self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else ""

    @property
    def mime_type(self) -> str:
        return SUPPORTED[self.extension]


def printable_key(key: str) -> str:
    """A key as text the database takes: the bytes of a local file name that are not UTF-8 (which Python
    reads as lone surrogates) written as ``\\xNN``, a key :func:`parse_restore_key` rejects for it."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return key


def parse_restore_key(key: str) -> RestoreKey:
    if not key:
        raise InvalidRestoreKey("empty key")
    if _NOT_UTF8.search(key):
        raise InvalidRestoreKey(
            f"the name is not UTF-8 (its other bytes shown as \\xNN): rename the file to restore it: {key!r}"
        )
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise InvalidRestoreKey(f"absolute path: {key!r}")
    if "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidRestoreKey(f"backslash or control character in {key!r}")
    if _ENCODED_SEPARATOR.search(key):  # a store or a proxy that decodes it would see '..' or '/'
        raise InvalidRestoreKey(f"percent-encoded '.', '/' or '\\' in {key!r}")
    parts = key.split("/")
    if any(p == "" for p in parts):
        raise InvalidRestoreKey(f"empty path segment in {key!r}")
    if any(p in (".", "..") for p in parts):
        raise InvalidRestoreKey(f"'..' or '.' segment in {key!r}")
    if len(parts) != 6 or parts[0] != "org" or parts[2] != "project" or parts[4] != "restores":
        raise InvalidRestoreKey(f"not org/<org>/project/<project>/restores/<ts>__<file>: {key!r}")
    for label, value in (("org", parts[1]), ("project", parts[3])):
        try:
            uuid.UUID(value)
        except ValueError:
            raise InvalidRestoreKey(f"{label} id is not a UUID: {value!r}") from None
    match = _NAME.match(parts[5])
    if match is None:
        raise InvalidRestoreKey(f"file name is not <ts>__<file>: {parts[5]!r}")
    problem = timestamp_problem(match["ts"])
    if problem:
        raise InvalidRestoreKey(f"{problem} in {parts[5]!r}")
    restore = RestoreKey(key, parts[1], parts[3], match["ts"], match["file"])
    if restore.extension not in SUPPORTED:
        raise InvalidRestoreKey(
            f"unsupported file type {restore.extension or '(none)'!r}: supported are {', '.join(sorted(SUPPORTED))}"
        )
    return restore


def timestamp_problem(ts: str) -> str | None:
    """None when ``ts`` is a timestamp a backup tool writes (see :data:`_ISO`); else what is wrong."""
    if _EPOCH.match(ts):
        return None
    match = _ISO.match(ts)
    if match is None:
        return f"<ts> is not a timestamp (ISO 8601 such as 2026-11-23T10-00-00Z, or Unix seconds): {ts!r}"
    try:
        datetime(
            int(match["y"]),
            int(match["m"]),
            int(match["d"]),
            int(match["H"] or 0),
            int(match["M"] or 0),
            int(match["S"] or 0),
        )
    except ValueError as exc:
        return f"<ts> is not a valid date or time ({exc}): {ts!r}"
    return None
