"""Run a generator in a background thread, a bounded number of items ahead of its consumer.

The reindex step yields each document's materialisations to Dagster, which stores them in its event
log before asking for the next one (~14 ms per event on PostgreSQL). Reading the runner ahead lets the
next batch's embedding and writes (which release the GIL) overlap with that storage. Closing the
consumer (a failed or cancelled run) stops the producer between two items, so a document is never
left half-written by this: the runner's own per-document transactions stay the unit of work.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(items: Iterator[T], depth: int = 64) -> Iterator[T]:
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                buffer.put(item)  # blocks while the buffer is full; the consumer drains it when it stops
                if stop.is_set():
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(_Failed(exc))

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full buffer, then wait for it
            with contextlib.suppress(queue.Empty):
                buffer.get_nowait()
            worker.join(timeout=0.1)
