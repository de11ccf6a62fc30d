from __future__ import annotations

import numpy as np
import pytest

from veil import Detections


def test_shapes_are_validated_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="one score per box, got 2 boxes and 1 scores"):
        Detections(np.zeros((2, 4)), np.zeros(1))


def test_merged_keeps_one_box_per_face() -> None:
    boxes = np.array([[10, 10, 30, 30], [11, 11, 31, 31], [12, 12, 20, 20], [100, 100, 120, 120]], np.float32)
    merged = Detections(boxes, np.array([0.9, 0.8, 0.5, 0.7], np.float32)).merged()
    assert len(merged) == 2
    assert sorted(merged.scores.tolist()) == pytest.approx([0.7, 0.9])


def test_scaled_shifted_clipped() -> None:
    one = Detections(np.array([[1, 2, 3, 4]], np.float32), np.array([0.5], np.float32))
    assert one.scaled(2).shifted(10, 20).boxes.tolist() == [[12, 24, 16, 28]]
    assert one.shifted(-5, 0).clipped(100, 100).boxes.tolist() == [[0, 2, 0, 4]]
    assert one.mirrored(10).boxes.tolist() == [[7, 2, 9, 4]]
