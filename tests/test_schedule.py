"""The search schedule of a clip on the CPU: every pass on key frames (every
n-th, scene cuts, pans), the cheap passes between them, and the costly
ones in windows around the faces the frames around them hold, so that a
small face that comes into view between two key frames is found from its
first frame."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from veil.detection.detect import CenterFaceDetector, cheap_passes, detection_passes
from veil.detection.schedule import SearchSchedule, merge_windows
from veil.detections import Detections
from veil.options import DetectionOptions

WIDTH, HEIGHT = 1280, 720
FACE_AT = (600, 300)
VIEW = np.zeros((18, 32), np.float32)


@pytest.fixture(scope="module")
def detector() -> CenterFaceDetector:
    return CenterFaceDetector(DetectionOptions(video_key_every=6))


@pytest.fixture(scope="module")
def unchanged(detector: CenterFaceDetector) -> CenterFaceDetector:
    """Blind to where frames change: only the faces around a frame lead the search."""
    return CenterFaceDetector(replace(detector.options, video_change_level=0))


def frame(astronaut: npt.NDArray[np.uint8], with_face: bool) -> npt.NDArray[np.uint8]:
    """A grey 720p frame; `with_face`: the astronaut's head, about 14 px tall, in it."""
    pixels = np.full((HEIGHT, WIDTH, 3), 120, np.uint8)
    if with_face:
        head = cv2.resize(astronaut[20:230, 130:310], (25, 29), interpolation=cv2.INTER_AREA)
        x, y = FACE_AT
        pixels[y : y + head.shape[0], x : x + head.shape[1]] = head
    return pixels


def has_face(found: Detections) -> bool:
    x, y = FACE_AT
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    return bool(np.any(np.all(np.abs(centres - (x + 12, y + 14)) < 10, axis=1)))


def test_key_frames_come_every_nth_frame_at_scene_cuts_and_pans() -> None:
    schedule = SearchSchedule(CenterFaceDetector(DetectionOptions(video_key_every=4)))
    grey = np.full((90, 160, 3), 120, np.uint8)
    decided = [[i for i, _ in schedule.push(i, grey, VIEW, cut=False)] for i in range(6)]
    assert decided == [[0], [], [], [], [1, 2, 3, 4], []]  # each frame once, in order, at the next key
    assert [i for i, _ in schedule.push(6, grey, VIEW, cut=True)] == [5, 6]
    assert [i for i, _ in schedule.push(7, grey, VIEW + 50, cut=False)] == [7]  # the view moved
    assert [i for i, _ in schedule.push(8, grey, VIEW + 50, cut=False)] == [8]
    assert schedule.push(9, grey, VIEW + 50, cut=False) == []
    assert [i for i, _ in schedule.finish()] == [9]


def test_a_small_face_that_comes_into_view_between_key_frames_is_found_from_its_first_frame(
    astronaut: npt.NDArray[np.uint8], unchanged: CenterFaceDetector
) -> None:
    """The later key frame finds it, and it is searched for in the frames before."""
    with_face = frame(astronaut, True)
    cheap = cheap_passes(detection_passes(WIDTH, HEIGHT, unchanged.options))
    assert not any(has_face(unchanged.pass_finds(with_face, p)) for p in cheap)  # too small for them
    schedule = SearchSchedule(unchanged)
    results = []
    for index in range(7):  # key frames 0 and 6; the face from frame 3 on
        results += schedule.push(index, frame(astronaut, index >= 3), VIEW, cut=False)
    results += schedule.finish()
    assert [i for i, _ in results] == list(range(7))
    assert [i for i, found in results if has_face(found)] == [3, 4, 5, 6]
    assert schedule.searched["centerface x2 (windows)"] == 5  # the frames between, in windows only
    assert schedule.searched["centerface x2"] == 2  # the key frames, whole


def test_a_small_face_is_followed_between_key_frames_after_the_later_one_has_gone(
    astronaut: npt.NDArray[np.uint8], unchanged: CenterFaceDetector
) -> None:
    """Seen on the first key frame, gone before the next: searched for
    around where it was, frame after frame, until it is not there."""
    schedule = SearchSchedule(unchanged)
    results = []
    for index in range(7):
        results += schedule.push(index, frame(astronaut, index <= 4), VIEW, cut=False)
    assert [i for i, found in results if has_face(found)] == [0, 1, 2, 3, 4]


def test_a_small_face_seen_on_no_key_frame_is_found_where_the_frame_changed(
    astronaut: npt.NDArray[np.uint8], detector: CenterFaceDetector, unchanged: CenterFaceDetector
) -> None:
    """In view from frame 2 to 3 only, between key frames 0 and 6."""
    for searcher, expected in ((detector, [2, 3]), (unchanged, [])):
        schedule = SearchSchedule(searcher)
        results = []
        for index in range(7):
            results += schedule.push(index, frame(astronaut, index in (2, 3)), VIEW, cut=False)
        assert [i for i, found in results if has_face(found)] == expected


def test_windows_are_joined_only_where_that_costs_no_more_search() -> None:
    assert merge_windows([(0, 0, 100, 100), (50, 0, 100, 100)]) == [(0, 0, 150, 100)]  # a shared strip
    apart = [(0, 0, 100, 100), (90, 90, 100, 100)]  # corners touch: their union is far larger
    assert merge_windows(apart) == apart
    assert merge_windows([(0, 0, 10, 10), (500, 500, 10, 10)]) == [(0, 0, 10, 10), (500, 500, 10, 10)]


def test_joined_windows_hold_every_window_and_no_two_could_join_further() -> None:
    rng = np.random.default_rng(7)
    windows = [
        (int(x), int(y), int(w), int(h))
        for x, y, w, h in zip(
            rng.integers(0, 900, 60),
            rng.integers(0, 500, 60),
            rng.integers(20, 160, 60),
            rng.integers(20, 160, 60),
            strict=True,
        )
    ]
    merged = merge_windows(windows)
    for x, y, w, h in windows:
        assert any(a <= x and b <= y and x + w <= a + c and y + h <= b + d for a, b, c, d in merged)
    assert merge_windows(merged) == merged
