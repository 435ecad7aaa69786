"""features.prefetch: items in order, the producer's errors raised at their item, early stops close it."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

from mulde_vad.features.prefetch import prefetched


def test_items_arrive_in_order_from_another_thread() -> None:
    threads = []

    def numbers() -> Generator[int, None, None]:
        for i in range(20):
            threads.append(threading.current_thread())
            yield i

    assert list(prefetched(numbers(), depth=2)) == list(range(20))
    assert threading.current_thread() not in threads and len(set(threads)) == 1


def test_an_error_of_the_producer_is_raised_after_the_items_before_it() -> None:
    def failing() -> Generator[int, None, None]:
        yield 1
        yield 2
        raise KeyError("bad frame")

    seen = []
    with pytest.raises(KeyError, match="bad frame"):
        for item in prefetched(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_closes_the_producer_in_its_thread() -> None:
    closed = threading.Event()
    produced = []

    def endless() -> Generator[int, None, None]:
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            closed.set()

    items = prefetched(endless(), depth=1)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # what a ``break`` or an exception in the consumer's loop does
    assert closed.is_set()
    assert len(produced) <= 3 + 2  # bounded read-ahead: the queue (1) and the item being put (1)
