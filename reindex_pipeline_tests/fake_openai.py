"""A local HTTP server that answers like the OpenAI API: the HTTP boundary for our OpenAI code.

openai 3.x sends through ``httpx2``, which respx / pytest-httpx do not intercept, so the tests point the
real client (``base_url``) at this server instead. Each route answers from a queue or a function.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from benchmarks.openai_server import JsonHandler

Answer = tuple[int, dict, dict]  # status, json body, headers


class FakeOpenAI:
    def __init__(self) -> None:
        self.routes: dict[str, Callable[[dict], Answer]] = {}
        self.requests: list[tuple[str, dict, dict]] = []  # path, json body, headers
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.read_json()
                path = self.path.removeprefix("/v1")
                fake.requests.append((path, body, dict(self.headers)))
                route = fake.routes.get(path)
                self.send_json(*(route(body) if route else (404, {"error": {"message": "no route"}}, {})))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def on(self, path: str, answer: Callable[[dict], Answer] | Answer) -> None:
        self.routes[path] = answer if callable(answer) else (lambda _body: answer)

    def calls(self, path: str) -> list[tuple[dict, dict]]:
        return [(body, headers) for p, body, headers in self.requests if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(content: str | None, refusal: str | None = None, finish_reason: str = "stop") -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def embeddings_answer(body: dict, dimensions: int = 3) -> Answer:
    """Deterministic vectors (first component = text length), returned out of order on purpose."""
    texts = body["input"]
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": [float(len(t))] + [1.0 / (k + 1) for k in range(dimensions - 1)],
        }
        for i, t in reversed(list(enumerate(texts)))
    ]
    return (
        200,
        {
            "object": "list",
            "data": data,
            "model": body.get("model", "text-embedding-3-small"),
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        },
        {},
    )
