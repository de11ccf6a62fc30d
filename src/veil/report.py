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
    """One masked face: its box in output pixels (x1, y1, x2, y2) and score."""

    box: tuple[float, float, float, float]
    score: float


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
    faces_per_frame: list[int] = field(default_factory=list)
    # Every masked box (detected or filled by tracking), x1, y1, x2, y2 per
    # frame. Large: written to a sidecar file beside the report, not into it.
    boxes_per_frame: list[list[tuple[int, int, int, int]]] = field(default_factory=list, repr=False)

    @property
    def faces(self) -> int:
        return sum(self.faces_per_frame)


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
    metadata_removed: list[str] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    video: VideoReport | None = None

    @property
    def faces_masked(self) -> int:
        return self.video.faces if self.video is not None else len(self.faces)

    @property
    def ok(self) -> bool:
        return self.status is not FileStatus.FAILED


@dataclass(frozen=True)
class ModelInfo:
    name: str
    sha256: str
    package: str
    licence: str


@dataclass
class RunReport:
    veil_version: str
    model: ModelInfo
    options: dict[str, Any]
    files: list[FileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    boxes_file: str | None = None  # the sidecar with every video's per-frame boxes

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
        for file in data["files"]:
            if file.get("video"):
                del file["video"]["boxes_per_frame"]
        data["summary"] = {status.value: self.count(status) for status in FileStatus} | {"faces": self.faces}
        return _plain(data)  # type: ignore[no-any-return]

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
            model=ModelInfo(**data["model"]),
            options=data["options"],
            files=[_file_from_dict(f) for f in data["files"]],
            warnings=list(data.get("warnings", [])),
            boxes_file=data.get("boxes_file"),
        )

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        return cls.from_dict(json.loads(text))

    @classmethod
    def read(cls, path: Path) -> RunReport:
        return cls.from_json(path.read_text(encoding="utf-8"))


def _file_from_dict(data: dict[str, Any]) -> FileReport:
    fields = dict(data)
    fields["status"] = FileStatus(fields["status"])
    fields["faces"] = [FaceReport(tuple(f["box"]), f["score"]) for f in fields.get("faces", [])]
    if fields.get("video") is not None:
        fields["video"] = VideoReport(**fields["video"])
    return FileReport(**fields)


def _plain(value: Any) -> Any:
    """JSON-ready: enums by value, tuples as lists, nested throughout."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
