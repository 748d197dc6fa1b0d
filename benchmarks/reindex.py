"""Benchmark: what a reindex costs, the same work measured side by side in one run.

Usage: ./dev bench reindex [--documents 1000] [--rounds 3] [--indexed 1000,50000] [--sample 100] [--skip-dagster]
                            [--skip-size]

1. Throughput on a demo corpus of ``--documents`` documents, with the real offline model and stores:
   - the plain loop: the reindex's own functions (selection, ReindexRunner) called directly, no Dagster, in
     this process and as a command (a new process: imports, model load, loop), which is what the Dagster
     path's end to end (request -> last run's end) compares with;
   - the Dagster path: a queue request picked up by the daemon's sensor, and a UI-style backfill of every
     partition (both through the Dagster webserver and daemon on Postgres storage, as ``./dev up`` runs them),
     in ``--rounds`` rounds, in turn first; each way runs between two plain commands and its ratio is taken
     against their mean (the machine drifts over minutes);
   - one run per partition, as a naive partitioned asset would launch them (a few, then per document);
   - a "stale only" reindex with nothing changed, as a fraction of a full one;
   - the plain loop with the local model embedding each batch before it is written, against embedding the
     next batch while this one is written (the runner's way), in turn.
2. Store size: the per-document cost of the Postgres, Qdrant and graph work for the same sample of
   documents with 1,000 and with 50,000 documents already indexed, in two stores built side by side and
   measured in alternating passes (a deterministic hash embedder stands in for the model here, so the
   figures are the stores' work alone; the embedding is the same per document whatever the store size).
Starts its own throwaway stack in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import psycopg

from reindex_pipeline.db import migrate
from reindex_pipeline.demo.corpus import stable_id
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.domain.fingerprints import ALL_PHASES, EXTRACTION, GRAPH, VECTORS
from reindex_pipeline.reindex.runner import DocumentOutcome, ReindexRunner, Stores, resolve_requester, select
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore, build_resources, close_local_qdrant
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.supervisor import Stack
from reindex_pipeline.vectors import VectorIndex, collection_name

SEED = 7
PHASE_STORE = {EXTRACTION: "postgres", VECTORS: "qdrant", GRAPH: "graph"}


class HashEmbedder:
    """Deterministic unit vectors from a text's hash: the stores' work without the model's."""

    model, dimensions = "bench-hash", 384

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dimensions)
            out.append((v / np.linalg.norm(v)).tolist())
        return out


def admin_of(url: str) -> str:
    admin = str(stable_id(SEED, "user", "admin"))
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1 FROM users WHERE id = %s", (admin,)).fetchone(), "no demo admin"
    return admin


def document_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT id::text FROM documents ORDER BY created_at, id")]


@contextlib.contextmanager
def open_stores(resources: dict, embedder=None) -> Iterator[Stores]:
    """The stores a run writes to, opened as the reindex asset opens them."""
    app_db: AppDatabase = resources["app_db"]
    qdrant: QdrantStore = resources["qdrant"]
    graph: GraphDatabase = resources["graph"]
    embedder = embedder or resources["embeddings"].embedder()
    stores = Stores(connect=app_db.connect, extractor=resources["extractor"], embedder=embedder)
    stores.vectors = VectorIndex(
        qdrant.client(), collection_name(qdrant.collection, embedder.model), embedder.model, embedder.dimensions
    )
    stores.vectors.ensure_collection()
    with graph.open() as graph_store:
        graph_store.ensure_schema()
        stores.graph = graph_store
        yield stores


def plain_loop(
    resources: dict, requester_id: str, keys: list[str], force: bool = True, embedder=None, send_ahead: bool = True
) -> tuple[float, list[DocumentOutcome]]:
    """Selection and the per-document phases, exactly as the asset calls them, minus Dagster."""
    started = time.perf_counter()
    run_id = f"plain-{uuid.uuid4().hex[:8]}"
    with resources["app_db"].connect(autocommit=True) as conn:
        requester, _ = resolve_requester(conn, requester_id, None)
        selection = select(conn, requester, keys, None, None, run_id)
    with open_stores(resources, embedder) as stores:
        runner = ReindexRunner(stores, run_id, ALL_PHASES, print, force=force, send_ahead=send_ahead)
        outcomes = list(runner.reindex(selection.eligible))
    failed = [o for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} documents failed, e.g. {failed[0].error}"
    return time.perf_counter() - started, outcomes


# -- 1. throughput -------------------------------------------------------------------------------------------
def throughput(stack: Stack, documents: int, skip_dagster: bool, rounds: int) -> None:
    env = stack.state.environment
    url = env["DATABASE_URL"]
    migrate.upgrade(url)
    report = load_demo_corpus(url, documents, seed=SEED)
    admin = admin_of(url)
    keys = document_ids(url)
    resources = build_resources(env, resolved=True)
    print(f"demo corpus: {report.documents} documents, {report.chunks} chunks")

    loading = time.perf_counter()
    resources["embeddings"].embedder().embed(["warm the model up"])  # the model loads once per process
    model_load = time.perf_counter() - loading
    plain, outcomes = plain_loop(resources, admin, keys)
    n = len(outcomes)
    print(f"plain loop (no Dagster), model warm : {n} documents in {plain:6.1f} s = {n / plain:6.1f} docs/s")
    print(f"model load in a new process         : {model_load:.1f} s")
    stale, stale_outcomes = plain_loop(resources, admin, keys, force=False)
    written = sum(1 for o in stale_outcomes if o.metadata)
    print(
        f"stale only, nothing changed         : {n} documents in {stale:6.2f} s = {stale / plain:.2%} of a full "
        f"reindex ({written} documents written)"
    )
    # The local model embeds the next batch while this one is written; before, one after the other. In turn,
    # twice each, so the machine's drift falls on both alike.
    ratios = []
    for _ in range(2):
        before, _ = plain_loop(resources, admin, keys, send_ahead=False)
        ahead, _ = plain_loop(resources, admin, keys)
        ratios.append(before / ahead)
        print(f"  embedded after / ahead of the writes: {n / before:5.1f} / {n / ahead:5.1f} docs/s")
    print(f"embedding the next batch while one is written: {statistics.mean(ratios):.2f}x the documents a second")
    close_local_qdrant(str(Settings.from_env(env).qdrant_path))  # the next process opens it
    if skip_dagster:
        command, loop = plain_command(env, admin)
        print(f"plain loop as a command: {n} documents in {command:6.1f} s (start->exit), {loop:.1f} s loop")
        return
    from benchmarks.dagster_path import DagsterPath

    eligible = [o.document_id for o in outcomes]
    with DagsterPath(stack, url, admin) as dagster:
        dagster.wait_for_partitions(len(eligible))
        time.sleep(2)
        partitions = dagster.all_partitions()
        # The machine's speed drifts over minutes (a VM's neighbours, checkpoints): each Dagster way runs between
        # two plain commands and its ratio is taken against their mean, and the ways swap places every round.
        ways = {"queue request": dagster.queue_request, "UI backfill": lambda: dagster.backfill(partitions)}
        print(
            f"\n{rounds} rounds of a queue request (daemon) and a UI backfill of all {len(partitions)} partitions, "
            "in turn first; a plain command (the plain loop in a new process: imports, model load, loop) runs before "
            "the first way and after every way, and each way's ratios are taken against the mean of the commands "
            "either side of it (the machine drifts over minutes).\n"
            "  end to end: from the request (the command's start) to the last run's end (the command's exit);\n"
            "  in its runs: from the first run's start to the last run's end, against the command's model load"
            " and loop."
        )
        ratios: dict[str, list[float]] = {}
        before = plain_command(env, admin)
        print(f"  plain command : {before[0]:5.1f} s end to end, {before[1]:5.1f} s model load and loop")
        for r in range(1, rounds + 1):
            print(f"round {r}:")
            for name in list(ways) if r % 2 else list(ways)[::-1]:
                t = ways[name]()
                after = plain_command(env, admin)
                command, loop = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
                e2e, runs = t.end_to_end / command, t.in_runs / loop
                ratios.setdefault(f"{name}, end to end", []).append(e2e)
                ratios.setdefault(f"{name}, in its runs", []).append(runs)
                print(
                    f"  {name:<14}: {t.end_to_end:5.1f} s end to end ({e2e:.2f}x), {t.in_runs:5.1f} s in "
                    f"{t.runs} run(s) ({runs:.2f}x); pickup {t.pickup:.1f} s, "
                    f"start {t.first_start - t.first_created:.1f} s; "
                    f"storing materialisations {t.event_log_s / n * 1000:.1f} ms per document; "
                    f"status final after {t.status_after:.1f} s"
                )
                print(f"  plain command : {after[0]:5.1f} s end to end, {after[1]:5.1f} s model load and loop")
                before = after
                if name == "queue request":
                    ours = t.end_to_end / n
        print(f"Dagster path / plain loop, median of {rounds} rounds [lowest-highest]:")
        for name, values in ratios.items():
            print(f"  {name:<28}: {statistics.median(values):.2f}x [{min(values):.2f}-{max(values):.2f}]")
        queued, started, done = dagster.restore_one(RESTORED_TEXT)
        print(
            f"one restored file (drop -> indexed)   : queued after {queued:.1f} s, run started after {started:.1f} s, "
            f"indexed after {done:.1f} s"
        )
        single = eligible[:5]
        per_partition = dagster.one_run_per_partition(single) / len(single)
        print(
            f"one run per partition               : {per_partition:6.2f} s/doc, ours (queue request, last round) "
            f"{ours:.3f} s/doc = {per_partition / ours:.0f}x less"
        )


RESTORED_TEXT = """INVOICE
Invoice No: BR-2026-0042
Date: 2026-11-20
From: Fabrikam Restorations Ltd
Bill To: Coho Winery

Item                     Qty   Amount
Archive retrieval          1   120.00
Total: 120.00 EUR
"""


def plain_command(env: dict[str, str], requester_id: str) -> tuple[float, float]:
    """The plain loop run the way a script is: a new process that imports, loads the model and loops.
    Seconds from its start to its exit (what end to end means for the Dagster path), and of its model load
    and loop (what a run's start to end compares with: a run loads the model too)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.reindex", "--plain-loop-as", requester_id],
        env={**os.environ, **env},
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - started
    return elapsed, float(result.stdout.strip().splitlines()[-1])


def _plain_loop_here(requester_id: str) -> None:
    """The child of ``plain_command``: prints the seconds of its model load and loop, last."""
    started = time.perf_counter()
    resources = build_resources(os.environ, resolved=True)
    resources["embeddings"].embedder().embed(["load the model"])
    plain_loop(resources, requester_id, document_ids(os.environ["DATABASE_URL"]))
    print(f"{time.perf_counter() - started:.3f}")
    close_local_qdrant(str(Settings.from_env(os.environ).qdrant_path))  # as a script would, before exiting


# -- 2. store size -------------------------------------------------------------------------------------------
def per_store(outcomes: list[DocumentOutcome]) -> dict[str, float]:
    """Median milliseconds per document for each store's phase (its writes and its commit)."""
    return {PHASE_STORE[p]: statistics.median(o.metadata[p]["duration_s"] for o in outcomes) * 1000 for p in ALL_PHASES}


def store_size(stack: Stack, sizes: list[int], sample: int, repeat: int = 5) -> None:
    """One store per size (own database, Qdrant collection and graph, the same corpus and sample), filled
    first; then passes over the sample alternate between them, so that whatever the machine does meanwhile
    (a checkpoint, another process) falls on every size alike and the ratio is the store size's alone."""
    env = stack.state.environment
    target = max(sizes) + sample
    embedder = HashEmbedder()
    stores = []
    for size in sizes:
        store = _SizeStore(env, size, int(target * 1.4))
        assert len(store.eligible) >= target, f"only {len(store.eligible)} eligible documents for {target}"
        measured, rest = store.eligible[:sample], store.eligible[sample:]
        started = time.perf_counter()
        plain_loop(store.resources, store.admin, measured, embedder=embedder)  # the sample first
        for start in range(0, size - sample, 2000):
            plain_loop(store.resources, store.admin, rest[start : min(start + 2000, size - sample)], embedder=embedder)
        print(f"  store of {size} documents indexed in {time.perf_counter() - started:.0f} s")
        stores.append((store, measured))
    for store, _ in stores:
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load, done before measuring
    passes: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    for _ in range(repeat):
        for store, measured in stores:
            passes[store.size].append(
                per_store(plain_loop(store.resources, store.admin, measured, embedder=embedder)[1])
            )
    close_local_qdrant(str(Settings.from_env(env).qdrant_path))  # now, not in the interpreter's shutdown
    costs = {size: {k: statistics.median(p[k] for p in ps) for k in ps[0]} for size, ps in passes.items()}
    for size, ps in passes.items():
        print(
            f"  {size:>6} documents indexed: per document (median of {sample}, median of {repeat} passes "
            "alternating with the other sizes, [lowest-highest pass]) "
            + ", ".join(
                f"{k} {ms:.1f} ms [{min(p[k] for p in ps):.1f}-{max(p[k] for p in ps):.1f}]"
                for k, ms in costs[size].items()
            )
        )
    first, last = costs[sizes[0]], costs[sizes[-1]]
    print(
        f"  cost at {sizes[-1]} vs {sizes[0]} documents: " + ", ".join(f"{k} x{last[k] / first[k]:.2f}" for k in first)
    )


class _SizeStore:
    """A store of its own for one size: a database with the demo corpus, a Qdrant collection, a graph."""

    def __init__(self, env: dict[str, str], size: int, documents: int):
        self.size = size
        server = env["DATABASE_URL"].rsplit("/", 1)[0]
        name = f"bench_size_{size}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        self.url = f"{server}/{name}"
        migrate.upgrade(self.url)
        started = time.perf_counter()
        report = load_demo_corpus(self.url, documents, seed=SEED)  # the same seed: the same documents and ids
        print(
            f"\nstore size {size}: demo corpus of {report.documents} documents loaded in "
            f"{time.perf_counter() - started:.0f} s"
        )
        self.admin = admin_of(self.url)
        self.resources = {
            **build_resources({**env, "DATABASE_URL": self.url}, resolved=True),
            "qdrant": QdrantStore(path=str(Settings.from_env(env).qdrant_path), collection=f"size_{size}"),
            "graph": GraphDatabase(falkordb_port=int(env["FALKORDB_PORT"]), graph_name=f"size_{size}"),
        }
        with self.resources["app_db"].connect() as conn:
            requester, _ = resolve_requester(conn, self.admin, None)
            self.eligible = [d.id for d in select(conn, requester, document_ids(self.url), None, None, "size").eligible]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1000, help="demo corpus size for the throughput part")
    parser.add_argument("--indexed", default="1000,50000", help="store sizes (documents indexed) to compare")
    parser.add_argument("--sample", type=int, default=100, help="documents measured at each store size")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the sample at each store size")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of: a queue request and a backfill, each then a plain command"
    )
    parser.add_argument("--skip-dagster", action="store_true")
    parser.add_argument("--skip-size", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--plain-loop-as", help=argparse.SUPPRESS)  # the child process of plain_command
    args = parser.parse_args()
    if args.plain_loop_as:
        _plain_loop_here(args.plain_loop_as)
        return
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings.from_env({"REINDEX_STATE_DIR": str(Path(tmp))})) as stack:
        if not args.skip_throughput:
            throughput(stack, args.documents, args.skip_dagster, args.rounds)
        if not args.skip_size:
            store_size(stack, [int(s) for s in args.indexed.split(",")], args.sample, args.repeat)


if __name__ == "__main__":
    main()
