"""``./dev bench search [FOLDER]``: is each real invoice found by a query naming its issuer?

The invoices of FOLDER (default: the development set, ``INVOICES_DEV_DIR``) and 200 demo documents are read,
chunked and embedded as a reindex does, into a throwaway in-memory Qdrant collection with the product's point
layout. For each invoice the query is its issuer's name (``expected.json``); printed: whether a chunk of that
invoice ranks first by the dense vector alone, by the lexical vector alone, and by the hybrid query readers use
(``reindex_pipeline.vectors.search``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from qdrant_client import QdrantClient, models

from reindex_pipeline.demo.corpus import build_corpus
from reindex_pipeline.embeddings import LocalEmbedder
from reindex_pipeline.ingest.chunking import content_hash, split_pages
from reindex_pipeline.ingest.parsing import UnreadableFile, parse_pages
from reindex_pipeline.invoices.evaluation import DEV_SET
from reindex_pipeline.lexical import query_terms
from reindex_pipeline.vectors import LEXICAL, ChunkPoint, VectorIndex, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path(os.environ.get("INVOICES_DEV_DIR", DEV_SET)))
    parser.add_argument("--demo", type=int, default=200, help="demo documents mixed in as distractors")
    args = parser.parse_args()
    answers = json.loads((args.folder / "expected.json").read_text())
    documents: dict[str, list[str]] = {}
    for answer in answers:
        path = args.folder / answer["file"]
        try:
            documents[answer["file"]] = [c.content for c in split_pages(parse_pages(path.read_bytes(), ".pdf"))]
        except UnreadableFile as exc:
            print(f"{answer['file']}: not indexed ({exc})")
    for doc in build_corpus(args.demo, 7).documents:
        if doc.chunks:
            documents[str(doc.id)] = [c.content for c in doc.chunks]

    embedder = LocalEmbedder()
    client = QdrantClient(":memory:")
    index = VectorIndex(client, "search_bench", embedder.model, embedder.dimensions)
    index.ensure_collection()
    for name, chunks in documents.items():
        vectors = embedder.embed(chunks)
        vector_pass = index.plan_pass(name, len(chunks), "p1")
        points = [
            ChunkPoint(i, content_hash(text), v, text) for i, (text, v) in enumerate(zip(chunks, vectors, strict=True))
        ]
        index.write_pass(vector_pass, {"document_id": name}, points)
    total = sum(len(c) for c in documents.values())
    print(f"{len(documents)} documents, {total} chunks\n")

    hits = {"dense": 0, "lexical": 0, "hybrid": 0}
    found = [a for a in answers if a["file"] in documents]
    print(f"{'file':<48}{'issuer':<32}{'dense':>7}{'lexical':>9}{'hybrid':>8}")
    for answer in found:
        issuer = answer["issuer"]
        dense = embedder.embed([issuer])[0]
        indices, values = query_terms(issuer)
        tops = {
            "dense": client.query_points(index.collection, query=dense, limit=1).points,
            "lexical": client.query_points(
                index.collection, query=models.SparseVector(indices=indices, values=values), using=LEXICAL, limit=1
            ).points,
            "hybrid": search(client, index.collection, dense, issuer, limit=1),
        }
        marks = []
        for mode, points in tops.items():
            right = bool(points) and points[0].payload["document_id"] == answer["file"]
            hits[mode] += right
            marks.append("ok" if right else "MISS")
        print(f"{answer['file'][:46]:<48}{issuer[:30]:<32}{marks[0]:>7}{marks[1]:>9}{marks[2]:>8}")
    print("\ntop hit is the issuer's invoice: " + ", ".join(f"{m} {n}/{len(found)}" for m, n in hits.items()))


if __name__ == "__main__":
    main()
