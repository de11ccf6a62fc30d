"""Follow what a person drew through a clip: a box drawn at one frame is
tracked forwards and backwards (OpenCV's MIL tracker, which needs no model
file) until the tracker loses it or `reach` frames each way. Nothing is
recognised: the tracker follows pixels, not a person."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from veil.plan.model import Box

Image = npt.NDArray[np.uint8]
REACH = 300  # frames each way


def followed(
    frame_at: Callable[[int], Image], frames: int, start: int, box: Box, reach: int = REACH
) -> list[tuple[int, Box]]:
    """(frame, box) from where the content of `box` at `start` is lost
    before it to where it is lost after it, in frame order."""
    ahead = _track(frame_at, range(start, min(frames, start + reach + 1)), box)
    first = max(0, start - reach)
    behind_frames = [frame_at(f) for f in range(first, start + 1)]  # decoded forwards, tracked backwards
    behind = _track(lambda f: behind_frames[f - first], range(start, first - 1, -1), box)
    return sorted({**dict(behind), **dict(ahead)}.items())


def _track(frame_at: Callable[[int], Image], order: range, box: Box) -> list[tuple[int, Box]]:
    frames = iter(order)
    start = next(frames)
    tracker = cv2.TrackerMIL.create()
    x1, y1, x2, y2 = box
    tracker.init(frame_at(start), (round(x1), round(y1), max(1, round(x2 - x1)), max(1, round(y2 - y1))))
    found: list[tuple[int, Box]] = [(start, box)]
    for index in frames:
        ok, (x, y, w, h) = tracker.update(frame_at(index))
        if not ok or w <= 0 or h <= 0:
            break
        found.append((index, (float(x), float(y), float(x + w), float(y + h))))
    return found
