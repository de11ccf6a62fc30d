"""Worker processes for `--jobs N`: each loads its own models once and
works on a share of the cores, one file at a time.

Workers are started with `spawn`, so none inherits the coordinator's
threads or models, and each is pinned to its own cores (onnxruntime then
sizes its thread pool to them). Only paths and reports cross between
processes, never pixels. A worker that dies (killed, out of memory) takes
with it only the file it held: the pool is started again and that file is
tried once more, then reported as failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from veil.jobs import Job, failure_report
from veil.media.files import output_root
from veil.options import AnonymizeOptions
from veil.pipeline import FrameProgress, anonymize_file, new_run_report
from veil.report import FileReport, RunReport
from veil.verify import Verifier

ATTEMPTS = 2  # a file whose worker dies twice is reported as failed
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel kill this worker when the process that started it
    dies. Killed with its batch (`kill -9`), a worker must not go on to land
    an output that the next run, resuming, does not know of. (Ray's actors
    are not in their driver's process group, so a signal to the group does
    not reach them.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getppid()
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not Linux, or refused: the worker lives on as before
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)


def default_jobs() -> int:
    """Workers for this machine: one per two cores, and one per 3 GiB of
    memory at most (a worker holds its models and a 12 MP photo's
    buffers); one on a two-core laptop."""
    cores = len(os.sched_getaffinity(0))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    by_memory = memory // (3 << 30) if memory else cores
    return max(1, min(cores // 2, by_memory))


def core_shares(jobs: int) -> list[set[int]]:
    """The machine's cores dealt out to `jobs` workers, as evenly as they go."""
    cores = sorted(os.sched_getaffinity(0))
    if jobs >= len(cores):
        return [{cores[i % len(cores)]} for i in range(jobs)]
    return [set(cores[i::jobs]) for i in range(jobs)]


@dataclass
class _State:
    options: AnonymizeOptions
    detector: Any
    verifier: Verifier | None
    frames: Any  # a queue for (worker, frames done, frames expected), or None


_state: _State | None = None


def _start_worker(options: AnonymizeOptions, shares: Any, frames: Any) -> None:
    global _state
    die_with_parent()
    with contextlib.suppress(Exception):  # without its share: the whole machine, slower, not wrong
        os.sched_setaffinity(0, shares.get(timeout=30))
    from veil import devices

    detector = devices.face_detector(options)
    verifier = Verifier(options.verification, options.device) if options.verify else None
    _state = _State(options, detector, verifier, frames)


def _anonymize(job: Job) -> FileReport:
    assert _state is not None
    frames = _state.frames

    def on_frame(done: int, expected: int) -> None:
        if frames is not None and (done % 10 == 0 or done == expected):
            frames.put((os.getpid(), done, expected))

    try:
        with output_root(job.root):
            return anonymize_file(
                job.source, job.target, _state.options, _state.detector, on_frame, _state.verifier
            )
    finally:
        if frames is not None:
            frames.put((os.getpid(), 0, 0))  # this worker's video, if any, is over


def _describe() -> Any:
    assert _state is not None
    return new_run_report(_state.options, _state.detector, _state.verifier)


class WorkerPool:
    """`jobs` worker processes anonymizing files with `options`."""

    def __init__(self, jobs: int, options: AnonymizeOptions, on_frame: FrameProgress | None = None) -> None:
        self.jobs = jobs
        self.options = options
        self._context = multiprocessing.get_context("spawn")
        self._frames = self._context.Queue() if on_frame is not None else None
        self._pool = self._new_pool()
        self._watcher: threading.Thread | None = None
        if on_frame is not None:
            self._watcher = threading.Thread(target=self._watch, args=(on_frame,), daemon=True)
            self._watcher.start()

    def _new_pool(self) -> ProcessPoolExecutor:
        shares = self._context.Queue()
        for share in core_shares(self.jobs):
            shares.put(share)
        return ProcessPoolExecutor(
            self.jobs,
            mp_context=self._context,
            initializer=_start_worker,
            initargs=(self.options, shares, self._frames),
        )

    def _watch(self, on_frame: FrameProgress) -> None:
        """The frames of the videos in flight, summed over the workers."""
        assert self._frames is not None
        progress = FrameTally()
        while (message := self._frames.get()) is not None:
            on_frame(*progress.update(*message))

    def describe(self) -> RunReport:
        """The run report's head (versions, models), from a worker's models."""
        head: RunReport = self._pool.submit(_describe).result()
        return head

    def run(
        self, jobs: list[tuple[int, Job]], starting: Callable[[Job], None]
    ) -> Iterator[tuple[int, Job, FileReport]]:
        """Anonymize `jobs` (index, job), at most one a worker at a time, and
        yield each as it ends. `starting(job)` is called just before a job
        is handed to a worker."""
        waiting = list(reversed(jobs))
        attempts: dict[int, int] = {}
        running: dict[Future[FileReport], tuple[int, Job]] = {}
        while waiting or running:
            while waiting and len(running) < self.jobs:
                index, job = waiting.pop()
                starting(job)
                attempts[index] = attempts.get(index, 0) + 1
                running[self._pool.submit(_anonymize, job)] = (index, job)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                index, job = running.pop(future)
                try:
                    yield index, job, future.result()
                except BrokenProcessPool:
                    broken = True
                    if attempts[index] < ATTEMPTS:
                        waiting.append((index, job))
                    else:
                        yield index, job, failure_report(job.source, _WorkerDied())
            if broken:  # the others in flight died with the pool: try them again
                for index, job in running.values():
                    waiting.append((index, job))
                running.clear()
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        if self._frames is not None and self._watcher is not None:
            self._frames.put(None)
            self._watcher.join(5)


class FrameTally:
    """Frames done and expected of the videos being worked on, over workers."""

    def __init__(self) -> None:
        self._by_worker: dict[int, tuple[int, int]] = {}

    def update(self, worker: int, done: int, expected: int) -> tuple[int, int]:
        if expected == 0 and done == 0:
            self._by_worker.pop(worker, None)
        else:
            self._by_worker[worker] = (done, expected)
        return (
            sum(d for d, _ in self._by_worker.values()),
            sum(e for _, e in self._by_worker.values()),
        )


class _WorkerDied(Exception):
    def __str__(self) -> str:
        return f"the worker processing it died {ATTEMPTS} times (out of memory, or killed)"
