"""Run a generator ahead of its consumer in a background thread, a bounded number of items ahead.

Extraction alternates stages that release the GIL (decoding, OpenCV flow, onnxruntime and torch
kernels): producing batch k + 1 (decode, detect, flow) while batch k is encoded keeps both cores busy
where the sequential loop left one idle. Memory stays bounded: at most ``depth`` finished items wait in
the queue, plus the one being produced and the one being consumed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.1  # how often a producer blocked on a full queue checks whether the consumer went away


class _End:
    """The producer's last message: the exception that ended it, or None when the generator was exhausted."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def prefetched(items: Generator[T, None, None], depth: int = 1) -> Iterator[T]:
    """The items of ``items`` in order, produced by a background thread up to ``depth`` items ahead.

    An exception raised by ``items`` is raised here, at the item where it happened. When the consumer
    stops early (break, exception, Ctrl-C), the producer is told to stop and ``items`` is closed in its
    thread before this generator returns.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    ready: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message: T | _End) -> bool:
        while not stop.is_set():
            try:
                ready.put(message, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_End(None))
        except BaseException as error:  # handed to the consumer, raised there
            put(_End(error))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="mulde-vad-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            message = ready.get()
            if isinstance(message, _End):
                if message.error is not None:
                    raise message.error
                return
            yield message
    finally:
        stop.set()
        thread.join()
