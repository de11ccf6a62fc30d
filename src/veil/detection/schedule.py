"""The search schedule of a clip on the CPU: every pass on key frames, the
cheap passes between them, and the costly ones only where faces were, will
be, or show signs of being.

A photo gets every pass (`detection_passes`). In a clip a face does not
come out of nothing from one frame to the next, so only key frames get
them all: a clip's first frame, every `video_key_every`-th frame counted
from its start (so that a clip done in parts is searched as in one piece),
each scene cut, and a frame whose view has changed by more than
`video_key_change` since the last key frame (a pan). The frames between
two key frames wait until the later one is searched, then get:

- the cheap passes (the coarse scales, `cheap_passes`) over the whole
  frame: they find every face large enough for them, wherever it is;
- the costly plain passes (the finest, and the one at half its scale)
  inside windows: around each face too small for the cheap passes that
  the frame before held (and so on back to a key frame), and around each
  one the later key frame found and the earlier did not, grown by how
  far such a face can move in the frames between (`MOVE`): a face that
  comes into view after one key frame and is in view at the next is
  searched for finely, and masked, from its first frame;
- every costly plain pass where the frame changed since the one before
  (by more than `video_change_level` grey levels) away from the people
  of the faces found (`changed_windows`): a face that comes and goes
  between two key frames moves, or appears, there.

Mirrored passes run on key frames only; tracking carries what they alone
found across the frames between. At most `video_key_every` - 1 frames
wait here (the look-ahead), as well as the frames tracking holds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from veil.detection.detect import (
    CenterFaceDetector,
    Pass,
    RGBImage,
    Window,
    cheap_passes,
    check_image,
    detection_passes,
)
from veil.detections import Detections

MOVE = 0.5  # face heights a small face may move a frame (a walker's is about a quarter)
BODY = 8  # face heights from a face down to a standing person's feet
CHEAP_SEES = 32  # px at a pass's scale: a face the cheap passes find unaided (none smaller)
_WHOLE = 0.8  # windows covering this share of a frame: the costly passes search it whole

_GREY_SCALE = 4  # where a frame changed is seen at a quarter of its size
View = npt.NDArray[np.float32]  # a frame's small grey thumbnail (`veil.track.thumbnail`)
Grey = npt.NDArray[np.uint8]  # a frame in grey at 1/_GREY_SCALE (`small_grey`)
Changes = npt.NDArray[np.bool_]  # where a Grey changed, cell by cell


@dataclass
class _Key:
    """A key frame and what every pass found in it."""

    index: int
    found: Detections
    view: View


class SearchSchedule:
    """Frames of one clip in, in order; each frame's candidates out, in
    order, once the key frame after it (or the clip's end) is searched."""

    def __init__(self, detector: CenterFaceDetector) -> None:
        self.detector = detector
        self.options = detector.options
        self._key: _Key | None = None
        self._waiting: list[tuple[int, RGBImage, Changes | None]] = []
        self._grey: Grey | None = None  # the frame before's
        self.searched: Counter[str] = Counter()  # frames each pass searched, whole or in windows

    def push(self, index: int, image: RGBImage, view: View, cut: bool) -> list[tuple[int, Detections]]:
        """Add frame `index` (its `view`; `cut`: it begins a scene); returns
        the frames whose search is now done, with what it found."""
        check_image(image)
        changes = self._changes(image, cut)
        if not self._is_key(index, view, cut):
            self._waiting.append((index, image, changes))
            return []
        passes = detection_passes(image.shape[1], image.shape[0], self.options)
        found = self.detector.search(image, passes)
        self.searched.update(p.label for p in passes)
        key = _Key(index, found, view)
        decided = self._between(self._key, None if cut else key)
        self._key = key
        return [*decided, (index, found)]

    def finish(self) -> list[tuple[int, Detections]]:
        """The clip is over: the frames after the last key frame."""
        return self._between(self._key, None)

    def _changes(self, image: RGBImage, cut: bool) -> Changes | None:
        """Where this frame changed since the one before (None: not known,
        at a clip's or a scene's start, or not looked for)."""
        if self.options.video_change_level <= 0:
            return None
        grey, previous = small_grey(image), self._grey
        self._grey = grey
        return None if previous is None or cut else changed(previous, grey, self.options.video_change_level)

    def _is_key(self, index: int, view: View, cut: bool) -> bool:
        if self._key is None or cut or index % self.options.video_key_every == 0:
            return True
        return float(np.mean(np.abs(view - self._key.view))) > self.options.video_key_change

    def _between(self, before: _Key | None, after: _Key | None) -> list[tuple[int, Detections]]:
        """Search the frames waiting between key frames `before` and `after`
        (None: a scene cut or the clip's start or end), in order."""
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return []
        height, width = waiting[0][1].shape[:2]
        passes = detection_passes(width, height, self.options)
        cheap = cheap_passes(passes)
        costly = [p for p in passes if not p.mirrored and p not in cheap]
        last = before.found if before is not None else Detections.empty()
        new = _new_faces(before, after)
        decided = []
        for index, image, changes in waiting:
            # the faces of the frame before, and those the later key frame sees first
            near = [(last, 1)] + ([(new, after.index - index)] if after is not None else [])
            last = self._search_between(image, cheap, costly, near, changes)
            decided.append((index, last))
        return decided

    def _search_between(
        self,
        image: RGBImage,
        cheap: list[Pass],
        costly: list[Pass],
        near: list[tuple[Detections, int]],
        changes: Changes | None,
    ) -> Detections:
        """The cheap passes over `image`; each costly pass in windows around
        the faces of `near` (found that many frames away) it is the pass
        for; all costly passes where the frame `changes` with no face found
        to account for it (`changed_windows`)."""
        height, width = image.shape[:2]
        found = [self.detector.pass_finds(image, p) for p in cheap]
        self.searched.update(p.label for p in cheap)
        if costly and changes is not None:
            known = Detections.concatenate([*found, *(faces for faces, frames in near if frames == 1)])
            windows = changed_windows(changes, known, image)
            if windows:
                found.append(self.detector.search_windows(image, windows, costly))
                self.searched["changed windows"] += 1
        for search in costly:
            windows = [
                w for faces, frames in near for w in face_windows(faces, frames, search, cheap, costly, image)
            ]
            windows = joined(windows, image)
            if windows:
                found.append(self.detector.search_windows(image, windows, [search]))
                self.searched[f"{search.label} (windows)"] += 1
        return Detections.concatenate(found).clipped(width, height).merged()


def small_grey(image: RGBImage) -> Grey:
    """The frame in grey at 1/`_GREY_SCALE` of its size."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    size = (max(1, width // _GREY_SCALE), max(1, height // _GREY_SCALE))
    return np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def changed(previous: Grey, grey: Grey, level: int) -> Changes:
    """Where `grey` differs from `previous` by more than `level`, one cell
    either way."""
    moved = (cv2.absdiff(previous, grey) > level).astype(np.uint8)
    return np.asarray(cv2.dilate(moved, np.ones((3, 3), np.uint8)), dtype=bool)


def changed_windows(changes: Changes, known: Detections, image: RGBImage) -> list[Window]:
    """Windows around each region of the frame that `changes` (two cells
    or more) where none of the `known` faces' people stand (`people`):
    something moved there that no face found accounts for (a person
    stepping out from behind another, a head turning towards the camera);
    where a known face's person stands, that person is moving. Each is
    grown by half its size on every side (at least 32 px), so that a face
    in it lies whole inside."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(changes.astype(np.uint8), connectivity=8)
    standing = people(known)
    windows: list[Window] = []
    for left, top, w, h, area in stats[1:count].tolist():
        if area < 2:
            continue  # one cell: noise
        x1, y1 = left * _GREY_SCALE, top * _GREY_SCALE
        x2, y2 = (left + w) * _GREY_SCALE, (top + h) * _GREY_SCALE
        if np.any(
            (standing[:, 0] < x2) & (standing[:, 2] > x1) & (standing[:, 1] < y2) & (standing[:, 3] > y1)
        ):
            continue
        windows += _around((x1, y1, x2, y2), max(32, (x2 - x1) // 2, (y2 - y1) // 2), image)
    return joined(windows, image)


def people(faces: Detections) -> npt.NDArray[np.float32]:
    """Where the person of each face stands (x1, y1, x2, y2): from a head
    above the face to `BODY` face heights below it, a face width to either
    side."""
    boxes = faces.boxes
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.column_stack(
        [boxes[:, 0] - widths, boxes[:, 1] - heights, boxes[:, 2] + widths, boxes[:, 3] + BODY * heights]
    ).astype(np.float32)


def _new_faces(before: _Key | None, after: _Key | None) -> Detections:
    """The faces key frame `after` found that none of `before`'s could have
    moved to in the frames between (`MOVE` heights a frame): they came into
    view after it."""
    if after is None:
        return Detections.empty()
    if before is None:
        return after.found
    frames = after.index - before.index
    boxes = before.found.boxes
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    new = []
    for i, box in enumerate(after.found.boxes):
        side = float(max(box[2] - box[0], box[3] - box[1], 1.0))
        reach = side * (1 + MOVE * frames)
        distances = np.linalg.norm(centres - (box[:2] + box[2:]) / 2, axis=1)
        if not np.any(distances <= reach):
            new.append(i)
    return after.found.select(np.array(new, dtype=np.intp))


def pass_for(side: float, cheap: list[Pass], costly: list[Pass]) -> Pass | None:
    """The pass that looks for a face `side` px tall: None when the cheap
    passes see it unaided (`CHEAP_SEES` px at the finest of them); else the
    coarsest costly pass at which it is that tall, or the finest."""
    if side * cheap[0].scale >= CHEAP_SEES:
        return None
    for search in sorted(costly, key=lambda p: p.scale):
        if side * search.scale >= CHEAP_SEES:
            return search
    return max(costly, key=lambda p: p.scale)


def face_windows(
    found: Detections, frames: int, search: Pass, cheap: list[Pass], costly: list[Pass], image: RGBImage
) -> list[Window]:
    """Windows for `search` around each face of `found` it is the pass for
    (`pass_for`), grown on each side by its height and by `MOVE` heights a
    frame over `frames` frames."""
    windows: list[Window] = []
    for x1, y1, x2, y2 in found.boxes.tolist():
        side = max(x2 - x1, y2 - y1, 1.0)
        if pass_for(side, cheap, costly) != search:
            continue
        windows += _around((x1, y1, x2, y2), side * (1 + MOVE * frames), image)
    return windows


def _around(box: tuple[float, float, float, float], grow: float, image: RGBImage) -> list[Window]:
    """The window of `box` grown by `grow` px on every side, within the
    image (none if nothing of it is)."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    left, top = max(0, math.floor(x1 - grow)), max(0, math.floor(y1 - grow))
    right, bottom = min(width, math.ceil(x2 + grow)), min(height, math.ceil(y2 + grow))
    return [(left, top, right - left, bottom - top)] if right > left and bottom > top else []


def joined(windows: list[Window], image: RGBImage) -> list[Window]:
    """`windows` merged (`merge_windows`), or the whole image when they
    would cover `_WHOLE` of it."""
    height, width = image.shape[:2]
    merged = merge_windows(windows)
    if sum(w * h for _, _, w, h in merged) >= _WHOLE * width * height:
        return [(0, 0, width, height)]
    return merged


def merge_windows(windows: list[Window]) -> list[Window]:
    """`windows` with two that overlap replaced by their bounding box when
    it is no larger than the two together, until no two can be."""
    merged: list[Window] = []  # no two of these can be
    pending = list(windows)
    while pending:
        window = pending.pop()
        for i, other in enumerate(merged):
            union = _union(window, other)
            if _overlap(window, other) and _area(union) <= _area(window) + _area(other):
                del merged[i]
                pending.append(union)  # it may now join others
                break
        else:
            merged.append(window)
    return sorted(merged)


def _area(window: Window) -> int:
    return window[2] * window[3]


def _overlap(a: Window, b: Window) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _union(a: Window, b: Window) -> Window:
    left, top = min(a[0], b[0]), min(a[1], b[1])
    right, bottom = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return left, top, right - left, bottom - top
