"""Rate-limit pacing and retry delays as plain logic (no I/O; the clock is passed in).

An OpenAI-compatible API states its limits in every answer's headers: ``x-ratelimit-limit-requests`` /
``-tokens`` (per minute), ``x-ratelimit-remaining-*`` (what is left) and ``x-ratelimit-reset-*`` (how long
until it is full again, e.g. ``6m0s``, ``1.5s``, ``20ms``). :class:`RateLimiter` keeps an estimate of what is
left for requests and for tokens, refilled at the stated rate and corrected by every answer, and tells a caller
how long to wait before its request fits. Before the first answer the limits are unknown and nothing waits
(at most the configured number of calls are in flight); a 429 pauses every caller for its ``retry-after``.
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: retry delays: 0.5 s doubling to at most 30 s, times a random factor in [0.5, 1) (jitter)
RETRY_BASE_S, RETRY_CAP_S = 0.5, 30.0
#: share of a limit kept back: calls answered out of the order they were sent make the estimate a few calls
#: off, and a level kept in reserve costs no throughput once the budget is spent (it refills at the same rate)
SPARE = 0.02


def parse_duration(text: str | None) -> float | None:
    """Seconds in an API duration: ``"6m0s"`` -> 360.0, ``"1.5s"`` -> 1.5, ``"20ms"`` -> 0.02, ``"2"`` -> 2.0."""
    if text is None:
        return None
    text = text.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait an answer asks for: ``retry-after-ms``, else ``retry-after`` in seconds (None if neither)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = parse_duration(lowered.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    return parse_duration(lowered.get("retry-after"))


def retry_delay(attempt: int, asked: float | None = None, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry ``attempt`` (1 = the first retry): what the API asked for when it said, else an
    exponential backoff; with jitter either way, so callers that failed together do not retry together."""
    jitter = 0.5 + rand() / 2
    if asked is not None:
        return asked + RETRY_BASE_S * jitter
    return min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (attempt - 1)) * jitter


@dataclass
class _Budget:
    """What is left of one limit (requests or tokens per minute), refilled continuously."""

    limit: float | None = None
    left: float = 0.0
    at: float = 0.0

    def refill(self, now: float) -> None:
        if self.limit is not None:
            self.left = min(self.limit, self.left + self.limit / 60 * max(now - self.at, 0.0))
        self.at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits with ``SPARE`` of the limit kept back (0 when it does, or when the limit
        is unknown)."""
        if self.limit is None:
            return 0.0
        needed = min(amount + SPARE * self.limit, self.limit)
        return 0.0 if self.left >= needed else (needed - self.left) / (self.limit / 60)


@dataclass
class Ticket:
    """One admitted request: what it reserved, and what had been reserved before it (to read its answer)."""

    tokens: int
    spent_requests: float
    spent_tokens: float
    sent_at: float


class RateLimiter:
    """Paces the calls of one model on one endpoint. Thread-safe; ``clock`` is ``time.monotonic`` in use."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]):
        self.clock, self.sleep = clock, sleep
        self.requests, self.tokens = _Budget(), _Budget()
        self.spent_requests = self.spent_tokens = 0.0  # reserved since the start (to place an answer in time)
        self.paused_until = 0.0
        self.waited_s = 0.0
        self._lock = threading.Lock()

    def admit(self, tokens: int) -> Ticket:
        """Block until a request of ``tokens`` fits under both limits, then reserve it."""
        while True:
            with self._lock:
                now = self.clock()
                self.requests.refill(now)
                self.tokens.refill(now)
                wait = max(self.paused_until - now, self.requests.wait_for(1), self.tokens.wait_for(tokens))
                if wait <= 0:
                    self.requests.left -= 1
                    self.tokens.left -= tokens
                    self.spent_requests += 1
                    self.spent_tokens += tokens
                    return Ticket(tokens, self.spent_requests, self.spent_tokens, now)
                self.waited_s += wait
            self.sleep(wait)

    def observe(self, ticket: Ticket, headers: Mapping[str, str]) -> None:
        """Correct the estimate from an answer's headers: what the API says was left when it admitted the
        request, less what was reserved since, plus what refilled since."""
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            now = self.clock()
            for budget, kind, spent_then, spent_now in (
                (self.requests, "requests", ticket.spent_requests, self.spent_requests),
                (self.tokens, "tokens", ticket.spent_tokens, self.spent_tokens),
            ):
                limit, left = (
                    _number(lowered.get(f"x-ratelimit-limit-{kind}")),
                    _number(lowered.get(f"x-ratelimit-remaining-{kind}")),
                )
                if limit is None or left is None or limit <= 0:
                    continue
                refilled = limit / 60 * max(now - ticket.sent_at, 0.0)
                budget.limit = limit
                budget.left = min(limit, left - (spent_now - spent_then) + refilled)
                budget.at = now

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (the API answered 429 and asked for a wait)."""
        with self._lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
