from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from veil import Detections, MaskMethod, MaskOptions
from veil.masks import draw, face_masks, head_ellipses, head_mask

FACE = Detections(np.array([[40, 40, 60, 66]], np.float32), np.array([0.9], np.float32))


def noise() -> npt.NDArray[np.uint8]:
    return np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)


def test_solid_mask_covers_more_than_the_face_box_and_ignores_the_pixels() -> None:
    image = noise()
    out = draw(image, face_masks(FACE), MaskOptions())
    inside = head_mask(image.shape[:2], head_ellipses(FACE, MaskOptions().head_scale))
    assert (out[inside] == MaskOptions().color).all()
    assert inside[40:66, 40:60].all(), "the whole face box is inside the head"
    assert inside.sum() > 1.5 * 20 * 26, "the head is larger than the face"
    other = draw(noise()[::-1].copy(), face_masks(FACE), MaskOptions())
    assert np.array_equal(other[inside], out[inside]), "fill does not depend on the original"


def test_masks_never_mutate_the_input() -> None:
    image = noise()
    before = image.copy()
    for method in MaskMethod:
        draw(image, face_masks(FACE), MaskOptions(method=method))
    assert np.array_equal(image, before)


@pytest.mark.parametrize("method", [MaskMethod.BLUR, MaskMethod.PIXELATE])
def test_reversible_methods_change_only_the_head(method: MaskMethod) -> None:
    image = noise()
    out = draw(image, face_masks(FACE), MaskOptions(method=method))
    changed = np.any(out != image, axis=2)
    assert changed[45:60, 45:55].mean() > 0.9
    assert not changed[100:, :].any()
    assert method.reversible


def test_no_faces_returns_an_equal_copy() -> None:
    image = noise()
    out = draw(image, face_masks(Detections.empty()), MaskOptions())
    assert np.array_equal(out, image) and out is not image


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="head_scale"):
        MaskOptions(head_scale=0.5)
    with pytest.raises(ValueError, match="color"):
        MaskOptions(color=(0, 0, 300))
