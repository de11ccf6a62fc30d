"""The threads that overlap decoding, detection and encoding."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from veil.background import Worker, prefetched


def test_prefetched_gives_every_item_in_order() -> None:
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))


def test_prefetched_raises_the_producers_error_after_its_items() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("damaged at frame 2")

    seen = []
    with pytest.raises(ValueError, match="damaged at frame 2"):
        for item in prefetched(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_early_stops_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = threading.active_count()
    with closing(prefetched(endless(), depth=2)) as stream:
        assert next(stream) == 0
    assert threading.active_count() == before
    assert len(produced) <= 5  # it stopped, a queue's worth ahead at most


def test_worker_runs_calls_in_order_and_raises_the_first_error() -> None:
    done: list[int] = []
    worker = Worker(depth=2)
    for n in range(10):
        worker.submit(lambda n=n: done.append(n))
    worker.finish()
    assert done == list(range(10))

    def fail() -> None:
        raise OSError("disk full")

    worker = Worker()
    worker.submit(fail)
    worker.submit(lambda: done.append(99))
    with pytest.raises(OSError, match="disk full"):
        worker.finish()
    assert 99 not in done  # nothing runs after a failure
