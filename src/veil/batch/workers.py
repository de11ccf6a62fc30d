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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from veil.errors import WorkerDiedError, quiet_library_logs
from veil.jobs import Job, failure_report, is_video
from veil.media.files import output_root, sweep_beside
from veil.media.private import PrivateFolder
from veil.options import AnonymizeOptions
from veil.pipeline.anonymizer import Anonymizer
from veil.pipeline.output import FrameProgress
from veil.pipeline.parts import Part, PartResult, Survey, anonymize_part, cut_parts, join_parts, survey
from veil.report import FileReport, RunReport

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
    anonymizer: Anonymizer
    frames: Any  # a queue for (worker, frames done, frames expected), or None


_state: _State | None = None


def _start_worker(options: AnonymizeOptions, shares: Any, frames: Any) -> None:
    global _state
    die_with_parent()
    quiet_library_logs()
    with contextlib.suppress(Exception):  # without its share: the whole machine, slower, not wrong
        os.sched_setaffinity(0, shares.get(timeout=30))
    _state = _State(Anonymizer(options), frames)


def _anonymize(job: Job) -> FileReport:
    assert _state is not None
    frames = _state.frames

    def on_frame(done: int, expected: int) -> None:
        if frames is not None and (done % 10 == 0 or done == expected):
            frames.put((os.getpid(), done, expected))

    try:
        with output_root(job.root):
            return _state.anonymizer.anonymize(job.source, job.target, on_frame)
    finally:
        if frames is not None:
            frames.put((os.getpid(), 0, 0))  # this worker's video, if any, is over


def _frame_counter() -> FrameProgress | None:
    assert _state is not None
    frames = _state.frames
    if frames is None:
        return None

    def on_frame(done: int, expected: int) -> None:
        if done % 10 == 0 or done == expected:
            frames.put((os.getpid(), done, expected))

    return on_frame


def _survey(job: Job) -> Survey:
    return survey(job.source)


def _part(job: Job, part: Part, folder: Path) -> PartResult:
    assert _state is not None
    try:
        held = _state.anonymizer
        return anonymize_part(job, part, folder, held.options, held.detector, held.verifier, _frame_counter())
    finally:
        if _state.frames is not None:
            _state.frames.put((os.getpid(), 0, 0))


def _join(job: Job, done: list[PartResult]) -> FileReport:
    assert _state is not None
    with output_root(job.root):
        return join_parts(job, done, _state.anonymizer.options, _state.anonymizer.verifier)


def _describe() -> Any:
    assert _state is not None
    return _state.anonymizer.run_report()


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
        """Anonymize `jobs` (index, job), one task a worker at a time, and
        yield each job as it ends. `starting(job)` is called before each
        task that may land the job's output. A long clip is surveyed, done
        in parts and joined (`veil.pipeline.parts`); one that cannot be is done
        whole."""
        waiting = deque(
            _Task(Work.SURVEY if self._cuts(job) else Work.FILE, index, job) for index, job in jobs
        )
        attempts: dict[tuple[str, int, int], int] = {}
        running: dict[Future[Any], _Task] = {}
        splits: dict[int, _Split] = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.jobs:
                    task = waiting.popleft()
                    if task.kind is not Work.PART:
                        starting(task.job)
                    attempts[task.key] = attempts.get(task.key, 0) + 1
                    running[self._submit(task, splits)] = task
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    task = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        _sweep_after(task)
                        if attempts[task.key] < ATTEMPTS:
                            waiting.appendleft(task)
                        elif task.kind in (Work.FILE, Work.JOIN):
                            yield (
                                task.index,
                                task.job,
                                failure_report(task.job.source, WorkerDiedError("worker", ATTEMPTS)),
                            )
                        else:
                            self._whole(task, splits, waiting)
                        continue
                    except Exception:  # a survey or part that could not be: the clip in one piece
                        self._whole(task, splits, waiting)
                        continue
                    if task.kind in (Work.FILE, Work.JOIN):
                        self._forget(task.index, splits)
                        yield task.index, task.job, result
                    elif task.kind is Work.SURVEY:
                        self._split(task, result, splits, waiting)
                    else:
                        self._part_done(task, result, splits, waiting)
                if broken:  # the others in flight died with the pool: try them again
                    self._pool.shutdown(wait=True, cancel_futures=True)
                    for task in running.values():
                        _sweep_after(task)
                        waiting.appendleft(task)
                    running.clear()
                    self._pool = self._new_pool()
        finally:
            for index in list(splits):
                self._forget(index, splits)

    def _cuts(self, job: Job) -> bool:
        return self.jobs > 1 and self.options.video.segment_frames > 0 and is_video(job.source)

    def _submit(self, task: _Task, splits: dict[int, _Split]) -> Future[Any]:
        if task.kind is Work.FILE:
            return self._pool.submit(_anonymize, task.job)
        if task.kind is Work.SURVEY:
            return self._pool.submit(_survey, task.job)
        if task.kind is Work.PART:
            assert task.part is not None
            return self._pool.submit(_part, task.job, task.part, splits[task.index].folder.path)
        return self._pool.submit(_join, task.job, list(splits[task.index].done.values()))

    def _split(self, task: _Task, clip: Survey, splits: dict[int, _Split], waiting: deque[_Task]) -> None:
        parts = cut_parts(clip, self.jobs, self.options)
        if not parts:
            waiting.appendleft(_Task(Work.FILE, task.index, task.job))
            return
        splits[task.index] = _Split(PrivateFolder("veil-parts-"), len(parts))
        for part in reversed(parts):  # next, before other files: the clip's output comes sooner
            waiting.appendleft(_Task(Work.PART, task.index, task.job, part))

    def _part_done(
        self, task: _Task, result: PartResult, splits: dict[int, _Split], waiting: deque[_Task]
    ) -> None:
        split = splits.get(task.index)
        if split is None or split.abandoned:
            return
        split.done[result.number] = result
        if len(split.done) == split.parts:
            waiting.appendleft(_Task(Work.JOIN, task.index, task.job))

    def _whole(self, task: _Task, splits: dict[int, _Split], waiting: deque[_Task]) -> None:
        """Give up cutting `task`'s clip (once): it is done in one piece."""
        split = splits.get(task.index)
        if split is not None and split.abandoned:
            return
        if split is not None:
            split.abandoned = True
        waiting.appendleft(_Task(Work.FILE, task.index, task.job))

    @staticmethod
    def _forget(index: int, splits: dict[int, _Split]) -> None:
        split = splits.pop(index, None)
        if split is not None:
            split.folder.remove()

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        if self._frames is not None and self._watcher is not None:
            self._frames.put(None)
            self._watcher.join(5)


def _sweep_after(task: _Task) -> None:
    """Remove what a dead worker was writing of `task`'s output (a part is
    written in its split's own folder, removed with it)."""
    if task.kind is not Work.PART:
        with output_root(task.job.root):
            sweep_beside(task.job.target)


class Work(StrEnum):
    """What a worker is given of a file."""

    FILE = "file"  # the whole file
    SURVEY = "survey"  # a clip's packets read, to cut it into parts
    PART = "part"  # one part of a clip
    JOIN = "join"  # a clip's parts joined into its output


@dataclass(frozen=True)
class _Task:
    """A job's work for one worker: the whole file, or a clip's survey, one
    of its parts, or their join."""

    kind: Work
    index: int
    job: Job
    part: Part | None = None

    @property
    def key(self) -> tuple[Work, int, int]:
        return self.kind, self.index, self.part.number if self.part else -1


@dataclass
class _Split:
    """A clip being done in parts: their folder (a killed run's is swept by
    the next) and those done."""

    folder: PrivateFolder
    parts: int
    done: dict[int, PartResult] = field(default_factory=dict)
    abandoned: bool = False


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
