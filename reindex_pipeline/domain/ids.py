"""Ids as the app stores them: documents, users, workspaces, requests and Dagster runs are UUIDs."""

from __future__ import annotations

import uuid


def is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def not_uuids(values: list[str], what: str) -> str | None:
    """Why ``values`` are not all ``what`` ids (the first that is not a UUID), or None."""
    bad = [value for value in values if not is_uuid(value)]
    return f"{bad[0]!r} is not a {what} id (a UUID)" if bad else None
