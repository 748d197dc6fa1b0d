"""A local OpenAI-compatible API for the benchmarks: chat completions with structured outputs, embeddings.

Usage: python -m benchmarks.openai_server [--chat-latency 1.5] [--embedding-latency 0.2] [--rpm N] [--tpm N]
                                           [--error-rate 0.01] [--port 0]

It answers like the API where the product depends on it:
- ``POST /v1/chat/completions`` with ``response_format`` ``json_schema``: after ``--chat-latency`` seconds, a
  JSON value of the requested schema, its strings taken from the document's own words (so the graph built from
  it has entities and relations like a real answer); ``usage`` counts characters / 4.
- ``POST /v1/embeddings``: after ``--embedding-latency`` seconds, deterministic unit vectors per text.
- Rate limits per model, as the API keeps them: requests and tokens per minute, each a budget refilled
  continuously (full = one minute's worth). A request's tokens are its prompt's (characters / 4) plus its
  ``max_completion_tokens``, counted when it arrives. Over either budget: 429 with ``retry-after-ms`` and the
  ``x-ratelimit-*`` headers; every answer carries the headers.
- ``--error-rate`` of the admitted calls answer 500 (after the latency), chosen at random with a fixed seed.
- ``GET /stats``: what was admitted, refused and failed, and what the limits allowed over the time they ran.
Prints ``listening on PORT`` when ready.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORD = re.compile(r"[A-Za-z][A-Za-z0-9&.\-]{2,}")


class Budget:
    """One per-minute limit, refilled continuously; ``allowed`` is what it let through since it started."""

    def __init__(self, limit: float):
        self.limit, self.left, self.at, self.started = limit, limit, time.monotonic(), None
        self.admitted = 0.0

    def refill(self, now: float) -> None:
        self.left = min(self.limit, self.left + self.limit / 60 * (now - self.at))
        self.at = now

    def wait_for(self, amount: float) -> float:
        return 0.0 if self.left >= amount else (amount - self.left) / (self.limit / 60)

    def allowed(self, now: float) -> float:
        """The most it could have admitted from its first request until now."""
        return self.limit + self.limit / 60 * (now - self.started) if self.started is not None else 0.0


class Limits:
    def __init__(self, rpm: float, tpm: float):
        self.rpm, self.tpm = rpm, tpm
        self.models: dict[str, tuple[Budget, Budget]] = {}
        self.lock = threading.Lock()
        self.refused = 0
        self.last_admitted = 0.0

    def admit(self, model: str, tokens: int) -> tuple[bool, dict[str, str]]:
        with self.lock:
            requests, budget = self.models.setdefault(model, (Budget(self.rpm), Budget(self.tpm)))
            now = time.monotonic()
            requests.refill(now)
            budget.refill(now)
            wait = max(requests.wait_for(1), budget.wait_for(min(tokens, budget.limit)))
            if wait <= 0:
                for b, amount in ((requests, 1), (budget, tokens)):
                    b.started = now if b.started is None else b.started
                    b.left -= amount
                    b.admitted += amount
                self.last_admitted = now
            else:
                self.refused += 1
            headers = {
                "x-ratelimit-limit-requests": str(int(requests.limit)),
                "x-ratelimit-remaining-requests": str(max(int(requests.left), 0)),
                "x-ratelimit-reset-requests": f"{(requests.limit - requests.left) / (requests.limit / 60):.3f}s",
                "x-ratelimit-limit-tokens": str(int(budget.limit)),
                "x-ratelimit-remaining-tokens": str(max(int(budget.left), 0)),
                "x-ratelimit-reset-tokens": f"{(budget.limit - budget.left) / (budget.limit / 60):.3f}s",
            }
            if wait > 0:
                headers["retry-after-ms"] = str(math.ceil(wait * 1000))
                headers["retry-after"] = str(math.ceil(wait))
            return wait <= 0, headers

    def stats(self) -> dict[str, Any]:
        with self.lock:
            end = self.last_admitted
            return {
                "refused_429": self.refused,
                "models": {
                    model: {
                        "requests": r.admitted,
                        "requests_allowed": r.allowed(end),
                        "tokens": t.admitted,
                        "tokens_allowed": t.allowed(end),
                    }
                    for model, (r, t) in self.models.items()
                },
            }


def instance(schema: dict, defs: dict, words: list[str], at: list[int]) -> Any:
    """A JSON value of ``schema`` (the subset structured outputs use), strings from ``words`` in turn."""
    if "$ref" in schema:
        return instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, words, at)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        return instance(options[0], defs, words, at)
    if "enum" in schema:
        values = schema["enum"]
        at[0] += 1
        return values[at[0] % len(values)]
    kind = schema.get("type")
    if kind == "object":
        return {name: instance(sub, defs, words, at) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance(schema["items"], defs, words, at) for _ in range(3)]
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    at[0] += 1
    return words[at[0] % len(words)] if words else "text"


def chat_answer(body: dict) -> tuple[dict, int, int]:
    text = "".join(str(m.get("content", "")) for m in body.get("messages", []))
    words = list(dict.fromkeys(WORD.findall(text)))[:12]
    schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {"type": "string"})
    content = json.dumps(instance(schema, schema.get("$defs", {}), words, [0]))
    prompt, completion = len(text) // 4 + 1, len(content) // 4 + 1
    answer = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": content, "refusal": None},
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return answer, prompt, completion


def vector(text: str, dimensions: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    values = [((b / 255.0) - 0.5) for b in (seed * (dimensions // len(seed) + 1))[:dimensions]]
    values[int.from_bytes(seed[:2], "little") % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def embeddings_answer(body: dict) -> tuple[dict, int]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dimensions = int(body.get("dimensions") or 1536)
    data = []
    for i, text in enumerate(texts):
        v = vector(str(text), dimensions)
        if body.get("encoding_format") == "base64":
            import base64

            data.append(
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": base64.b64encode(struct.pack(f"{len(v)}f", *v)).decode(),
                }
            )
        else:
            data.append({"object": "embedding", "index": i, "embedding": v})
    tokens = sum(len(str(t)) // 4 + 1 for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }, tokens


class JsonHandler(BaseHTTPRequestHandler):
    """Answers in JSON, quietly (also the tests' ``fake_openai`` handler)."""

    def read_json(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")

    def send_json(self, status: int, payload: dict, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """The API's behaviour: latencies and errors (shared by the server and ``benchmarks.api``)."""
    parser.add_argument("--chat-latency", type=float, default=1.5, help="seconds per chat completion")
    parser.add_argument("--embedding-latency", type=float, default=0.2, help="seconds per embeddings call")
    parser.add_argument("--error-rate", type=float, default=0.01, help="share of admitted calls answered 500")


def serve(args: argparse.Namespace) -> None:
    limits = Limits(args.rpm, args.tpm)
    rng, rng_lock = random.Random(args.seed), threading.Lock()
    counts = {"answered": 0, "errors_500": 0, "chat": 0, "embeddings": 0, "in_flight": 0, "most_in_flight": 0}
    counts_lock = threading.Lock()

    class Handler(JsonHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with counts_lock:
                payload = {**counts, **limits.stats()}
            self.send_json(200, payload, {})

        def do_POST(self) -> None:  # noqa: N802
            body = self.read_json()
            path = self.path.removeprefix("/v1")
            if path == "/chat/completions":
                text = "".join(str(m.get("content", "")) for m in body.get("messages", []))
                tokens = len(text) // 4 + 1 + int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
                latency, kind = args.chat_latency, "chat"
            elif path == "/embeddings":
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                tokens, latency, kind = sum(len(str(t)) // 4 + 1 for t in texts), args.embedding_latency, "embeddings"
            else:
                self.send_json(404, {"error": {"message": f"no route {self.path}"}}, {})
                return
            admitted, headers = limits.admit(str(body.get("model")), tokens)
            if not admitted:
                message = f"Rate limit reached for {body.get('model')}: retry after {headers['retry-after-ms']} ms"
                self.send_json(
                    429, {"error": {"message": message, "type": "requests", "code": "rate_limit_exceeded"}}, headers
                )
                return
            with counts_lock:
                counts["in_flight"] += 1
                counts["most_in_flight"] = max(counts["most_in_flight"], counts["in_flight"])
            time.sleep(latency)
            with rng_lock:
                fail = rng.random() < args.error_rate
            with counts_lock:
                counts["in_flight"] -= 1
                counts["errors_500" if fail else "answered"] += 1
                counts[kind] += not fail
            if fail:
                self.send_json(
                    500, {"error": {"message": "The server had an error while processing your request."}}, headers
                )
                return
            payload = chat_answer(body)[0] if kind == "chat" else embeddings_answer(body)[0]
            self.send_json(200, payload, headers)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    add_api_arguments(parser)
    parser.add_argument("--rpm", type=float, default=1e9, help="requests per minute per model")
    parser.add_argument("--tpm", type=float, default=1e12, help="tokens per minute per model")
    parser.add_argument("--seed", type=int, default=7)
    serve(parser.parse_args())


if __name__ == "__main__":
    main()
