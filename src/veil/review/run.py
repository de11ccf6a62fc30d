"""A run to review: the files `veil anonymize -o OUTDIR` wrote, read from
its report, each with its original, output, plan and draft.

Files are known by opaque ids made for this review; nothing outside the
report's list is ever opened. Applying a draft renders the output again
from the original (`veil.pipeline.render.render_file`) into a hidden folder of
OUTDIR and verifies it; only a render that passed is swapped in with its
plan. One that failed is deleted and refused (`RejectedError`): the output on
disk and its plan stay as they were, byte for byte, and so does the
file's report (but for the regions a person looked at meanwhile); what
the verifier found is kept for the page. Approving records a person's
decision in the report. Originals are only read.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from veil.detection.second_look import SecondLook
from veil.errors import RejectedError, ReviewError, VeilError
from veil.jobs import is_video
from veil.media.files import publish_bytes
from veil.options import AnonymizeOptions, AudioMode, Device, VideoOptions
from veil.pipeline.render import render_file
from veil.plan.files import check_plan_source, file_sha256, load_plan, plan_path
from veil.plan.model import Plan
from veil.report import FileReport, FileStatus, ReviewRecord, RunReport
from veil.review.draft import Draft, draft_path
from veil.verify import Verifier

REPORT_NAMES = ("veil-report.json", "veil-render.json")  # what anonymize -o and render -o write
STAGING = ".veil-review"  # inside OUTDIR: outputs are rendered here, then swapped in


class State(StrEnum):
    NOT_ANONYMIZED = "failed"  # anonymize wrote no output: nothing to review
    VERIFICATION_FAILED = "fail"  # the output failed verification
    REVIEW = "review"  # passed, with findings to look at
    PASS = "pass"
    UNVERIFIED = "unverified"


@dataclass
class Item:
    """One file of the run."""

    id: str
    index: int  # in the report's files
    name: str  # the output's path inside OUTDIR, for people
    original: Path | None
    output: Path | None
    video: bool
    draft: Draft | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    rejected: FileReport | None = None  # the last Apply's render, refused: it failed verification
    looked_at: set[str] = field(default_factory=set)  # region ids a person has looked at
    read: tuple[Path, int, Plan] | None = None  # the plan last read for counts, with its mtime

    @property
    def plan_file(self) -> Path | None:
        return plan_path(self.output) if self.output is not None else None


class ReviewedRun:
    def __init__(self, outdir: Path, device: Device = Device.AUTO) -> None:
        self.outdir = outdir
        reports = [outdir / name for name in REPORT_NAMES if (outdir / name).is_file()]
        if not outdir.is_dir() or not reports:
            raise ReviewError(f"no {REPORT_NAMES[0]} in {outdir}: give the folder veil anonymize -o wrote")
        self.report_path = reports[0]
        try:
            self.report = RunReport.read(self.report_path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ReviewError(f"{self.report_path} is not a veil report: {e}".splitlines()[0]) from None
        self.device = device
        self._verifier: Verifier | None = None
        self._second_look: SecondLook | None = None
        self._write_lock = threading.Lock()
        self._drafts_lock = threading.Lock()
        self.items: dict[str, Item] = {}
        for index, file in enumerate(self.report.files):
            if file.status is FileStatus.SKIPPED:
                continue
            item_id = secrets.token_urlsafe(9)
            output = self._in_outdir(file.output) if file.output else None
            original = self._find(file.input)
            name = _inside(output, outdir) if output is not None else file.input
            item = Item(item_id, index, name, original, output, is_video(Path(file.input)))
            item.looked_at = set(file.review.looked_at) if file.review else set()
            self.items[item_id] = item

    def _find(self, recorded: str) -> Path | None:
        """A path as the report recorded it: absolute, or relative to where
        anonymize ran, which is here or OUTDIR's parent folder."""
        path = Path(recorded)
        for candidate in (path, self.outdir.parent / path, self.outdir / path.name):
            if candidate.is_file():
                return candidate.resolve()
        return None

    def _in_outdir(self, recorded: str) -> Path | None:
        """The file in OUTDIR that a recorded output path names. The folder
        may have been moved or copied since anonymize wrote it, and the path
        the report gives may still lead to the old one: only OUTDIR is
        searched, never written outside of. The path is taken relative to
        where the run wrote its outputs (the boxes sidecar's folder), else
        by its longest tail that is a file in OUTDIR."""
        path = Path(recorded)
        tails = [
            Path(*path.parts[start:]) for start in range(len(path.parts)) if path.parts[start] != path.anchor
        ]
        if self.report.boxes_file and path.is_relative_to(root := Path(self.report.boxes_file).parent):
            tails.insert(0, path.relative_to(root))
        inside = self.outdir.resolve()
        for tail in tails:
            candidate = (inside / tail).resolve()
            if candidate.is_file() and candidate.is_relative_to(inside):
                return candidate
        return None

    def file(self, item: Item) -> FileReport:
        return self.report.files[item.index]

    def state(self, item: Item) -> State:
        file = self.file(item)
        if file.status is FileStatus.FAILED or item.output is None:
            return State.NOT_ANONYMIZED
        if file.verification is None:
            return State.UNVERIFIED
        if not file.verification.passed:
            return State.VERIFICATION_FAILED
        return State.REVIEW if file.verification.review else State.PASS

    def approved(self, item: Item) -> bool:
        review = self.file(item).review
        return review is not None and review.approved

    def draft(self, item: Item) -> Draft:
        """The item's draft, opened on first use (its plan checked against the original)."""
        with self._drafts_lock:  # the page asks for a file's data and its picture at once
            if item.draft is not None:
                return item.draft
            if item.output is None or item.plan_file is None:
                raise ReviewError(f"{item.name}: anonymize wrote no output to review")
            if item.original is None:
                raise ReviewError(f"{item.name}: its original {self.file(item).input} is not there")
            plan = load_plan(item.plan_file)
            check_plan_source(plan, item.original)
            item.draft = Draft(plan, draft_path(item.output))
            return item.draft

    def plan_now(self, item: Item) -> Plan | None:
        """The item's plan as a person has it now (its draft), for counts: read
        without opening the original; None when there is none to read."""
        if item.draft is not None:
            return item.draft.plan
        if item.output is None or item.plan_file is None:
            return None
        saved = draft_path(item.output)
        path = saved if saved.is_file() else item.plan_file
        try:
            mtime = path.stat().st_mtime_ns
            if item.read is None or item.read[:2] != (path, mtime):
                item.read = (path, mtime, load_plan(path))
        except (OSError, VeilError):
            return None
        return item.read[2]

    def change(self, item: Item, edit: Callable[[Plan], Plan]) -> Draft:
        draft = self.draft(item)
        draft.change(edit(draft.plan))
        return draft

    def verifier(self) -> Verifier:
        with self._write_lock:
            if self._verifier is None:
                self._verifier = Verifier(device=self.device)
            return self._verifier

    def second_look(self) -> SecondLook:
        """The look that confirms faces (`veil.detection.second_look`), loaded once."""
        with self._write_lock:
            if self._second_look is None:
                self._second_look = SecondLook()
            return self._second_look

    def apply(
        self,
        item: Item,
        on_frame: Callable[[int, int], None] | None = None,
        on_verify: Callable[[int, int], None] | None = None,
    ) -> FileReport:
        """Render the item's output again from its original and its draft,
        verify it, and swap it in only if it passed. Otherwise the old output,
        plan and file report stay as they were and `RejectedError` (or another
        ReviewError) is raised. `on_frame` and `on_verify` hear a clip's
        frames rendered and verified."""
        draft = self.draft(item)
        assert item.original is not None and item.output is not None and item.plan_file is not None
        plan = draft.plan
        staging = self.outdir / STAGING
        staging.mkdir(exist_ok=True)
        staged = staging / f"{item.id}{item.output.suffix}"
        leftovers = (staged, plan_path(staged))
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        audio = self.report.options.get("video", {}).get("audio", AudioMode.KEEP.value)
        options = AnonymizeOptions(video=VideoOptions(audio=AudioMode(audio)), device=self.device)
        try:
            rendered = render_file(item.original, plan, staged, options, self.verifier(), on_frame, on_verify)
            if rendered.status is FileStatus.FAILED:
                raise ReviewError(f"{item.name}: not rendered: {rendered.error}")
            verdict = rendered.verification
            if verdict is None or not verdict.passed:
                item.rejected = rendered
                what = "it was not verified"
                if verdict is not None:
                    count = len(verdict.failures)
                    what = (
                        f"{count} finding{'s' if count > 1 else ''}, first {verdict.failures[0].describe()}"
                    )
                raise RejectedError(
                    f"not applied: the new render failed verification ({what}); the output was not changed",
                    rendered,
                )
            if file_sha256(item.original) != plan.source.sha256:
                raise ReviewError(f"{item.name}: the original changed while it was rendered")
            os.replace(staged, item.output)
            os.replace(plan_path(staged), item.plan_file)
        finally:
            for leftover in leftovers:
                leftover.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                staging.rmdir()  # only when empty: another file may be rendering there
        draft.applied(plan)
        item.rejected = None
        old = self.file(item).review or ReviewRecord()
        record = ReviewRecord(approved=False, changes=old.changes + draft.changes, renders=old.renders + 1)
        draft.changes = 0
        before = self.file(item)  # the paths as the report recorded them, not the staging ones
        report = replace(rendered, input=before.input, output=before.output, plan=before.plan, review=record)
        self._save(item, report, boxes=True)
        return report

    def approve(self, item: Item) -> FileReport:
        """Mark the output reviewed and fit to publish, by a person."""
        draft = self.draft(item)
        if draft.edited:
            raise ReviewError(f"{item.name}: apply the changes first: the output does not show them yet")
        if self.state(item) in (State.VERIFICATION_FAILED, State.NOT_ANONYMIZED, State.UNVERIFIED):
            raise ReviewError(f"{item.name}: its output did not pass verification; fix it and apply first")
        old = self.file(item).review or ReviewRecord()
        record = replace(old, approved=True, changes=old.changes + draft.changes)
        draft.changes = 0
        report = replace(self.file(item), review=record)
        self._save(item, report)
        return report

    def look(self, item: Item, region_ids: Iterable[str]) -> set[str]:
        """Record that a person has looked at these regions of the item. It
        goes into the report's review record, not the plan: looking changes
        nothing to apply, and survives a restart of the review."""
        with self._write_lock:
            new = set(region_ids) - item.looked_at
            if new:
                item.looked_at |= new
                self._write(item, self.file(item))
            return set(item.looked_at)

    def _save(self, item: Item, file: FileReport, boxes: bool = False) -> None:
        """Write the report with `file` in the item's place (and, for a video
        rendered again, its boxes in the sidecar), atomically."""
        with self._write_lock:
            self._write(item, file, boxes)

    def _write(self, item: Item, file: FileReport, boxes: bool = False) -> None:
        if item.looked_at:  # whatever record `file` brings, what was looked at stays
            record = replace(file.review or ReviewRecord(), looked_at=sorted(item.looked_at))
            file = replace(file, review=record)
        self.report.files[item.index] = file
        if boxes and file.video is not None and self.report.boxes_file:
            sidecar = RunReport.boxes_path(self.report_path)  # never where the report says it was
            if sidecar.is_file():
                data = json.loads(sidecar.read_text(encoding="utf-8"))
                data[file.output or ""] = [list(map(list, frame)) for frame in file.video.boxes_per_frame]
                publish_bytes(sidecar, json.dumps(data).encode("utf-8"), replace=True)
        publish_bytes(self.report_path, self.report.to_json().encode("utf-8"), replace=True)


def _inside(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder.resolve()))
    except ValueError:
        return path.name
