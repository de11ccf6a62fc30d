"""Face detections as arrays, and the box arithmetic the stages share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Detections:
    """N faces: `boxes` as (N, 4) x1, y1, x2, y2 in pixels; `scores` as (N,);
    and, where the search says, which of its passes found each (`found_by`)."""

    boxes: FloatArray
    scores: FloatArray
    found_by: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(
                f"Detections: expected one score per box, got {len(boxes)} boxes and {len(scores)} scores"
            )
        if self.found_by is not None and len(self.found_by) != len(scores):
            raise ValueError("Detections: expected one found_by per box")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)

    def by(self, index: int) -> str | None:
        """Which pass found box `index`, if known."""
        return self.found_by[index] if self.found_by is not None else None

    def labelled(self, found_by: str) -> Detections:
        """These boxes, each marked as found by `found_by`."""
        return Detections(self.boxes, self.scores, (found_by,) * len(self))

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    @classmethod
    def concatenate(cls, parts: list[Detections]) -> Detections:
        if not parts:
            return cls.empty()
        found_by = None
        if any(p.found_by is not None for p in parts):
            found_by = tuple(p.by(i) for p in parts for i in range(len(p)))
        return cls(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            found_by,
        )

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: npt.ArrayLike) -> Detections:
        index = np.asarray(keep, dtype=np.intp).reshape(-1)
        found_by = tuple(self.found_by[i] for i in index) if self.found_by is not None else None
        return Detections(self.boxes[index], self.scores[index], found_by)

    def scaled(self, factor: float) -> Detections:
        """Boxes multiplied by `factor` (from a resized image back to the original)."""
        return Detections(self.boxes * np.float32(factor), self.scores, self.found_by)

    def shifted(self, dx: float, dy: float) -> Detections:
        """Boxes moved by (dx, dy) (from a tile back to the whole image)."""
        offset = np.array([dx, dy, dx, dy], dtype=np.float32)
        return Detections(self.boxes + offset, self.scores, self.found_by)

    def mirrored(self, width: int) -> Detections:
        """Boxes found in the left-right mirrored image, mapped back."""
        boxes = self.boxes.copy()
        boxes[:, 0] = width - self.boxes[:, 2]
        boxes[:, 2] = width - self.boxes[:, 0]
        return Detections(boxes, self.scores, self.found_by)

    def clipped(self, width: int, height: int) -> Detections:
        limits = np.array([width, height, width, height], dtype=np.float32)
        return Detections(np.clip(self.boxes, 0, limits), self.scores, self.found_by)

    def merged(self, iou_threshold: float = 0.3) -> Detections:
        """One box per face: non-maximum suppression, then boxes nested inside a
        stronger one are dropped (multi-scale passes find the same face twice)."""
        if len(self) < 2:
            return self
        xywh = np.column_stack([self.boxes[:, :2], self.boxes[:, 2:] - self.boxes[:, :2]])
        keep = cv2.dnn.NMSBoxes(
            xywh.tolist(), self.scores.tolist(), score_threshold=0.0, nms_threshold=iou_threshold
        )
        kept = self.select(np.asarray(keep).reshape(-1))
        return kept.select(_not_nested(kept.boxes, kept.scores))


def intersections(boxes: FloatArray, box: Sequence[float] | FloatArray) -> FloatArray:
    """The area each of `boxes` (N x 4, x1 y1 x2 y2) shares with `box`."""
    width = np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0])
    height = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1])
    shared: FloatArray = (np.clip(width, 0, None) * np.clip(height, 0, None)).astype(np.float32)
    return shared


def ious(boxes: FloatArray, box: Sequence[float] | FloatArray) -> FloatArray:
    """Intersection over union of each of `boxes` with `box`."""
    inter = intersections(boxes, box)
    union = box_areas(boxes) + max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0) - inter
    result: FloatArray = (inter / np.maximum(union, 1e-9)).astype(np.float32)
    return result


def box_areas(boxes: FloatArray) -> FloatArray:
    sizes = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    areas: FloatArray = (sizes[:, 0] * sizes[:, 1]).astype(np.float32)
    return areas


def _not_nested(boxes: FloatArray, scores: FloatArray, cover: float = 0.8) -> list[int]:
    """Indices of boxes not covered (by `cover` of their area) by a higher-scoring box."""
    order = np.argsort(-scores)
    areas = box_areas(boxes)
    keep: list[int] = []
    for i in order:
        if keep and np.any(intersections(boxes[keep], boxes[i]) >= cover * max(float(areas[i]), 1e-6)):
            continue
        keep.append(int(i))
    return sorted(keep)
