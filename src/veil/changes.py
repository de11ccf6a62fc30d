"""Which pixels an output changed: what verification judges masks by."""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import numpy.typing as npt

RGB = npt.NDArray[np.uint8]


class Changes:
    """Which pixels of a frame the output changed (a channel moved by more
    than `level`), worked out box by box, or for the whole frame on demand."""

    def __init__(self, before: RGB, after: RGB, level: int) -> None:
        self.before, self.after, self.level = before, after, level

    def _changed(self, top: int, bottom: int, left: int, right: int) -> npt.NDArray[np.bool_]:
        before = self.before[top:bottom, left:right].astype(np.int16)
        changed: npt.NDArray[np.bool_] = np.any(
            np.abs(before - self.after[top:bottom, left:right]) > self.level, axis=2
        )
        return changed

    @cached_property
    def full(self) -> npt.NDArray[np.bool_]:
        return self._changed(0, self.before.shape[0], 0, self.before.shape[1])

    def masked(self, box: list[float], fraction: float) -> bool:
        """Whether at least `fraction` of the box changed."""
        pixels = pixel_box(box, self.before)
        if pixels is None:
            return True  # nothing of it lies in the picture
        x1, y1, x2, y2 = pixels
        return float(self._changed(y1, y2, x1, x2).mean()) >= fraction


def pixel_box(box: list[float], image: RGB) -> tuple[int, int, int, int] | None:
    """The whole pixels of `image` that `box` (x1, y1, x2, y2) touches, as
    (x1, y1, x2, y2); None when nothing of it lies in the image."""
    height, width = image.shape[:2]
    x1, y1 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x2, y2 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def int_box(box: list[float] | tuple[float, ...]) -> tuple[int, int, int, int]:
    """A box in whole pixels, rounded."""
    x1, y1, x2, y2 = (round(v) for v in box)
    return x1, y1, x2, y2
