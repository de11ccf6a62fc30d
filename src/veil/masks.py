"""Hide heads and boxes: the one place veil draws masks on a picture.

`draw` hides a plan's masks (`veil.plan.model.Mask`): `veil anonymize` draws
with it while detecting, and `veil render` from a saved plan, so the two give
the same output from the same plan.

The default fill is a solid colour: nothing of the original face survives in
the masked pixels. Blur and pixelation keep a function of the original pixels
that recognition models trained on such images see through; they exist only
as explicit, warned choices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from veil.detections import Detections
from veil.options import MaskMethod, MaskOptions
from veil.plan.model import Mask, Shape, rounded_box

Image = npt.NDArray[np.uint8]

_HEAD_RISE = 0.12  # the head's centre sits above the face box's: hair, forehead
_MIN_PAD = 2.0  # pixels added around every head, for tiny faces


@dataclass(frozen=True)
class HeadEllipse:
    centre_x: float
    centre_y: float
    half_width: float
    half_height: float

    def bounds(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Integer x1, y1, x2, y2 of the ellipse's box, clipped to the image."""
        x1 = max(0, int(np.floor(self.centre_x - self.half_width)))
        y1 = max(0, int(np.floor(self.centre_y - self.half_height)))
        x2 = min(width, int(np.ceil(self.centre_x + self.half_width)) + 1)
        y2 = min(height, int(np.ceil(self.centre_y + self.half_height)) + 1)
        return x1, y1, x2, y2


def head_ellipses(detections: Detections, head_scale: float) -> list[HeadEllipse]:
    """The face boxes grown into ellipses that take in hair, ears, jaw and neck."""
    heads = []
    for x1, y1, x2, y2 in detections.boxes.tolist():
        width, height = x2 - x1, y2 - y1
        heads.append(
            HeadEllipse(
                centre_x=(x1 + x2) / 2,
                centre_y=(y1 + y2) / 2 - _HEAD_RISE * height,
                half_width=width * head_scale / 2 + _MIN_PAD,
                half_height=height * head_scale / 2 + _MIN_PAD,
            )
        )
    return heads


def head_mask(
    shape: tuple[int, int], heads: list[HeadEllipse], boxes: Sequence[tuple[int, int, int, int]] = ()
) -> npt.NDArray[np.bool_]:
    """A boolean HxW array, True inside any head or any of `boxes` (x1, y1, x2,
    y2, exclusive ends)."""
    mask = np.zeros(shape, dtype=np.uint8)
    for head in heads:
        cv2.ellipse(
            mask,
            (round(head.centre_x), round(head.centre_y)),
            (max(1, round(head.half_width)), max(1, round(head.half_height))),
            0,
            0,
            360,
            color=1,
            thickness=-1,
        )
    for x1, y1, x2, y2 in boxes:
        mask[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = 1
    return mask.astype(bool)


def draw(image: Image, masks: Sequence[Mask], options: MaskOptions) -> Image:
    """A copy of `image` with `masks` hidden: ellipses as heads around their
    face box, boxes exactly. The order of `masks` does not matter."""
    ordered = sorted(masks, key=lambda m: (m.shape.value, m.box))
    faces = [m.box for m in ordered if m.shape is Shape.ELLIPSE]
    heads = head_ellipses(
        Detections(np.array(faces, np.float32), np.zeros(len(faces), np.float32)), options.head_scale
    )
    boxes = [
        (math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2))
        for x1, y1, x2, y2 in (m.box for m in ordered if m.shape is Shape.BOX)
    ]
    return cover(image, heads, boxes, options)


def opaque_where_changed(alpha: Image, before: Image, after: Image) -> Image:
    """Masks must be seen: make them opaque even where the input was transparent."""
    changed = np.any(before != after, axis=2)
    out = alpha.copy()
    out[changed] = 255
    return out


def face_masks(faces: Detections) -> list[Mask]:
    """A head mask around each face box, as a plan lists them (to `draw`)."""
    return [Mask(Shape.ELLIPSE, rounded_box(box)) for box in faces.boxes.tolist()]


def cover(
    image: Image,
    heads: list[HeadEllipse],
    boxes: Sequence[tuple[int, int, int, int]],
    options: MaskOptions,
) -> Image:
    """A copy of `image` (HxWx3 uint8) with `heads` and `boxes` hidden."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"masks: expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
    out = image.copy()
    if not heads and not boxes:
        return out
    inside = head_mask(image.shape[:2], heads, boxes)
    if options.method is MaskMethod.SOLID:
        out[inside] = np.array(options.color, dtype=np.uint8)
        return out
    height, width = image.shape[:2]
    bounds = [head.bounds(width, height) for head in heads] + [
        (max(0, x1), max(0, y1), min(width, x2), min(height, y2)) for x1, y1, x2, y2 in boxes
    ]
    covered = _obscured(image, bounds, options.method)
    out[inside] = covered[inside]
    return out


def _obscured(image: Image, bounds: list[tuple[int, int, int, int]], method: MaskMethod) -> Image:
    """The image with each of `bounds` blurred or pixelated (reversible methods)."""
    out = image.copy()
    for x1, y1, x2, y2 in bounds:
        if x2 <= x1 or y2 <= y1:
            continue
        region = image[y1:y2, x1:x2]
        if method is MaskMethod.BLUR:
            kernel = max(3, int(max(x2 - x1, y2 - y1) / 3) | 1)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(region, (kernel, kernel), 0)
        else:
            blocks = 8
            small = cv2.resize(region, (blocks, blocks), interpolation=cv2.INTER_AREA)
            out[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    return out
