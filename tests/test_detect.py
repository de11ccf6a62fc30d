from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from veil import CenterFaceDetector, DetectionOptions
from veil.detection.detect import (
    Evidence,
    detection_passes,
    detection_scales,
    focus_windows,
    frame_passes,
    iter_tiles,
)

from conftest import ASTRONAUT_FACE


@pytest.fixture(scope="module")
def detector() -> CenterFaceDetector:
    return CenterFaceDetector()


def test_finds_the_astronaut_face(detector: CenterFaceDetector, astronaut: npt.NDArray[np.uint8]) -> None:
    found = detector.detect(astronaut)
    assert len(found) == 1
    assert np.allclose(found.boxes[0], ASTRONAUT_FACE, atol=6)
    assert found.scores[0] > 0.8


@pytest.mark.parametrize("int8_finest", [False, True])
def test_finds_small_faces_in_a_crowd_of_copies(int8_finest: bool, astronaut: npt.NDArray[np.uint8]) -> None:
    """Twenty-four astronauts shrunk so each face is about 14 px tall; also
    with the finest pass in int8 (the bundled calibration)."""
    import cv2

    detector = CenterFaceDetector(DetectionOptions(int8_finest=int8_finest))
    small = cv2.resize(astronaut, (58, 58), interpolation=cv2.INTER_AREA)
    grid = np.tile(small, (4, 6, 1))
    found = detector.detect(grid)
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    cells = {(int(cy // 58), int(cx // 58)) for cx, cy in centres}
    assert len(cells) >= 22, f"found faces in only {len(cells)} of 24 cells"


def test_detection_does_not_modify_the_image(
    detector: CenterFaceDetector, astronaut: npt.NDArray[np.uint8]
) -> None:
    copy = astronaut.copy()
    detector.detect(copy)
    assert np.array_equal(copy, astronaut)


def test_rejects_wrong_shapes(detector: CenterFaceDetector) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_scales_go_from_enlarged_to_whole_view() -> None:
    options = DetectionOptions()
    assert detection_scales(416, 416, options) == [2.0, 1.0]
    scales = detection_scales(4032, 3024, options)
    assert scales[-1] == pytest.approx(640 / 4032)
    assert 4032 * 3024 * scales[0] ** 2 <= options.max_pixels * 1.001
    assert all(a / b <= 2.0 + 1e-9 for a, b in itertools.pairwise(scales))


def test_tiles_cover_the_image_with_overlap() -> None:
    covered = np.zeros((3000, 5000), bool)
    tiles = list(iter_tiles(5000, 3000, 1536, 128))  # explicit sizes: the default may change
    for x, y, w, h in tiles:
        assert w <= 1536 and h <= 1536
        covered[y : y + h, x : x + w] = True
    assert covered.all()
    xs = sorted({x for x, _, _, _ in tiles})
    widths = {x: w for x, _, w, _ in tiles}
    assert all(xs[i] + widths[xs[i]] - xs[i + 1] >= 128 for i in range(len(xs) - 1))


def test_a_frame_searched_on_its_own_gets_every_pass_halfway_between_key_frames() -> None:
    """As verification attacks a clip: every pass where the anonymizer's own
    search was thinnest, the cheap ones on every other frame."""
    options = DetectionOptions(video_key_every=6)
    passes = detection_passes(1920, 1080, options)
    assert [p.scale for p in passes if p.finest] == [2.0]
    assert sum(p.mirrored for p in passes) == len(passes) // 2  # each scale but the finest, mirrored
    cheap = [p for p in passes if p.scale < 1 and not p.mirrored]
    assert [frame_passes(passes, index, options) == passes for index in range(12)] == [
        index % 6 == 3 for index in range(12)
    ]
    assert all(frame_passes(passes, index, options) == cheap for index in range(12) if index % 6 != 3)
    every = DetectionOptions(video_key_every=1)
    assert frame_passes(passes, 4, every) == passes


def _evidence(heat: npt.NDArray[np.float32], width: int, height: int, scale: float = 1.0) -> Evidence:
    return Evidence(scale, heat.astype(np.float32), width, height)


def test_the_finest_pass_looks_around_each_sign_of_a_face() -> None:
    heat = np.zeros((200, 250), np.float32)  # a 1000x800 image at scale 1
    assert focus_windows(_evidence(heat, 1000, 800), 0.02) == []
    heat[100, 60] = 0.05  # pixel (240, 400): cell row 6, column 3 of 64 px cells
    assert focus_windows(_evidence(heat, 1000, 800), 0.02) == [(128, 320, 192, 192)]
    assert focus_windows(_evidence(heat, 1000, 800), 0.1) == []
    # in an image searched at half its size, the window is twice as large
    assert focus_windows(_evidence(heat, 2000, 1600, 0.5), 0.02) == [(256, 640, 384, 384)]
    heat[:] = 0.5
    assert focus_windows(_evidence(heat, 1000, 800), 0.02) == [(0, 0, 1000, 800)]


@pytest.mark.parametrize("seed", range(20))
def test_focus_windows_hold_each_hot_cell_and_its_neighbours_whole(seed: int) -> None:
    """Scattered signs of faces: each hot 64 px cell, with the cells around
    it, lies whole in one window (so a face centred in it is searched whole),
    and the windows cover much less than the image."""
    rng = np.random.default_rng(seed)
    heat = np.zeros((480, 640), np.float32)  # a 2560x1920 image at scale 1
    hot = rng.integers(0, [30, 40], size=(int(rng.integers(1, 12)), 2))
    for row, col in hot:
        heat[row * 16 + 8, col * 16 + 8] = 0.5
    windows = focus_windows(_evidence(heat, 2560, 1920), 0.02)
    for row, col in hot:
        x1, y1 = max(0, (col - 1) * 64), max(0, (row - 1) * 64)
        x2, y2 = min(2560, (col + 2) * 64), min(1920, (row + 2) * 64)
        assert any(x <= x1 and y <= y1 and x + w >= x2 and y + h >= y2 for x, y, w, h in windows)
    area = sum(w * h for _, _, w, h in windows)
    assert area <= max(len(hot) * 2 * 192 * 192, 0.8 * 2560 * 1920)


def test_a_focused_search_finds_what_the_whole_search_finds(astronaut: npt.NDArray[np.uint8]) -> None:
    """Small faces in one corner of an empty picture: the finest pass that
    looks only around them finds every face that the whole pass finds."""
    import cv2

    small = cv2.resize(astronaut, (58, 58), interpolation=cv2.INTER_AREA)
    picture = np.full((700, 1000, 3), 128, np.uint8)
    picture[40 : 40 + 58 * 3, 60 : 60 + 58 * 4] = np.tile(small, (3, 4, 1))
    focused = CenterFaceDetector().detect(picture)
    whole = CenterFaceDetector(DetectionOptions(focus_threshold=0)).detect(picture)
    assert len(focused) >= 11
    assert len(focused) == len(whole)
    assert np.allclose(np.sort(focused.boxes, axis=0), np.sort(whole.boxes, axis=0), atol=2)


def test_a_focused_window_sees_no_false_face_where_it_cuts_the_picture() -> None:
    """scikit-image's motorcycle: a window cut off 21 px below a patch of it
    made the finest pass see a 103 px face there; such finds are dropped."""
    import skimage.data

    motorcycle = np.ascontiguousarray(np.asarray(skimage.data.stereo_motorcycle()[0], np.uint8))
    focused = CenterFaceDetector().detect(motorcycle)
    assert (focused.boxes[:, 3] - focused.boxes[:, 1]).max() < 60
