"""What veil did, per file and per run, as dataclasses with a JSON round trip."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any


class FileStatus(StrEnum):
    ANONYMIZED = "anonymized"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class FaceReport:
    """One face candidate: its box in output pixels (x1, y1, x2, y2), the
    search's score, and why it was masked or not (`veil.detection.choose.Reason`)."""

    box: tuple[float, float, float, float]
    score: float
    reason: str | None = None
    region: str | None = None  # its id in the plan


@dataclass(frozen=True)
class TextReport:
    """One line of text veil found in a photo: its box in output pixels,
    `text` (small, masked) or `sign` (left readable), the plan's decision
    for it and why."""

    box: tuple[float, float, float, float]
    label: str
    decision: str
    reason: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class VideoReport:
    """What happened to a video: frames, timing, sound and tracking."""

    frames: int
    duration_s: float
    time_base: str
    audio: str  # "kept", "re-encoded", "muted", "dropped" or "none"
    rotation_baked: int
    tracks: int
    frames_filled_by_tracking: int
    candidates_not_masked: int = 0  # over all frames, before tracking
    parts: int = 1  # masked by workers side by side in this many parts, joined (veil.segments)
    faces_per_frame: list[int] = field(default_factory=list)
    # Every masked box (detected or filled by tracking), x1, y1, x2, y2 per
    # frame. Large: written to a sidecar file beside the report, not into it.
    boxes_per_frame: list[list[tuple[int, int, int, int]]] = field(default_factory=list, repr=False)

    @property
    def faces(self) -> int:
        return sum(self.faces_per_frame)


class Check(StrEnum):
    DETECTION = "detection"  # a face found in the output outside every mask
    RECOGNITION = "recognition"  # a masked face still matched to its original
    METADATA = "metadata"  # an identifying tag survived
    INTEGRITY = "integrity"  # the output does not open, or differs in size, frames, length or sound
    TEXT = "text"  # text readable under a text mask, or text the plan does not list


@dataclass(frozen=True)
class Finding:
    """One reason to fail a file or to look at it: where (frame, box in
    output pixels x1, y1, x2, y2), what and how sure."""

    check: Check
    message: str
    frame: int | None = None
    box: tuple[int, int, int, int] | None = None
    score: float | None = None

    def describe(self) -> str:
        where = f"frame {self.frame} " if self.frame is not None else ""
        if self.box is not None:
            where += "box " + ",".join(str(v) for v in self.box) + " "
        return f"{self.check.value}: {where}{self.message}"


@dataclass(frozen=True)
class Verification:
    """The attack on one output: it passes when no check found a failure."""

    failures: list[Finding] = field(default_factory=list)
    review: list[Finding] = field(default_factory=list)
    # faces seen where the plan keeps a region visible on purpose, with its reason
    kept: list[Finding] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # every tag left in the output, neutral ones too
    frames_checked: int = 0
    faces_compared: int = 0
    not_run: list[str] = field(default_factory=list)  # checks skipped, and why

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class KeptRegion:
    id: str
    reason: str


@dataclass(frozen=True)
class Decisions:
    """What a person decided in a plan, against what veil had decided
    (region ids): faces veil masked that are dropped now, faces veil left
    out that are masked now, regions drawn by hand, and regions kept visible
    with the reason given."""

    dropped: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    kept: list[KeptRegion] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.dropped or self.masked or self.added or self.kept)


@dataclass(frozen=True)
class ReviewRecord:
    """What `veil review` did to a file: a person's changes to its plan,
    how often it was rendered again, and whether a person approved the
    output for publishing. No names: who decided is "a person", and what,
    is `FileReport.decisions`."""

    approved: bool = False
    changes: int = 0  # edits made to the plan
    renders: int = 0  # outputs rendered again from the edited plan
    # the plan's regions a person has looked at (selected or decided), by id
    looked_at: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileReport:
    input: str
    status: FileStatus
    output: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    orientation_applied: int | None = None
    faces: list[FaceReport] = field(default_factory=list)
    # Candidates the search found and veil chose not to mask (photos), with the reason.
    not_masked: list[FaceReport] = field(default_factory=list)
    text: list[TextReport] = field(default_factory=list)  # photos: lines of text, masked or signs
    metadata_removed: list[str] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    video: VideoReport | None = None
    verification: Verification | None = None
    plan: str | None = None  # the mask plan the output was rendered from
    decisions: Decisions | None = None  # `veil render`: what a person changed in the plan
    review: ReviewRecord | None = None  # `veil review`

    @property
    def faces_masked(self) -> int:
        return self.video.faces if self.video is not None else len(self.faces)

    @property
    def verification_failed(self) -> bool:
        return self.verification is not None and not self.verification.passed

    @property
    def ok(self) -> bool:
        return self.status is not FileStatus.FAILED and not self.verification_failed


@dataclass(frozen=True)
class ModelInfo:
    name: str
    sha256: str
    package: str
    licence: str


@dataclass
class RunReport:
    veil_version: str
    model: ModelInfo | None  # the detector; None for `veil render`, which detects nothing
    options: dict[str, Any]
    text_model: ModelInfo | None = None  # the text detector, when text is hidden
    files: list[FileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    boxes_file: str | None = None  # the sidecar with every video's per-frame boxes
    verifier_models: list[ModelInfo] = field(default_factory=list)  # empty: not verified

    def count(self, status: FileStatus) -> int:
        return sum(1 for f in self.files if f.status is status)

    @property
    def faces(self) -> int:
        return sum(f.faces_masked for f in self.files)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for file, report in zip(data["files"], self.files, strict=True):
            if file.get("video"):
                del file["video"]["boxes_per_frame"]
            if report.verification is not None:
                file["verification"]["passed"] = report.verification.passed
        data["summary"] = {status.value: self.count(status) for status in FileStatus} | {
            "faces": self.faces,
            "verification_failed": sum(1 for f in self.files if f.verification_failed),
        }
        return _plain(data)  # type: ignore[no-any-return]

    @staticmethod
    def boxes_path(report_path: Path) -> Path:
        """Where the boxes sidecar of the report at `report_path` goes: beside it."""
        return report_path.with_name(f"{report_path.stem}.boxes.json")

    def boxes_sidecar(self) -> dict[str, Any]:
        """Per video output, the boxes masked in each frame (empty: no videos)."""
        return {
            f.output: _plain(f.video.boxes_per_frame)
            for f in self.files
            if f.video is not None and f.output is not None
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        return cls(
            veil_version=data["veil_version"],
            model=ModelInfo(**data["model"]) if data.get("model") else None,
            options=data["options"],
            text_model=ModelInfo(**data["text_model"]) if data.get("text_model") else None,
            files=[file_from_dict(f) for f in data["files"]],
            warnings=list(data.get("warnings", [])),
            boxes_file=data.get("boxes_file"),
            verifier_models=[ModelInfo(**m) for m in data.get("verifier_models", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        return cls.from_dict(json.loads(text))

    @classmethod
    def read(cls, path: Path) -> RunReport:
        return cls.from_json(path.read_text(encoding="utf-8"))


def file_to_dict(report: FileReport) -> dict[str, Any]:
    """A file's report as JSON-ready data, whole (video boxes included)."""
    data: dict[str, Any] = _plain(asdict(report))
    if report.verification is not None:
        data["verification"]["passed"] = report.verification.passed
    return data


def file_from_dict(data: dict[str, Any]) -> FileReport:
    fields = dict(data)
    fields["status"] = FileStatus(fields["status"])
    for key in ("faces", "not_masked"):
        fields[key] = [
            FaceReport(tuple(f["box"]), f["score"], f.get("reason"), f.get("region"))
            for f in fields.get(key, [])
        ]
    fields["text"] = [TextReport(**{**t, "box": tuple(t["box"])}) for t in fields.get("text", [])]
    if fields.get("video") is not None:
        fields["video"] = VideoReport(**fields["video"])
    if fields.get("verification") is not None:
        fields["verification"] = verification_from_dict(fields["verification"])
    if fields.get("decisions") is not None:
        decisions = dict(fields["decisions"])
        decisions["kept"] = [KeptRegion(**k) for k in decisions.get("kept", [])]
        fields["decisions"] = Decisions(**decisions)
    if fields.get("review") is not None:
        fields["review"] = ReviewRecord(**fields["review"])
    return FileReport(**fields)


def verification_from_dict(data: dict[str, Any]) -> Verification:
    def finding(item: dict[str, Any]) -> Finding:
        box = item.get("box")
        return Finding(
            Check(item["check"]),
            item["message"],
            item.get("frame"),
            tuple(box) if box else None,
            item.get("score"),
        )

    return Verification(
        failures=[finding(f) for f in data.get("failures", [])],
        review=[finding(f) for f in data.get("review", [])],
        kept=[finding(f) for f in data.get("kept", [])],
        tags=list(data.get("tags", [])),
        frames_checked=data.get("frames_checked", 0),
        faces_compared=data.get("faces_compared", 0),
        not_run=list(data.get("not_run", [])),
    )


def _plain(value: Any) -> Any:
    """JSON-ready: enums by value, tuples as lists, nested throughout."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class PairReport:
    """`veil verify` on one original and its anonymized version."""

    original: str
    output: str
    verification: Verification | None = None
    error: str | None = None  # the original could not be read: nothing was verified

    @property
    def passed(self) -> bool:
        return self.error is None and self.verification is not None and self.verification.passed


@dataclass
class VerifyRunReport:
    veil_version: str
    verifier_models: list[ModelInfo]
    options: dict[str, Any]
    files: list[PairReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.passed for f in self.files)

    def to_json(self) -> str:
        data = _plain(asdict(self))
        for file, report in zip(data["files"], self.files, strict=True):
            file["passed"] = report.passed
        data["summary"] = {
            "passed": sum(1 for f in self.files if f.passed),
            "failed": sum(1 for f in self.files if not f.passed),
        }
        return json.dumps(data, indent=2, ensure_ascii=False)
