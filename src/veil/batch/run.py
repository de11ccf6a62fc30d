"""A batch run: the planned jobs, those the journal has done taken as they
are, the rest done in this process (`jobs=1`) or by worker processes, each
recorded in the journal as it ends. The report lists every file in the
planned order, so a resumed batch's report is the one an uninterrupted run
would have written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from veil.batch.journal import Journal, fingerprint, options_key
from veil.batch.raypool import RayPool
from veil.batch.workers import WorkerPool
from veil.detection.detect import Detector
from veil.errors import JournalError
from veil.jobs import Job, find_jobs, is_video
from veil.media.files import output_root
from veil.options import AnonymizeOptions
from veil.pipeline.anonymizer import Anonymizer
from veil.pipeline.output import FrameProgress, Progress, veil_version
from veil.report import FileReport, FileStatus, RunReport

T = TypeVar("T")


@dataclass(frozen=True)
class Ray:
    """`--ray [ADDRESS]`: the cluster at `address`, or (None) a Ray of veil's own."""

    address: str | None = None


def anonymize_paths(
    paths: Iterable[Path | str],
    out_dir: Path | str | None = None,
    options: AnonymizeOptions | None = None,
    progress: Progress | None = None,
    detector: Detector | None = None,
    on_frame: FrameProgress | None = None,
) -> RunReport:
    """Anonymize files and folders (walked recursively) in this process and
    return the run's report.

    With `out_dir`, each output keeps its path relative to the folder it was
    found in (a file given directly lands at the top of `out_dir`); without,
    it is written beside its input as NAME.veil.EXT.
    """
    out = Path(out_dir) if out_dir is not None else None
    planned = find_jobs([Path(p) for p in paths], out)
    return run_batch(planned, options or AnonymizeOptions(), None, 1, progress, on_frame, detector)


def run_batch(
    planned: list[Job | FileReport],
    options: AnonymizeOptions,
    journal: Journal | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    on_frame: FrameProgress | None = None,
    detector: Detector | None = None,
    ray: Ray | None = None,
) -> RunReport:
    """Carry out `planned`, resuming from `journal` when given, on Ray's
    actors when `ray` is given. A journal that cannot be written (a full
    disk, a read-only folder) costs the batch its resumability, said in the
    report's warnings, not its files."""
    kept = _Kept(journal)
    key = options_key(asdict(options), veil_version())
    planned_jobs = [entry for entry in planned if isinstance(entry, Job)]
    kept.call(lambda j: j.recover())
    gone = [
        FileReport(
            input=str(source),
            status=FileStatus.SKIPPED,
            output=str(target),
            error="the input is gone since an earlier run of this batch; its output stays",
        )
        for source, target in kept.call(lambda j: j.gone(planned_jobs)) or []
    ]
    kept.call(lambda j: j.plan(planned_jobs))
    results: dict[int, FileReport] = {}
    todo: list[tuple[int, Job]] = []
    for index, entry in enumerate(planned):
        if isinstance(entry, FileReport):
            results[index] = entry
            continue
        done = kept.call(partial(Journal.finished, job=entry, options=key))
        if done is None:
            todo.append((index, entry))
        else:
            results[index] = done
    for index in sorted(results):
        if progress is not None:
            progress(results[index])

    prints: dict[str, str | None] = {}

    def starting(job: Job) -> None:
        try:
            prints[str(job.target)] = fingerprint(job.source)
        except OSError:
            prints[str(job.target)] = None
        kept.call(lambda j: j.start(job))

    def ended(index: int, job: Job, report: FileReport) -> None:
        results[index] = report
        print_ = prints.pop(str(job.target), None)
        kept.call(lambda j: j.finish(job, report, key, print_))
        if progress is not None:
            progress(report)

    # Workers for more than one file, or for a clip they may do in parts.
    clips = options.video.segment_frames > 0 and any(is_video(job.source) for _, job in todo)
    workers = min(jobs, len(todo)) if not clips else jobs
    if ray is not None or (jobs > 1 and (len(todo) > 1 or clips)):
        pool: WorkerPool | RayPool
        if ray is not None:
            pool = RayPool(max(1, min(jobs, len(todo))), options, ray.address)
        else:
            pool = WorkerPool(workers, options, on_frame)
        try:
            head = pool.describe()
            for index, job, report in pool.run(todo, starting):
                ended(index, job, report)
        except BaseException:
            pool.close(cancel=True)
            raise
        pool.close()
    else:
        anonymizer = Anonymizer(options, detector)
        head = anonymizer.run_report()
        for index, job in todo:
            starting(job)
            with output_root(job.root):
                report = anonymizer.anonymize(job.source, job.target, on_frame)
            ended(index, job, report)
    head.files = [results[index] for index in range(len(planned))] + gone
    head.warnings.extend(kept.warnings)
    return head


class _Kept:
    """The journal while it can be written; after its first failure, none."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal
        self.warnings: list[str] = []

    def call(self, action: Callable[[Journal], T]) -> T | None:
        if self.journal is None:
            return None
        try:
            return action(self.journal)
        except JournalError as e:
            self.journal = None
            self.warnings.append(f"warning: {e}; this batch cannot be resumed from here on")
            return None
