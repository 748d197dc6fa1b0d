"""Deterministic graph keys (pure).

Entity keys are normalised: case-folded, inner whitespace collapsed, no leading or trailing
whitespace. Besides merging "ACME  Corp " with "acme corp", this sidesteps a FalkorDB 4.16 quirk:
an indexed lookup (`MATCH (e:Entity {key: $k})`) misses values that END in whitespace, although a
scan (`WHERE e.key = $k`) finds them. Display names are stored exactly as given.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def normalise_name(name: str) -> str:
    return _SPACE.sub(" ", name).strip().casefold()


def entity_key(entity_type: str, name: str) -> str:
    """``type:normalised name``; raises on a name that is empty after normalising."""
    normal = normalise_name(name)
    if not normal:
        raise ValueError(f"an entity of type {entity_type!r} needs a non-blank name")
    return f"{normalise_name(entity_type)}:{normal}"


def chunk_node_id(document_id: str, chunk_index: int, pass_id: str) -> str:
    """Chunk nodes belong to one pass of one document (see ``graph.queries``)."""
    return f"{document_id}:{chunk_index}:{pass_id}"
