"""Follow faces across video frames so that no frame slips through.

The detector blinks: a face found in frames 10 and 14 may be missed in 11-13.
FaceTracker links detections frame to frame, masks the interpolated box in
such gaps, and extends every track a few frames before it starts and after
it ends. It works as a stream: a frame's boxes are final once `delay` later
frames have been seen, so memory holds only that many frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from veil.detections import Detections, FloatArray
from veil.options import TrackingOptions

_THUMB_SIZE = (32, 18)


@dataclass(eq=False)
class _Track:
    id: int
    last_index: int
    last_box: FloatArray
    velocity: FloatArray = field(default_factory=lambda: np.zeros(4, np.float32))


@dataclass(frozen=True)
class TrackedBox:
    """One box to mask in a frame and the track it belongs to; `score` is
    the search's, 0 where tracking filled the frame in."""

    track: int
    box: FloatArray
    score: float
    found_by: str | None = None  # the search's pass, or "tracking"


@dataclass(frozen=True)
class TrackingSummary:
    tracks: int
    frames_filled: int


class FaceTracker:
    def __init__(self, options: TrackingOptions | None = None) -> None:
        self.options = options or TrackingOptions()
        self._active: list[_Track] = []
        self._found: dict[int, Detections] = {}
        self._found_tracks: dict[int, list[int]] = {}
        self._filled: dict[int, list[tuple[int, FloatArray]]] = {}
        self._latest = -1
        self._scene_start = 0
        self._finished = False
        self._tracks = 0
        self._frames_filled: set[int] = set()

    def push(self, index: int, detections: Detections, scene_cut: bool = False) -> None:
        """Add frame `index` (0, 1, 2, ... in order) and what was found in it."""
        if index != self._latest + 1:
            raise ValueError(f"FaceTracker: expected frame {self._latest + 1}, got {index}")
        self._latest = index
        self._found[index] = detections
        if scene_cut:
            self._active = []
            self._scene_start = index
        unmatched_tracks, self._found_tracks[index] = self._match_all(detections.boxes)
        for track in unmatched_tracks:
            missing_for = index - track.last_index
            if missing_for <= self.options.extend:
                self._fill(index, track, _extrapolated(track, missing_for))
        horizon = max(self.options.max_gap, self.options.extend)
        self._active = [t for t in self._active if index - t.last_index <= horizon]

    def finish(self) -> None:
        """No more frames: every pushed frame is final."""
        self._finished = True

    def is_final(self, index: int) -> bool:
        return self._finished or self._latest - index >= self.options.delay

    def boxes_for(self, index: int) -> Detections:
        """Everything to mask in a final frame: its detections and the boxes
        tracking filled in (score 0). Each frame can be asked once."""
        tracked = self.tracked_for(index)
        return Detections(
            np.array([t.box for t in tracked], np.float32).reshape(-1, 4),
            np.array([t.score for t in tracked], np.float32),
        )

    def tracked_for(self, index: int) -> list[TrackedBox]:
        """`boxes_for`, with the track of each box. Each frame can be asked once."""
        if not self.is_final(index):
            raise ValueError(f"FaceTracker: frame {index} is not final yet")
        found = self._found.pop(index)
        tracks = self._found_tracks.pop(index)
        boxes = [
            TrackedBox(track, box, float(score), found.by(i))
            for i, (track, box, score) in enumerate(
                zip(tracks, found.boxes, found.scores.tolist(), strict=True)
            )
        ]
        filled = self._filled.pop(index, [])
        return boxes + [TrackedBox(track, box, 0.0, "tracking") for track, box in filled]

    def summary(self) -> TrackingSummary:
        return TrackingSummary(tracks=self._tracks, frames_filled=len(self._frames_filled))

    def _match_all(self, boxes: FloatArray) -> tuple[list[_Track], list[int]]:
        """Link each box, largest first, to the nearest unclaimed track whose
        predicted box lies within `match_distance` face sizes of its centre;
        start a track for each box left over. Returns the tracks that found
        no box, and the track of each box."""
        tracks = list(self._active)  # new tracks started below are not candidates
        predicted = np.array(
            [t.last_box + t.velocity * (self._latest - t.last_index) for t in tracks], np.float32
        ).reshape(-1, 4)
        centres = (predicted[:, :2] + predicted[:, 2:]) / 2
        sizes = np.max(predicted[:, 2:] - predicted[:, :2], axis=1) if len(tracks) else np.zeros(0)
        free = np.ones(len(tracks), bool)
        ids = [0] * len(boxes)
        for i in _by_size(boxes):
            box = boxes[i]
            centre = (box[:2] + box[2:]) / 2
            scale = np.maximum(np.maximum(sizes, float(np.max(box[2:] - box[:2]))), 1.0)
            distance = np.linalg.norm(centres - centre, axis=1) / scale
            distance[~free | (distance > self.options.match_distance)] = np.inf
            nearest = int(np.argmin(distance)) if len(distance) else -1
            if nearest < 0 or not np.isfinite(distance[nearest]):
                ids[i] = self._start_track(self._latest, box)
                continue
            free[nearest] = False
            ids[i] = tracks[nearest].id
            self._continue_track(tracks[nearest], self._latest, box)
        return [track for track, unclaimed in zip(tracks, free, strict=True) if unclaimed], ids

    def _start_track(self, index: int, box: FloatArray) -> int:
        self._tracks += 1
        track = _Track(self._tracks, index, box.copy())
        self._active.append(track)
        for earlier in range(max(self._scene_start, index - self.options.extend), index):
            self._fill(earlier, track, box)
        return track.id

    def _continue_track(self, track: _Track, index: int, box: FloatArray) -> None:
        gap = index - track.last_index - 1
        if 0 < gap <= self.options.max_gap:
            for step in range(1, gap + 1):
                weight = step / (gap + 1)
                self._fill(track.last_index + step, track, track.last_box * (1 - weight) + box * weight)
        steps = max(1, index - track.last_index)
        track.velocity = ((box - track.last_box) / steps).astype(np.float32)
        track.last_index, track.last_box = index, box.copy()

    def _fill(self, index: int, track: _Track, box: FloatArray) -> None:
        if index in self._found:  # pushed and not yet handed out
            self._filled.setdefault(index, []).append((track.id, np.asarray(box, np.float32)))
            self._frames_filled.add(index)


def _extrapolated(track: _Track, steps: int) -> FloatArray:
    """Where the track's face should be `steps` frames after it was last seen:
    its centre moved on at its speed, never smaller than when last seen (a
    shrinking box extrapolated far enough turns inside out and masks nothing)."""
    moved = track.last_box + track.velocity * steps
    centre = (moved[:2] + moved[2:]) / 2
    size = np.maximum(moved[2:] - moved[:2], track.last_box[2:] - track.last_box[:2])
    return np.concatenate([centre - size / 2, centre + size / 2]).astype(np.float32)


def _by_size(boxes: FloatArray) -> list[int]:
    """Indices, largest faces first: they are matched before small ones can steal their track."""
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    return [int(i) for i in np.argsort(-areas, kind="stable")]


def thumbnail(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A tiny grey copy of a frame, for spotting scene cuts."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.asarray(cv2.resize(grey, _THUMB_SIZE, interpolation=cv2.INTER_AREA), dtype=np.float32)


def is_scene_cut(
    previous: npt.NDArray[np.float32] | None, current: npt.NDArray[np.float32], threshold: float
) -> bool:
    return previous is not None and float(np.mean(np.abs(current - previous))) > threshold
