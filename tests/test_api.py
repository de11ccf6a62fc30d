"""The public Python API: exports, and array- and file-level calls returning reports."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

import veil


def test_all_is_complete_and_sorted() -> None:
    public = {
        name
        for name in dir(veil)
        if not name.startswith("_") and not isinstance(getattr(veil, name), ModuleType)
    }
    assert public <= set(veil.__all__)
    assert veil.__all__ == sorted(veil.__all__)
    for name in veil.__all__:
        assert hasattr(veil, name), name


def test_anonymize_image_returns_a_new_array_and_faces(astronaut: npt.NDArray[np.uint8]) -> None:
    before = astronaut.copy()
    result = veil.anonymize_image(astronaut)
    assert np.array_equal(astronaut, before)
    assert len(result.faces) == 1
    assert not np.array_equal(result.image, astronaut)


def test_anonymize_paths_report_round_trips_through_json(tagged_jpeg: Path, tmp_path: Path) -> None:
    seen: list[veil.FileReport] = []
    report = veil.anonymize_paths(
        [tagged_jpeg, tmp_path / "missing.jpg"], tmp_path / "out", progress=seen.append
    )
    assert [f.status for f in report.files] == [veil.FileStatus.ANONYMIZED, veil.FileStatus.FAILED]
    assert seen == report.files
    assert not report.ok
    again = veil.RunReport.from_json(report.to_json())
    assert again.files == report.files
    assert again.model == report.model


def test_anonymize_file_reports_failure_instead_of_raising(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    report = veil.anonymize_file(bad, tmp_path / "out.jpg")
    assert report.status is veil.FileStatus.FAILED
    assert report.error_type == "UnsupportedFormatError"
    assert not (tmp_path / "out.jpg").exists()
