"""Follow what a person drew through a clip: a box drawn at one frame is
tracked forwards and backwards (OpenCV's MIL tracker, which needs no model
file) until the content is lost or `reach` frames each way. Nothing is
recognised: the tracker follows pixels, not a person.

MIL never says it lost anything: when the face leaves, turns to a wall or
is covered, it goes on reporting a box on whatever lies there. So each
frame's box is also checked against what was followed (`_Appearance`):
the content under it must look like the content a frame before and, less
strictly, like the content where the person started, and must not be a
flat patch. The follow stops at the first frame that fails, or where the
box leaves the picture; the person sees where it stopped and extends it
by hand if the face is still there."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from veil.errors import PlanError
from veil.plan.edit import inside_picture
from veil.plan.model import Box, Decision, FrameBox, Kind, Plan, Region, Shape

Image = npt.NDArray[np.uint8]
REACH = 300  # frames each way
_PATCH = (24, 24)  # the box's content is compared at this size, in grey
NEAR_LAST = 0.5  # least correlation with the content one frame before
NEAR_START = 0.25  # least correlation with the content where the follow started
FLAT = 4.0  # grey levels: a patch whose deviation is below this holds nothing to follow
INSIDE = 0.6  # least share of the box that must lie inside the picture


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


def tracked(plan: Plan, path: list[tuple[int, Box]], start: int, label: str, shape: Shape) -> Plan:
    """`plan` with a region drawn by hand that follows `path` (what `followed`
    gave from `start`), masked. It is a track, as veil's own faces are: a
    box moved at one frame fades into its neighbours, and `start`, where the
    person placed it, is its one set frame."""
    track = tuple(FrameBox(frame, inside_picture(plan, box)) for frame, box in path)
    if not any(entry.frame == start for entry in track):
        raise PlanError(f"plan: the path does not pass frame {start}, where the region was placed")
    region = Region(
        plan.next_id(Kind.MANUAL),
        Kind.MANUAL,
        Decision.MASK,
        shape,
        track=track,
        label=label,
        set_frames=(start,),
    )
    return plan.with_region(region)


def _track(frame_at: Callable[[int], Image], order: range, box: Box) -> list[tuple[int, Box]]:
    frames = iter(order)
    start = next(frames)
    first = frame_at(start)
    tracker = cv2.TrackerMIL.create()
    x1, y1, x2, y2 = box
    tracker.init(first, (round(x1), round(y1), max(1, round(x2 - x1)), max(1, round(y2 - y1))))
    appearance = _Appearance(first, box)
    found: list[tuple[int, Box]] = [(start, box)]
    for index in frames:
        image = frame_at(index)
        ok, (x, y, w, h) = tracker.update(image)
        if not ok or w <= 0 or h <= 0:
            break
        moved = (float(x), float(y), float(x + w), float(y + h))
        if not appearance.still(image, moved):
            break
        found.append((index, moved))
    return found


class _Appearance:
    """What the followed box held: at the start, and one frame before."""

    def __init__(self, image: Image, box: Box) -> None:
        patch = _patch(image, box)
        self.start = self.last = patch if patch is not None else np.zeros(_PATCH, np.float32)

    def still(self, image: Image, box: Box) -> bool:
        """Whether `box` in `image` still holds what was followed; if so, it is remembered."""
        height, width = image.shape[:2]
        x1, y1, x2, y2 = box
        inside = max(0.0, min(x2, width) - max(x1, 0)) * max(0.0, min(y2, height) - max(y1, 0))
        if inside < INSIDE * (x2 - x1) * (y2 - y1):
            return False
        patch = _patch(image, box)
        if patch is None or _correlation(patch, self.last) < NEAR_LAST:
            return False
        if _correlation(patch, self.start) < NEAR_START:
            return False
        self.last = patch
        return True


def _patch(image: Image, box: Box) -> npt.NDArray[np.float32] | None:
    """The box's content in grey at `_PATCH` size, less its mean; None when flat."""
    height, width = image.shape[:2]
    x1, y1 = max(0, round(box[0])), max(0, round(box[1]))
    x2, y2 = min(width, round(box[2])), min(height, round(box[3]))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    grey = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    patch = cv2.resize(grey, _PATCH, interpolation=cv2.INTER_AREA).astype(np.float32)
    if float(patch.std()) < FLAT:
        return None
    return np.asarray(patch - patch.mean(), dtype=np.float32)


def _correlation(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float((a * b).sum()) / norm if norm > 0 else 0.0
