"""Work on a second thread, so that decoding, detecting and encoding overlap.

The heavy parts (FFmpeg's codecs, OpenCV, the detectors) release Python's
lock, so a decoder running ahead of the detector and an encoder behind it
keep every core busy. Both queues are bounded: memory holds a few frames,
however long the clip. An error on the second thread is raised on the first.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_POLL_S = 0.1


def prefetched(items: Iterator[T], depth: int = 8) -> Generator[T, None, None]:
    """`items`, produced on a background thread up to `depth` ahead. Close
    it (`contextlib.closing`) before what `items` reads from is closed: that
    stops the thread."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as e:
            put(("error", e))

    thread = threading.Thread(target=produce, name="veil-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join()


class Worker:
    """Calls run in order on one background thread; `submit` blocks while
    `depth` calls wait. After a call fails, nothing more runs and the error
    is raised by the next `submit` or by `finish`."""

    def __init__(self, depth: int = 8) -> None:
        self._calls: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="veil-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            if self._error is None:
                try:
                    call()
                except BaseException as e:
                    self._error = e

    def submit(self, call: Callable[[], None]) -> None:
        self._raise()
        self._calls.put(call)

    def finish(self) -> None:
        """Wait for every call; raise the first error."""
        self._calls.put(None)
        self._thread.join()
        self._raise()

    def abandon(self) -> None:
        """Stop after the calls already queued, without raising."""
        self._error = self._error or RuntimeError("abandoned")
        self._calls.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
