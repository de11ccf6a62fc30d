from __future__ import annotations

import numpy as np
import pytest

from veil import Detections
from veil.options import TrackingOptions
from veil.track import FaceTracker


def face(x: float, y: float = 50.0, size: float = 40.0) -> Detections:
    return Detections(np.array([[x, y, x + size, y + size]], np.float32), np.array([0.9], np.float32))


NONE = Detections.empty()


def run(frames: list[Detections], cuts: tuple[int, ...] = (), **options: int) -> list[Detections]:
    tracker = FaceTracker(TrackingOptions(**options))  # type: ignore[arg-type]
    for index, found in enumerate(frames):
        tracker.push(index, found, scene_cut=index in cuts)
    tracker.finish()
    return [tracker.boxes_for(i) for i in range(len(frames))]


def test_gap_is_filled_with_interpolated_boxes() -> None:
    out = run([face(0), face(10), NONE, NONE, NONE, face(50)], extend=0)
    for index in (2, 3, 4):
        assert len(out[index]) == 1, index
    assert out[3].boxes[0, 0] == pytest.approx(30.0)


def test_tracks_are_extended_before_and_after() -> None:
    frames = [NONE] * 10 + [face(100)] * 3 + [NONE] * 10
    out = run(frames, extend=4, max_gap=2)
    covered = [i for i, boxes in enumerate(out) if len(boxes)]
    assert covered == list(range(6, 17))


def test_gap_longer_than_max_gap_is_not_interpolated() -> None:
    out = run([face(0)] + [NONE] * 6 + [face(60)], extend=0, max_gap=3)
    assert [len(b) for b in out] == [1, 0, 0, 0, 0, 0, 0, 1]


def test_nothing_is_carried_across_a_scene_cut() -> None:
    out = run([face(0), NONE, NONE, face(200)], cuts=(2,), extend=1, max_gap=5)
    assert len(out[1]) == 1 and out[1].boxes[0, 0] == pytest.approx(0.0)  # extended after frame 0
    assert all(box[0] == pytest.approx(200.0) for box in out[2].boxes)  # only the new face, pre-extended


def test_frames_become_final_after_the_delay() -> None:
    tracker = FaceTracker(TrackingOptions(max_gap=3, extend=2))
    for index in range(3):
        tracker.push(index, NONE)
    assert not tracker.is_final(0)
    tracker.push(3, NONE)
    assert tracker.is_final(0) and not tracker.is_final(1)
    with pytest.raises(ValueError, match="expected frame 4"):
        tracker.push(6, NONE)


def test_two_faces_keep_their_own_tracks() -> None:
    both = Detections.concatenate([face(0), face(300)])
    out = run([both, face(300), face(300), both], extend=0)
    assert len(out[1]) == 2 and len(out[2]) == 2  # the left face is filled in
    assert sorted(out[1].boxes[:, 0].tolist()) == pytest.approx([0.0, 300.0])


def test_a_shrinking_face_is_extended_at_its_last_size_not_turned_inside_out() -> None:
    frames = [face(100, size=60), face(110, size=40), face(120, size=20)] + [NONE] * 4
    out = run(frames, extend=4, max_gap=0)
    for index in range(3, 7):
        (box,) = out[index].boxes.tolist()
        assert box[2] - box[0] >= 20 - 1e-3 and box[3] - box[1] >= 20 - 1e-3, (index, box)
        assert (box[0] + box[2]) / 2 == pytest.approx(130)  # where its centre stays


def test_each_box_keeps_its_track() -> None:
    tracker = FaceTracker(TrackingOptions(extend=1, max_gap=2))
    two = Detections.concatenate([face(0), face(300)])
    for index, found in enumerate([two, two, face(300)]):
        tracker.push(index, found)
    tracker.finish()
    tracked = [tracker.tracked_for(i) for i in range(3)]
    left, right = (t.track for t in sorted(tracked[0], key=lambda t: float(t.box[0])))
    assert left != right
    assert {t.track for t in tracked[2]} == {left, right}  # the left face extended by tracking
    assert [t.score for t in tracked[2] if t.track == left] == [0.0]
