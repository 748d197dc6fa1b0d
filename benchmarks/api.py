"""Benchmark: a reindex on the OpenAI path, against a local OpenAI-compatible server, side by side in one run.

Usage: ./dev bench api [--documents 2000] [--sample 40] [--chat-latency 1.5] [--embedding-latency 0.2]
                       [--rpm 300] [--tpm 500000] [--in-flight 32] [--error-rate 0.01]

The server (``benchmarks.openai_server``, a process of its own) answers chat completions with structured outputs
and embeddings after the given latencies, answers ``--error-rate`` of its calls 500, and keeps per-minute limits
per model (429 with ``retry-after`` and the ``x-ratelimit-*`` headers). The product is pointed at it with
``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` and reindexes the demo corpus with the real stores (embedded Postgres,
local Qdrant, FalkorDB), through the reindex's own functions (selection, ``ReindexRunner``; no Dagster).

1. Limits not binding: the way before (one call at a time, as each document is written: fields and graph one
   call each, embeddings one batch at a time) on ``--sample`` documents, then the new way (up to ``--in-flight``
   documents' calls at once, the next batch's calls sent while one is written, one structured output per
   document) on all ``--documents``; documents/s side by side.
2. A binding limit, ``--rpm`` requests per minute, then ``--tpm`` tokens per minute (0 = skip): the new way on
   all documents; the share of what the limit allowed that was used (from the first request to the last,
   counting the full minute's budget the API starts with), 429s seen, documents failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks.openai_server import add_api_arguments
from benchmarks.reindex import SEED, admin_of, document_ids, open_stores
from reindex_pipeline.db import migrate
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.domain.fingerprints import ALL_PHASES
from reindex_pipeline.embeddings import EmbeddingModel
from reindex_pipeline.llm.calls import Usage
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.reindex.runner import ReindexRunner, resolve_requester, select
from reindex_pipeline.resources import build_resources
from reindex_pipeline.settings import Settings
from reindex_pipeline.stack.supervisor import Stack

CHAT_MODEL = "gpt-4o-mini"


class Server:
    """``benchmarks.openai_server`` in a process of its own, with fresh limits."""

    def __init__(self, **options: float):
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.openai_server", *flags], stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"the benchmark's API server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{line.split()[-1]}"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/stats") as answer:
            return json.load(answer)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Result:
    documents: int
    seconds: float
    failed: list[str]
    usage: Usage

    @property
    def rate(self) -> float:
        return self.documents / self.seconds


def reindex(
    resources: dict,
    admin: str,
    keys: list[str],
    server: Server,
    new_way: bool,
    in_flight: int,
    limit: int | None = None,
) -> Result:
    """Selection and the per-document phases as the asset runs them, with the API extractor and embedder."""
    base_url = f"{server.url}/v1"
    extractor = Extractor(
        openai_api_key="sk-bench",
        openai_model=CHAT_MODEL,
        openai_base_url=base_url,
        one_call=new_way,
        max_in_flight=in_flight if new_way else 1,
    )
    embedder = EmbeddingModel(
        openai_api_key="sk-bench", openai_base_url=base_url, max_in_flight=8 if new_way else 1
    ).embedder()
    run_id = f"bench-api-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    with resources["app_db"].connect(autocommit=True) as conn:
        requester, _ = resolve_requester(conn, admin, None)
        selection = select(conn, requester, keys, None, None, run_id)
    resources = {**resources, "extractor": extractor}
    usage, failed = Usage(), []
    with open_stores(resources, embedder) as stores:
        runner = ReindexRunner(stores, run_id, ALL_PHASES, lambda _line: None, force=True, send_ahead=new_way)
        outcomes = list(runner.reindex(selection.eligible[:limit]))
    seconds = time.perf_counter() - started
    for outcome in outcomes:
        usage.add(outcome.usage)
        if not outcome.ok:
            failed.append(f"{outcome.document_id}: {outcome.error}")
    usage.add(embedder.usage)
    return Result(len(outcomes), seconds, failed, usage)


def limit_used(stats: dict) -> str:
    chat = stats["models"].get(CHAT_MODEL, {})
    shares = []
    for kind in ("requests", "tokens"):
        allowed = chat.get(f"{kind}_allowed") or 0
        if allowed and allowed < 1e8:  # a limit that was set
            shares.append(
                f"{kind} {chat[kind] / allowed:.0%} of what the limit allowed ({chat[kind]:,.0f} of {allowed:,.0f})"
            )
    return "; ".join(shares) or "no limit set"


def describe(name: str, result: Result, stats: dict) -> None:
    print(
        f"{name:<44}: {result.documents:5d} documents in {result.seconds:7.1f} s = {result.rate:6.2f} docs/s; "
        f"{len(result.failed)} failed; {result.usage.summary()}; server: {stats['refused_429']} answered 429, "
        f"{stats['errors_500']} answered 500, at most {stats['most_in_flight']} calls in flight"
    )
    for line in result.failed[:5]:
        print(f"    failed: {line}")


def unbound(resources: dict, admin: str, keys: list[str], args: argparse.Namespace, latency: dict) -> None:
    print("\n1. limits not binding")
    with Server(**latency, error_rate=args.error_rate) as server:
        before = reindex(resources, admin, keys, server, new_way=False, in_flight=1, limit=args.sample)
        before_stats = server.stats()
    describe("the way before (one call at a time)", before, before_stats)
    with Server(**latency, error_rate=args.error_rate) as server:
        new = reindex(resources, admin, keys, server, new_way=True, in_flight=args.in_flight)
        new_stats = server.stats()
    describe(f"concurrent ({args.in_flight} in flight, one call per document)", new, new_stats)
    print(f"new way / way before: {new.rate / before.rate:.1f}x the documents per second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2000, help="demo corpus size")
    parser.add_argument("--sample", type=int, default=40, help="documents reindexed the way before (slow)")
    add_api_arguments(parser)
    parser.add_argument("--rpm", type=float, default=300, help="requests per minute of a binding scenario (0: skip)")
    parser.add_argument("--tpm", type=float, default=500_000, help="tokens per minute of a binding scenario (0: skip)")
    parser.add_argument("--in-flight", type=int, default=32, help="OPENAI_MAX_IN_FLIGHT of the new way")
    parser.add_argument("--skip-unbound", action="store_true", help="only the binding-limit scenarios")
    args = parser.parse_args()
    latency = {"chat_latency": args.chat_latency, "embedding_latency": args.embedding_latency}
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings.from_env({"REINDEX_STATE_DIR": str(Path(tmp))})) as stack:
        env = stack.state.environment
        url = env["DATABASE_URL"]
        migrate.upgrade(url)
        report = load_demo_corpus(url, args.documents, seed=SEED)
        admin, keys = admin_of(url), document_ids(url)
        resources = build_resources(env, resolved=True)
        print(
            f"demo corpus: {report.documents} documents, {report.chunks} chunks; API latency {args.chat_latency} s per "
            f"chat call, {args.embedding_latency} s per embedding call, {args.error_rate:.0%} of calls answered 500"
        )
        if not args.skip_unbound:
            unbound(resources, admin, keys, args, latency)
        for name, limits in (
            (f"{args.rpm:,.0f} requests per minute", {"rpm": args.rpm}),
            (f"{args.tpm:,.0f} tokens per minute", {"tpm": args.tpm}),
        ):
            if not next(iter(limits.values())):
                continue
            print(f"\n2. a binding limit: {name} (the chat model's; each model has its own)")
            with Server(**latency, **limits, error_rate=args.error_rate) as server:
                bound = reindex(resources, admin, keys, server, new_way=True, in_flight=args.in_flight)
                bound_stats = server.stats()
            describe(f"concurrent ({args.in_flight} in flight), paced", bound, bound_stats)
            print(f"limit used (chat model): {limit_used(bound_stats)}")


if __name__ == "__main__":
    main()
