"""The second look: a candidate's crop searched again at the sizes each detector knows best."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from veil.detection.second_look import SMALL_FACE, SecondLook

from conftest import ASTRONAUT_FACE


@pytest.fixture(scope="module")
def second_look() -> SecondLook:
    return SecondLook()


def test_a_face_is_seen_again_by_both_detectors(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    look = second_look.look(astronaut, np.array(ASTRONAUT_FACE, np.float32))
    assert not look.small
    assert look.confirmed and look.firmly_confirmed
    assert max(look.centerface) > 0.5 and max(look.retinaface) > 0.8


def test_texture_is_not_seen_again(second_look: SecondLook, astronaut: npt.NDArray[np.uint8]) -> None:
    """The astronaut's flag and spacesuit, and random noise, at face size."""
    noise = np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    for image, box in ((astronaut, (20, 300, 120, 420)), (noise, (100, 100, 180, 190))):
        look = second_look.look(image, np.array(box, np.float32))
        assert not look.confirmed
        assert not look.firmly_confirmed


def test_a_small_face_is_enlarged_and_seen_again(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    """The astronaut shrunk so that her face is about 12 px tall."""
    scale = 0.1
    small = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    scene = np.full((160, 160, 3), 128, np.uint8)
    scene[50 : 50 + small.shape[0], 60 : 60 + small.shape[1]] = small
    box = np.array(ASTRONAUT_FACE, np.float32) * scale + np.array([60, 50, 60, 50], np.float32)
    assert box[3] - box[1] < SMALL_FACE
    look = second_look.look(scene, box)
    assert look.small and look.confirmed
    assert len(look.centerface) == 6 and look.retinaface == ()  # plain and mirrored, three sizes


def test_a_face_at_the_corner_of_the_picture_is_seen_again(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    """The look's crop is cut off by the picture's edges on two sides, and
    the face is still brought to the sizes the detectors know."""
    x1, y1, x2, y2 = ASTRONAUT_FACE
    corner = np.ascontiguousarray(astronaut[y1 - 10 :, x1 - 10 :])
    look = second_look.look(corner, np.array([10, 10, 10 + x2 - x1, 10 + y2 - y1], np.float32))
    assert look.confirmed and look.firmly_confirmed
