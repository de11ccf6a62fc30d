"""The CLI end to end: what a user runs, what lands on disk, what it says."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
from PIL import Image

from veil import MaskOptions
from veil.batch.journal import JOURNAL_NAME
from veil.cli import main

from conftest import ASTRONAUT_FACE, XMP, identifying_exif, png_header_only, sha256, stored_sideways

MASK = np.array(MaskOptions().color, dtype=np.int16)


def face_is_masked(path: Path, face: tuple[int, int, int, int] = ASTRONAUT_FACE) -> bool:
    """Most of the face box holds the solid mask colour (JPEG noise allowed)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    x1, y1, x2, y2 = face
    region = pixels[y1:y2, x1:x2]
    close = np.abs(region - MASK).max(axis=2) <= 8
    return bool(close.mean() > 0.9)


def run(*args: str | Path) -> int:
    return main([str(a) for a in args])


def test_anonymize_masks_the_face_and_strips_every_tag(tagged_jpeg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("anonymize", tagged_jpeg, "-o", out, "-q") == 0
    result = out / "protest.jpg"
    assert face_is_masked(result)
    data = result.read_bytes()
    for marker in (b"Exif", XMP[:20], b"Jane", b"Photoshop", b"PhoneCo", b"SN-123", b"ICC_PROFILE"):
        assert marker not in data, marker
    with Image.open(result) as image:
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0
        assert not {"exif", "xmp", "photoshop", "comment", "icc_profile"} & set(image.info)


def test_report_lists_faces_removed_tags_model_and_options(tagged_jpeg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run("anonymize", tagged_jpeg, "-o", out, "-q")
    report = json.loads((out / "veil-report.json").read_text())
    assert report["model"]["name"] == "centerface"
    assert len(report["model"]["sha256"]) == 64
    assert report["options"]["mask"]["method"] == "solid"
    (file,) = report["files"]
    assert file["status"] == "anonymized"
    assert file["output"] == str(out / "protest.jpg")
    assert len(file["faces"]) == 1
    x1, _y1, _x2, y2 = file["faces"][0]["box"]
    assert abs(x1 - ASTRONAUT_FACE[0]) < 15 and abs(y2 - ASTRONAUT_FACE[3]) < 15
    removed = set(file["metadata_removed"])
    assert {"GPS:GPSLatitude", "EXIF:Make", "Exif:BodySerialNumber", "EXIF thumbnail", "XMP"} <= removed
    assert "Photoshop/IPTC (APP13)" in removed and "comment" in removed
    assert report["summary"] == {
        "anonymized": 1, "failed": 0, "skipped": 0, "faces": 1, "verification_failed": 0
    }  # fmt: skip


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_sideways_photo_is_written_upright_with_the_same_face_masked(
    orientation: int, astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    source = tmp_path / "in" / "phone.jpg"
    source.parent.mkdir()
    Image.fromarray(stored_sideways(astronaut, orientation)).save(
        source, "JPEG", quality=92, exif=identifying_exif(orientation=orientation)
    )
    out = tmp_path / "out"
    assert run("anonymize", source, "-o", out, "-q") == 0
    with Image.open(out / "phone.jpg") as image:
        assert image.size == (astronaut.shape[1], astronaut.shape[0])
        assert image.getexif().get(0x0112) is None
    assert face_is_masked(out / "phone.jpg")
    report = json.loads((out / "veil-report.json").read_text())
    assert report["files"][0]["orientation_applied"] == orientation


def test_inputs_are_byte_identical_afterwards(
    tagged_jpeg: Path, make_photo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # without -o the report goes to the working folder
    png = make_photo("b.png")
    before = {p: sha256(p) for p in (tagged_jpeg, png)}
    run("anonymize", tagged_jpeg.parent, "-q")
    assert {p: sha256(p) for p in before} == before
    assert (tmp_path / "veil-report.json").is_file()


def test_without_output_dir_writes_beside_the_input(
    tagged_jpeg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("anonymize", tagged_jpeg, "-q") == 0
    assert face_is_masked(tagged_jpeg.with_name("protest.veil.jpg"))
    assert (tmp_path / "veil-report.json").is_file()


def test_folders_are_walked_keeping_relative_paths(make_photo: Callable[..., Path], tmp_path: Path) -> None:
    make_photo("a.jpg")
    make_photo("day2/b.png")
    make_photo("day2/deeper/c.webp")
    (tmp_path / "in" / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    assert run("anonymize", tmp_path / "in", "-o", out, "-q") == 0
    for name in ("a.jpg", "day2/b.png", "day2/deeper/c.webp"):
        assert face_is_masked(out / name), name
    assert not (out / "notes.txt").exists()
    statuses = [f["status"] for f in json.loads((out / "veil-report.json").read_text())["files"]]
    assert sorted(statuses) == ["anonymized"] * 3 + ["skipped"]


def test_existing_output_is_never_overwritten(tagged_jpeg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "protest.jpg").write_bytes(b"precious")
    assert run("anonymize", tagged_jpeg, "-o", out, "-q") == 1
    assert (out / "protest.jpg").read_bytes() == b"precious"


def test_output_dir_equal_to_input_dir_never_touches_inputs(tagged_jpeg: Path) -> None:
    before = sha256(tagged_jpeg)
    assert run("anonymize", tagged_jpeg.parent, "-o", tagged_jpeg.parent, "-q") == 1
    assert sha256(tagged_jpeg) == before


BAD_INPUTS: dict[str, tuple[str, bytes | None, str]] = {
    "empty": ("empty.jpg", b"", "empty file"),
    "text named jpg": ("notes.jpg", b"just some text, not a picture\n" * 20, "not a photo"),
    "truncated jpeg": ("cut.jpg", None, "truncated"),
    "decompression bomb": ("bomb.png", png_header_only(50_000, 50_000), "too large"),
    "unsupported format": ("old.bmp", None, "not a photo"),
    "missing": ("missing.jpg", None, "no such file"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_fails_with_one_clear_line_and_no_output(
    case: str, tagged_jpeg: Path, astronaut: npt.NDArray[np.uint8], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    name, data, expected = BAD_INPUTS[case]
    source = tmp_path / "bad" / name
    source.parent.mkdir()
    if case == "truncated jpeg":
        full = tagged_jpeg.read_bytes()
        source.write_bytes(full[: len(full) // 2])
    elif case == "unsupported format":
        Image.fromarray(astronaut).save(source, "BMP")
    elif data is not None:
        source.write_bytes(data)
    out = tmp_path / "out"
    assert run("anonymize", source, tagged_jpeg, "-o", out) == 1
    assert not (out / name).exists()
    assert face_is_masked(out / "protest.jpg"), "the rest of the batch goes on"
    assert [p.name for p in out.iterdir() if ".part" in p.name] == []  # no temporary file left
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0].lower(), err
    assert "Traceback" not in err
    assert "FAILED" in err and "1 failed" in err


def test_damaged_jpeg_scan_is_refused(tagged_jpeg: Path, tmp_path: Path) -> None:
    """Bytes cut from the middle of the scan: libjpeg would patch it, veil refuses."""
    data = tagged_jpeg.read_bytes()
    middle = len(data) // 2
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(data[:middle] + data[middle + 4000 :])
    out = tmp_path / "out"
    assert run("anonymize", damaged, "-o", out, "-q") == 1
    assert not (out / "damaged.jpg").exists()


def test_quiet_success_prints_nothing(
    tagged_jpeg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("anonymize", tagged_jpeg, "-o", tmp_path / "out", "-q") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_summary_line_counts_files_and_faces(
    tagged_jpeg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("anonymize", tagged_jpeg, "-o", tmp_path / "out") == 0
    assert "veil: 1 anonymized, 0 failed; 1 faces masked, 1 lines of text masked" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_reversible_methods_warn(
    method: str, tagged_jpeg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("anonymize", tagged_jpeg, "-o", tmp_path / "out", "-q", "--method", method) == 0
    assert "reversible" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "veil-report.json").read_text())
    assert any("reversible" in w for w in report["warnings"])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["anonymize"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["anonymize", "x.jpg", "--head-scale", "0.5"])
    assert exit_info.value.code == 2


def test_installed_entry_point_runs_without_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "veil", "anonymize", str(empty), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "empty file" in result.stderr


def test_output_dir_inside_the_input_folder_is_not_walked(
    make_photo: Callable[..., Path], tmp_path: Path
) -> None:
    make_photo("a.jpg")
    inside = tmp_path / "in" / "safe"
    assert run("anonymize", tmp_path / "in", "-o", inside, "-q") == 0
    made = (inside / "a.jpg").stat().st_mtime_ns
    assert run("anonymize", tmp_path / "in", "-o", inside, "-q") == 0  # a.jpg is done: not redone
    assert (inside / "a.jpg").stat().st_mtime_ns == made
    assert not (inside / "safe").exists()


def test_a_broken_video_in_a_folder_fails_and_the_photos_go_on(
    make_photo: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_photo("a.jpg")
    (tmp_path / "in" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    assert run("anonymize", tmp_path / "in", "-o", tmp_path / "out") == 1
    assert "clip.mp4: not a readable video" in capsys.readouterr().err
    assert face_is_masked(tmp_path / "out" / "a.jpg")
    assert not (tmp_path / "out" / "clip.mp4").exists()


def test_report_is_replaced_by_the_next_run(tagged_jpeg: Path, tmp_path: Path) -> None:
    report = tmp_path / "runs" / "report.json"
    assert run("anonymize", tagged_jpeg, "-o", tmp_path / "one", "--report", report, "-q") == 0
    assert run("anonymize", tagged_jpeg, "-o", tmp_path / "two", "--report", report, "-q") == 0
    assert json.loads(report.read_text())["files"][0]["output"] == str(tmp_path / "two" / "protest.jpg")
    assert sorted(p.name for p in report.parent.iterdir() if p.name != JOURNAL_NAME) == ["report.json"]


def small_cat() -> npt.NDArray[np.uint8]:
    """The cat at half size: the search proposes its head. (At full size the
    focused finest pass does not look there at all.)"""
    cat = np.ascontiguousarray(skimage.data.chelsea())
    return np.ascontiguousarray(cv2.resize(cat, None, fx=0.5, fy=0.5))


def test_a_photo_with_no_person_comes_out_untouched(tmp_path: Path) -> None:
    """Scikit-image's cat at half its size: CenterFace proposes its head, no
    second look sees a face, so no mask is drawn; the report lists the
    candidate and why."""
    cat = small_cat()
    source = tmp_path / "in" / "cat.png"
    source.parent.mkdir()
    Image.fromarray(cat).save(source)
    out = tmp_path / "out"
    assert run("anonymize", source, "-o", out, "-q") == 0
    with Image.open(out / "cat.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), cat)
    (file,) = json.loads((out / "veil-report.json").read_text())["files"]
    assert file["faces"] == []
    assert file["not_masked"] and {c["reason"] for c in file["not_masked"]} == {
        "unconfirmed, in a picture with no person"
    }
    assert file["verification"]["passed"] is True


def test_precision_all_masks_every_candidate_and_high_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in" / "cat.png"
    source.parent.mkdir()
    Image.fromarray(small_cat()).save(source)
    assert run("anonymize", source, "-o", tmp_path / "all", "-q", "--precision", "all", "--no-verify") == 0
    (file,) = json.loads((tmp_path / "all" / "veil-report.json").read_text())["files"]
    assert len(file["faces"]) >= 1 and file["faces"][0]["reason"] == "every candidate"
    assert run("anonymize", source, "-o", tmp_path / "high", "-q", "--precision", "high", "--no-verify") == 0
    assert "--precision high" in capsys.readouterr().err


def test_a_path_after_ray_is_not_taken_for_its_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(SystemExit) as exited:
        main(["anonymize", "--ray", str(tmp_path / "photos"), "-o", str(tmp_path / "out")])
    assert exited.value.code == 2
    said = capsys.readouterr().err
    assert "photos is a file or folder here, not a Ray address: give the paths first" in said
    assert not (tmp_path / "out").exists()


def test_a_file_a_library_logs_about_is_refused_in_one_line(tmp_path: Path) -> None:
    """Pillow logs an error on a TIFF that claims 128 samples a pixel, then
    raises: the person sees veil's line, not the library's."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    samples = data.index(struct.pack("<HHI", 277, 3, 1)) + 8  # SamplesPerPixel, one SHORT: its value
    data[samples : samples + 2] = struct.pack("<H", 128)
    source = tmp_path / "claims.tif"
    source.write_bytes(data)
    command = [sys.executable, "-m", "veil", "anonymize", str(source), "-o", str(tmp_path / "out"), "-q"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}: "), lines
