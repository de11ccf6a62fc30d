"""The recognition adversary: can a face-recognition model still match a
masked face to the person it hid?

veil never identifies anyone. This module compares a face only with what veil
made of that same face: each face found in the original is aligned with
dlib's 5-point landmarks, and the same aligned region is cut from the
original and from the output. dlib's ResNet maps both to 128 numbers whose
distances separate people (two photos of one person are usually closer than
0.6). The same is done for a control: the output with every changed pixel
around the face filled with their mean colour, which is what a solid mask
leaves. A mask whose pixels bring the face measurably closer to the person
than the control (by CONTROL_MARGIN) lets identity through: blur and
pixelation do, a solid mask does not (its distance stays within 0.02 of
the control's on identities-dev). The surroundings, shared by output and
control, cancel out; faces left uncovered are the detection check's job.

The attacker here is stronger than a real one: it knows exactly where the
face was and aligns the output with the original's landmarks.

dlib comes from the optional extra veil[audit] (dlib-bin and
face-recognition-models); without it this check is reported as not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from veil.detection.models import DLIB_LANDMARKS, DLIB_RECOGNITION, verified_model_path
from veil.detections import Detections
from veil.errors import ModelError, RecognitionUnavailableError

CONTROL_MARGIN = 0.05
# A mask whose pixels stay this close to one colour (JPEG ringing around a
# solid fill) is a flat fill: its descriptor is the control's.
FLAT_TOLERANCE = 24
FLAT_PERCENTILE = 95
MIN_FACE_SIDE = 20  # px; below this the descriptors carry too little to compare

INSTALL_HINT = "pip install 'veil[audit]'"


@dataclass(frozen=True)
class FaceMatch:
    box: tuple[float, float, float, float]  # in the original, x1, y1, x2, y2
    # Between the original face and the same region of the output, and the
    # output with its changes flattened; None when the two images are the
    # same there (a solid mask), so that nothing needs computing.
    distance: float | None
    control_distance: float | None

    @property
    def recognizable(self) -> bool:
        """The output's changed pixels bring it measurably closer to the person
        than the same pixels filled with one flat colour would."""
        if self.distance is None or self.control_distance is None:
            return False
        return self.distance < self.control_distance - CONTROL_MARGIN


class FaceRecognizer:
    """dlib's face-recognition ResNet, used only against veil's own masks."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as e:
            raise RecognitionUnavailableError(f"dlib is not installed ({INSTALL_HINT})") from e
        try:
            landmarks = verified_model_path(DLIB_LANDMARKS)
            recognition = verified_model_path(DLIB_RECOGNITION)
        except ModelError as e:
            raise RecognitionUnavailableError(f"{e} ({INSTALL_HINT})") from e
        self._dlib: Any = dlib
        self._landmarks: Any = dlib.shape_predictor(str(landmarks))
        self._net: Any = dlib.face_recognition_model_v1(str(recognition))

    def compare(
        self,
        original: npt.NDArray[np.uint8],
        output: npt.NDArray[np.uint8],
        changed: npt.NDArray[np.bool_],
        faces: Detections,
    ) -> list[FaceMatch]:
        """For each face box in the original big enough to compare: the
        distance from the original face to the same region of the output, and
        to a control, the output with the `changed` pixels around that face
        filled with their mean colour (what a solid mask would have left).
        Both images are upright RGB of the same size."""
        if original.shape != output.shape:
            raise ValueError(f"compare: sizes differ, {original.shape} and {output.shape}")
        original = np.ascontiguousarray(original)
        output = np.ascontiguousarray(output)
        matches = []
        for x1, y1, x2, y2 in faces.boxes.tolist():
            if min(x2 - x1, y2 - y1) < MIN_FACE_SIDE:
                continue
            box = (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))
            flattened, deviation = _flattened(output, changed, (x1, y1, x2, y2))
            if deviation <= FLAT_TOLERANCE:
                matches.append(FaceMatch(box, None, None))  # already a flat fill: nothing got through
                continue
            shape = self._shape(original, (x1, y1, x2, y2))
            before = self._descriptor(original, shape)
            after = self._descriptor(output, shape)
            control = self._descriptor(flattened, shape)
            distances = float(np.linalg.norm(before - after)), float(np.linalg.norm(before - control))
            matches.append(FaceMatch(box, *distances))
        return matches

    def _shape(self, image: npt.NDArray[np.uint8], box: tuple[float, float, float, float]) -> Any:
        """dlib's five landmarks of the face in `box`, for alignment."""
        x1, y1, x2, y2 = (round(v) for v in box)
        return self._landmarks(image, self._dlib.rectangle(x1, y1, x2, y2))

    def _descriptor(self, image: npt.NDArray[np.uint8], shape: Any) -> npt.NDArray[np.float64]:
        return np.array(self._net.compute_face_descriptor(image, shape))

    def describe(
        self,
        image: npt.NDArray[np.uint8],
        box: tuple[float, float, float, float],
        aligned_on: npt.NDArray[np.uint8] | None = None,
    ) -> npt.NDArray[np.float64]:
        """The descriptor of one face, its landmarks found in `aligned_on`
        (default: the image itself); for the benchmark that measures the attack."""
        image = np.ascontiguousarray(image)
        reference = image if aligned_on is None else np.ascontiguousarray(aligned_on)
        return self._descriptor(image, self._shape(reference, box))


def _flattened(
    image: npt.NDArray[np.uint8], changed: npt.NDArray[np.bool_], box: tuple[float, float, float, float]
) -> tuple[npt.NDArray[np.uint8], int]:
    """A copy of `image` whose changed pixels near `box` (the box grown by its
    size on each side, more than the aligned chip) hold their mean colour,
    and how much that changed them (the FLAT_PERCENTILE-th percentile, so
    that JPEG ringing at a mask's edge does not count). When they are flat
    already (up to FLAT_TOLERANCE), `image` itself, not a copy."""
    height, width = changed.shape
    x1, y1, x2, y2 = box
    left, top = max(0, round(2 * x1 - x2)), max(0, round(2 * y1 - y2))
    right, bottom = min(width, round(2 * x2 - x1)), min(height, round(2 * y2 - y1))
    mask = changed[top:bottom, left:right]
    if not mask.any():
        return image, 0
    pixels = image[top:bottom, left:right][mask]
    mean = pixels.mean(axis=0).round().astype(np.uint8)
    per_pixel = np.abs(pixels.astype(np.int16) - mean).max(axis=1)
    deviation = int(np.percentile(per_pixel, FLAT_PERCENTILE))
    if deviation <= FLAT_TOLERANCE:
        return image, deviation  # already flat: no copy of the whole picture for a solid mask
    out = image.copy()
    out[top:bottom, left:right][mask] = mean
    return out, deviation
