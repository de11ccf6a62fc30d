"""What veil's commands show on the terminal while they work: a progress bar
of files (and of frames, for a video), each failure as it comes, PASS or
FAIL per file with its first findings, and the one-line summary. Only the
CLI calls these; the library never prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from veil.batch.journal import Standing
from veil.jobs import Job
from veil.pipeline.render import RenderJob
from veil.report import FileReport, FileStatus, RunReport, Verification

SHOWN_FINDINGS = 5  # per file on the terminal; the report has them all


def with_progress(
    out: Console,
    errors: Console,
    planned: Sequence[Job | RenderJob | FileReport],
    has_video: bool,
    work: Callable[[Callable[[FileReport], None], Callable[[int, int], None]], RunReport],
) -> RunReport:
    """Run `work` (given a per-file and a per-frame callback) under a progress
    bar of files, and of frames for a video; failures are printed as they come."""
    total = sum(1 for entry in planned if not _is_skip(entry))
    with _progress_bar(out, total, has_video) as bar:
        task = bar.add_task("files", total=total)
        frames = bar.add_task("frames", total=None, visible=False)
        failed = 0

        def step(file: FileReport) -> None:
            nonlocal failed
            if file.status is FileStatus.FAILED:
                failed += 1
                bar.update(task, description=f"files ({failed} failed)")
                file_error(errors, file.input, file.error or "failed")
            elif file.verification is not None and not file.verification.passed:
                print_verdict(errors, file.output or file.input, file.verification)
            bar.update(frames, visible=False, completed=0)
            if file.status is not FileStatus.SKIPPED:
                bar.advance(task)

        def frame_step(done: int, expected: int) -> None:
            bar.update(frames, visible=True, completed=done, total=expected or None)

        return work(step, frame_step)


def _is_skip(entry: Job | RenderJob | FileReport) -> bool:
    return isinstance(entry, FileReport) and entry.status is FileStatus.SKIPPED


def _progress_bar(console: Console, total: int, has_video: bool) -> Progress:
    """Files done, and for a video its frames, speed and time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(show_speed=True),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=console.quiet or (total < 2 and not has_video),
    )


def print_verdict(console: Console, path: str, verification: Verification) -> None:
    if verification.passed:
        review = f" ({len(verification.review)} to review)" if verification.review else ""
        console.print(f"PASS {path}{review}", highlight=False, markup=False, soft_wrap=True)
        return
    console.print(f"FAIL {path}", style="bold red", highlight=False, markup=False, soft_wrap=True)
    for finding in verification.failures[:SHOWN_FINDINGS]:
        console.print(f"  {finding.describe()}", highlight=False, markup=False, soft_wrap=True)
    if len(verification.failures) > SHOWN_FINDINGS:
        more = len(verification.failures) - SHOWN_FINDINGS
        console.print(f"  ... and {more} more in the report", highlight=False, markup=False)


def status_lines(folder: Path, standing: Standing) -> str:
    """`veil status`: where a batch stands, in two lines."""
    left = standing.pending + standing.running
    parts = [f"{standing.done} of {standing.total} files done"]
    if standing.verification_failed:
        parts[0] += f" ({standing.verification_failed} FAILED VERIFICATION: review them)"
    parts.append(f"{standing.failed} failed")
    parts.append(f"{left} to do")
    if standing.running:
        parts[-1] += f" ({standing.running} in progress, or cut off: a new run redoes them)"
    when = (
        datetime.fromtimestamp(standing.updated).astimezone().isoformat(timespec="seconds")
        if standing.updated
        else "never"
    )
    state = "complete" if not left and standing.total else "incomplete: run the same command to resume"
    return f"{folder}: {', '.join(parts)}\nbatch {state}; last change {when}"


def say_error(message: str) -> None:
    """What stopped a whole command, as one line on stderr (printed even
    with -q): `veil: MESSAGE`. A single file's failure is `file_error`."""
    Console(stderr=True).print(f"veil: {message}", highlight=False, markup=False, soft_wrap=True)


def file_error(console: Console, path: str, message: str) -> None:
    """One file that failed, as one line: `error: PATH: MESSAGE` (the rest of the run goes on)."""
    console.print(f"error: {path}: {message}", highlight=False, markup=False, soft_wrap=True)


def summary_line(
    report: RunReport, report_path: Path | None, done_as: str = "anonymized", masks_as: str = "faces masked"
) -> str:
    """The run's last line: files done and failed, masks, verification, where the report is."""
    done = report.count(FileStatus.ANONYMIZED)
    failed = report.count(FileStatus.FAILED)
    skipped = report.count(FileStatus.SKIPPED)
    parts = [f"{done} {done_as}", f"{failed} failed"]
    if skipped:
        parts.append(f"{skipped} skipped")
    videos = [f.video for f in report.files if f.video is not None]
    if videos:
        parts.append(f"{sum(v.frames for v in videos)} video frames")
    line = f"veil: {', '.join(parts)}; {report.faces} {masks_as}"
    text = sum(1 for f in report.files for t in f.text if t.decision == "mask")
    signs = sum(1 for f in report.files for t in f.text if t.label == "sign" and t.decision != "mask")
    if text or signs:
        line += f", {text} lines of text masked, {signs} signs left readable"
    unverified = sum(1 for f in report.files if f.verification_failed)
    if unverified:
        line += f"; {unverified} FAILED VERIFICATION (outputs kept: review them before publishing)"
    if report_path is not None:
        line += f"; report: {report_path}"
    return ("FAILED " if failed or unverified else "") + line
