"""The coverage rule of ../shared/data/README.md, independent of any tool.

A ground-truth face is covered when at least half the pixels of its box
differ by more than 12 (0-255, any channel) between original and output,
both upright. Collateral is the share of pixels outside every ground-truth
box (each grown by 50%) that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

DIFF_LEVEL = 12
COVERED_SHARE = 0.5
HEIGHT_BINS = ((0, 16), (16, 32), (32, 64), (64, 128), (128, 10**9))
BIN_NAMES = ("<16", "16-32", "32-64", "64-128", ">=128")


def changed_pixels(original: npt.NDArray[np.uint8], output: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    if original.shape != output.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {output.shape}")
    diff = np.abs(original.astype(np.int16) - output.astype(np.int16))
    return np.asarray(diff.max(axis=2) > DIFF_LEVEL)


def face_covered(changed: npt.NDArray[np.bool_], box: list[float]) -> bool:
    x, y, w, h = box
    height, width = changed.shape
    x1, y1 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x2, y2 = min(width, int(np.ceil(x + w))), min(height, int(np.ceil(y + h)))
    if x2 <= x1 or y2 <= y1:
        return True
    return float(changed[y1:y2, x1:x2].mean()) >= COVERED_SHARE


def collateral(changed: npt.NDArray[np.bool_], boxes: list[list[float]]) -> tuple[int, int]:
    """(changed, total) pixels outside every box grown by 50%."""
    outside = np.ones(changed.shape, dtype=bool)
    height, width = changed.shape
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        x1, y1 = max(0, int(cx - 0.75 * w)), max(0, int(cy - 0.75 * h))
        x2, y2 = min(width, int(np.ceil(cx + 0.75 * w))), min(height, int(np.ceil(cy + 0.75 * h)))
        outside[y1:y2, x1:x2] = False
    return int(changed[outside].sum()), int(outside.sum())


@dataclass
class Tally:
    """Covered faces by group, and collateral pixels, over a set of images."""

    covered: dict[str, list[bool]] = field(default_factory=dict)
    collateral_changed: int = 0
    collateral_total: int = 0
    images: int = 0
    missing_outputs: int = 0

    def add(self, group: str, is_covered: bool) -> None:
        self.covered.setdefault(group, []).append(is_covered)

    def recall(self, group: str) -> float | None:
        values = self.covered.get(group)
        return float(np.mean(values)) if values else None

    def summary(self) -> dict[str, object]:
        groups = ["all", *BIN_NAMES, "easy", "medium", "hard"]
        return {
            "recall": {g: _round(self.recall(g)) for g in groups},
            "faces": {g: len(self.covered.get(g, [])) for g in groups},
            "collateral": round(self.collateral_changed / max(1, self.collateral_total), 4),
            "images": self.images,
            "missing_outputs": self.missing_outputs,
        }


def height_bin(height: float) -> str:
    for (low, high), name in zip(HEIGHT_BINS, BIN_NAMES, strict=True):
        if low <= height < high:
            return name
    return BIN_NAMES[-1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
