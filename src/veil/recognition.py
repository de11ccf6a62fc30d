"""The recognition adversary: can a face-recognition model still match a
masked face to the person it hid?

veil never identifies anyone. This module compares a face only with what veil
made of that same face: each face found in the original is aligned with
dlib's 5-point landmarks, and the same aligned region is cut from the
original and from the output. dlib's ResNet maps both to 128 numbers; two
photos of one person lie closer than 0.6 (dlib's published threshold, set
where the distances between different people begin on LFW). A masked face
still that close to its original, and closer than a blank face of the same
colour would be, is not hidden.

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

from veil.detections import Detections
from veil.errors import ModelError
from veil.models import DLIB_LANDMARKS, DLIB_RECOGNITION, verified_model_path

SAME_PERSON_DISTANCE = 0.6
BLANK_MARGIN = 0.05
MIN_FACE_SIDE = 20  # px; below this the descriptors carry too little to compare

INSTALL_HINT = "pip install 'veil[audit]'"


class RecognitionUnavailable(Exception):
    """dlib or its models are not installed."""


@dataclass(frozen=True)
class FaceMatch:
    box: tuple[float, float, float, float]  # in the original, x1, y1, x2, y2
    distance: float  # between the original face and the same region of the output
    blank_distance: float  # between the original face and a blank face of the output's colour

    @property
    def recognizable(self) -> bool:
        """Within the same-person distance, and measurably closer than a blank
        face: a solid mask is as far as a blank (0.00 +- 0.02 on
        identities-dev), so it never fails for the background around it."""
        return self.distance < SAME_PERSON_DISTANCE and self.distance < self.blank_distance - BLANK_MARGIN


class FaceRecognizer:
    """dlib's face-recognition ResNet, used only against veil's own masks."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as e:
            raise RecognitionUnavailable(f"dlib is not installed ({INSTALL_HINT})") from e
        try:
            landmarks = verified_model_path(DLIB_LANDMARKS)
            recognition = verified_model_path(DLIB_RECOGNITION)
        except ModelError as e:
            raise RecognitionUnavailable(f"{e} ({INSTALL_HINT})") from e
        self._dlib: Any = dlib
        self._landmarks: Any = dlib.shape_predictor(str(landmarks))
        self._net: Any = dlib.face_recognition_model_v1(str(recognition))

    def compare(
        self, original: npt.NDArray[np.uint8], output: npt.NDArray[np.uint8], faces: Detections
    ) -> list[FaceMatch]:
        """For each face box in the original big enough to compare, the
        distance between its descriptor and that of the same region of the
        output. Both images are upright RGB of the same size."""
        if original.shape != output.shape:
            raise ValueError(f"compare: sizes differ, {original.shape} and {output.shape}")
        original = np.ascontiguousarray(original)
        output = np.ascontiguousarray(output)
        matches = []
        for x1, y1, x2, y2 in faces.boxes.tolist():
            if min(x2 - x1, y2 - y1) < MIN_FACE_SIDE:
                continue
            shape = self._landmarks(
                original, self._dlib.rectangle(round(x1), round(y1), round(x2), round(y2))
            )
            before = np.array(self._net.compute_face_descriptor(original, shape))
            after = np.array(self._net.compute_face_descriptor(output, shape))
            region = output[max(0, round(y1)) : round(y2), max(0, round(x1)) : round(x2)].reshape(-1, 3)
            blank = np.ascontiguousarray(np.broadcast_to(region.mean(axis=0).astype(np.uint8), (150, 150, 3)))
            matches.append(
                FaceMatch(
                    (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)),
                    float(np.linalg.norm(before - after)),
                    float(np.linalg.norm(before - np.array(self._net.compute_face_descriptor(blank)))),
                )
            )
        return matches

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
        x1, y1, x2, y2 = box
        shape = self._landmarks(reference, self._dlib.rectangle(round(x1), round(y1), round(x2), round(y2)))
        return np.array(self._net.compute_face_descriptor(image, shape))
