"""One model on one OpenAI-compatible endpoint: its client, its pacing and its retries, in one place.

The SDK's own retries are off (``max_retries=0``): a 429 must hold every caller of the model, not only the
one that got it, and each attempt must pass the pacer. Retried: 429 (except ``insufficient_quota``), 408, 409,
5xx, timeouts and lost connections, up to ``max_attempts`` with the delay of ``pacing.retry_delay``. Anything
else (400, 401, a refusal, output that does not fit the schema) fails at once: retrying would not change it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from reindex_pipeline.llm.pacing import RateLimiter, retry_after, retry_delay

RETRIED_STATUSES = frozenset({408, 409, 429})
#: characters per token, for estimating a request's size before sending it (as the API's own estimate does)
CHARS_PER_TOKEN = 4


class ApiFailed(RuntimeError):
    """A call failed for good: not retryable, or still failing after its retries. The message names why."""


@dataclass
class Usage:
    """What calls cost: counted from the API's ``usage`` fields and from the retries made."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0  # answers 429
    tokens_in: int = 0
    tokens_out: int = 0

    def add(self, other: Usage) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """``12 calls (1 retried, 0 rate-limited), 5,210 tokens in, 830 out``"""
        return (
            f"{self.calls} calls ({self.retries} retried, {self.rate_limited} rate-limited), "
            f"{self.tokens_in:,} tokens in, {self.tokens_out:,} out"
        )


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


_limiters: dict[tuple[str, str, str], RateLimiter] = {}
_clients: dict[tuple[str, str, float], Any] = {}
_registry = threading.Lock()


class ModelEndpoint:
    """Calls of one model: paced under the endpoint's limits (shared by every caller in the process), retried."""

    def __init__(
        self,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        max_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import openai

        self.model, self.max_attempts, self.sleep = model, max_attempts, sleep
        url = base_url or "https://api.openai.com/v1"
        account = hashlib.sha256(api_key.encode()).hexdigest()[:12]  # limits are per account and model
        with _registry:
            self.limiter = _limiters.setdefault((url, account, model), RateLimiter(time.monotonic, time.sleep))
            client_key = (api_key, url, timeout_s)
            if client_key not in _clients:
                _clients[client_key] = openai.OpenAI(
                    api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
                )
            self.client = _clients[client_key]

    def call(self, send: Callable[[Any], Any], tokens: int, usage: Usage) -> Any:
        """``send(client)`` makes one raw-response call (``client.x.with_raw_response.y(...)``); returns its
        parsed result. ``tokens``: the request's estimated size (prompt and most output), for pacing."""
        import openai

        for attempt in range(1, self.max_attempts + 1):
            ticket = self.limiter.admit(tokens)
            usage.calls += 1
            try:
                raw = send(self.client)
            except openai.APIStatusError as exc:
                self.limiter.observe(ticket, exc.response.headers)
                status, message = exc.status_code, _message(exc)
                quota = status == 429 and getattr(exc, "code", None) == "insufficient_quota"
                if quota or not (status in RETRIED_STATUSES or status >= 500):
                    raise ApiFailed(f"OpenAI error {status}: {message}") from exc
                usage.rate_limited += status == 429
                failure = f"OpenAI error {status}: {message}"
                delay = retry_delay(attempt, retry_after(exc.response.headers))
                if status == 429:
                    self.limiter.pause(delay)
            except openai.APIConnectionError as exc:  # includes timeouts
                kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "connection failed"
                failure, delay = f"OpenAI call {kind}: {exc}", retry_delay(attempt)
            else:
                self.limiter.observe(ticket, raw.headers)
                return raw.parse()
            if attempt == self.max_attempts:
                raise ApiFailed(f"{failure} (after {attempt} attempts)")
            usage.retries += 1
            self.sleep(delay)
        raise AssertionError("unreachable")


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))
