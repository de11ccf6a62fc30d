"""Mask plans end to end through the CLI: anonymize writes one per output,
a person edits it, `veil render` renders and verifies the edit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from veil import MaskOptions
from veil.cli import main

from conftest import ASTRONAUT_FACE
from test_cli import face_is_masked
from videos import audio_seconds, make_clip, read_clip

MASK = np.array(MaskOptions().color, dtype=np.int16)
RIGHT_FACE = (ASTRONAUT_FACE[0] + 512, ASTRONAUT_FACE[1], ASTRONAUT_FACE[2] + 512, ASTRONAUT_FACE[3])


@pytest.fixture(autouse=True)
def _reports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # render's default report, ./veil-render.json


def run(*args: str | Path) -> int:
    return main([str(a) for a in args])


def pixels(path: Path) -> npt.NDArray[np.int16]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture
def two_faces(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> Path:
    """The astronaut twice, side by side, as a PNG (lossless: pixels compare exactly)."""
    path = tmp_path / "in" / "two.png"
    path.parent.mkdir()
    Image.fromarray(np.hstack([astronaut, astronaut])).save(path)
    return path


@pytest.fixture
def anonymized(two_faces: Path, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The photo anonymized into tmp_path/out: its output, its plan file, and the plan."""
    out = tmp_path / "out"
    assert run("anonymize", two_faces, "-o", out, "-q") == 0
    plan_file = out / "two.png.plan.json"
    return out / "two.png", plan_file, json.loads(plan_file.read_text())


def region_on(plan: dict[str, Any], face: tuple[int, int, int, int]) -> dict[str, Any]:
    """The masked region whose box lies on `face`."""
    x, y = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    (region,) = [
        r
        for r in plan["regions"]
        if r["decision"] == "mask" and r["box"][0] < x < r["box"][2] and r["box"][1] < y < r["box"][3]
    ]
    return region


def edited(plan: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(plan))
    return path


def test_anonymize_writes_a_plan_that_renders_the_same_output(
    anonymized: tuple[Path, Path, dict[str, Any]], two_faces: Path, tmp_path: Path
) -> None:
    output, plan_file, plan = anonymized
    assert plan["schema"] == "veil-plan/1"
    assert plan["source"]["name"] == "two.png" and (plan["source"]["width"], plan["source"]["height"]) == (
        1024,
        512,
    )
    for face in (ASTRONAUT_FACE, RIGHT_FACE):
        region = region_on(plan, face)
        assert region["kind"] == "face" and region["found"]["score"] > 0.5
        assert region["found"]["found_by"][0].startswith("centerface x")  # the pass that scored it best
    report = json.loads((tmp_path / "out" / "veil-report.json").read_text())
    assert report["files"][0]["plan"] == str(plan_file)
    again = tmp_path / "again.png"
    assert run("render", two_faces, plan_file, "-o", again, "-q") == 0
    assert again.read_bytes() == output.read_bytes()


def test_a_dropped_region_shows_the_original_and_fails_verification_on_a_face(
    anonymized: tuple[Path, Path, dict[str, Any]], two_faces: Path, tmp_path: Path
) -> None:
    _, _, plan = anonymized
    dropped = region_on(plan, RIGHT_FACE)
    dropped["decision"] = "drop"
    result = tmp_path / "dropped.png"
    report_file = tmp_path / "render.json"
    code = run(
        "render", two_faces, edited(plan, tmp_path / "p.json"), "-o", result, "--report", report_file, "-q"
    )
    assert code == 1  # a face where a mask was dropped
    x1, y1, x2, y2 = RIGHT_FACE
    assert np.array_equal(pixels(result)[y1:y2, x1:x2], pixels(two_faces)[y1:y2, x1:x2])
    assert face_is_masked(result, ASTRONAUT_FACE)
    (file,) = json.loads(report_file.read_text())["files"]
    assert file["decisions"]["dropped"] == [dropped["id"]]
    assert any("was dropped" in f["message"] for f in file["verification"]["failures"])


def test_a_kept_face_is_visible_listed_with_its_reason_and_passes(
    anonymized: tuple[Path, Path, dict[str, Any]], two_faces: Path, tmp_path: Path
) -> None:
    _, _, plan = anonymized
    kept = region_on(plan, RIGHT_FACE)
    kept |= {"decision": "keep", "reason": "the spokesperson, who asked to be shown"}
    result = tmp_path / "kept.png"
    report_file = tmp_path / "render.json"
    assert (
        run("render", two_faces, edited(plan, tmp_path / "p.json"), "-o", result, "--report", report_file)
        == 0
    )
    x1, y1, x2, y2 = RIGHT_FACE
    assert np.array_equal(pixels(result)[y1:y2, x1:x2], pixels(two_faces)[y1:y2, x1:x2])
    assert face_is_masked(result, ASTRONAUT_FACE)
    (file,) = json.loads(report_file.read_text())["files"]
    assert file["verification"]["passed"]
    assert file["decisions"]["kept"] == [
        {"id": kept["id"], "reason": "the spokesperson, who asked to be shown"}
    ]
    assert any("asked to be shown" in f["message"] for f in file["verification"]["kept"])
    # The plan lands beside the output, so that veil verify honours it later too.
    assert file["plan"] == str(tmp_path / "kept.png.plan.json")
    assert run("verify", two_faces, result, "--report", tmp_path / "verify.json", "-q") == 0
    (tmp_path / "kept.png.plan.json").unlink()
    assert run("verify", two_faces, result, "--report", tmp_path / "verify.json", "-q") == 1


def test_a_box_drawn_by_hand_is_masked(
    anonymized: tuple[Path, Path, dict[str, Any]], two_faces: Path, tmp_path: Path
) -> None:
    _, _, plan = anonymized
    plan["regions"].append(
        {
            "id": "m1",
            "kind": "manual",
            "decision": "mask",
            "shape": "box",
            "label": "badge",
            "box": [20, 300, 120, 400],
        }
    )
    result = tmp_path / "badge.png"
    report_file = tmp_path / "render.json"
    assert (
        run("render", two_faces, edited(plan, tmp_path / "p.json"), "-o", result, "--report", report_file)
        == 0
    )
    assert np.all(pixels(result)[300:400, 20:120] == MASK)
    assert not np.all(pixels(result)[300:400, 120:140] == MASK)  # exactly the box
    assert face_is_masked(result, ASTRONAUT_FACE) and face_is_masked(result, RIGHT_FACE)
    (file,) = json.loads(report_file.read_text())["files"]
    assert file["decisions"]["added"] == ["m1"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(schema="veil-plan/7"), "unknown schema"),
        (lambda p: p["regions"][0].update(decision="keep"), "without a reason"),
        (lambda p: p["regions"][0].update(box=[10, 10, 5, 20]), "x2 > x1"),
        (lambda p: p["source"].update(sha256="0" * 64), "made for two.png"),
        (lambda p: p.pop("source"), "source should be an object"),
    ],
)
def test_bad_plans_are_refused_with_one_line_and_no_output(
    anonymized: tuple[Path, Path, dict[str, Any]],
    two_faces: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Any,
    message: str,
) -> None:
    _, _, plan = anonymized
    edit(plan)
    result = tmp_path / "refused.png"
    assert run("render", two_faces, edited(plan, tmp_path / "p.json"), "-o", result, "-q") == 1
    assert not result.exists()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]


def test_a_malformed_plan_or_another_files_plan_is_refused(
    anonymized: tuple[Path, Path, dict[str, Any]],
    two_faces: Path,
    tmp_path: Path,
    astronaut: npt.NDArray[np.uint8],
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "veil-plan/1", "regions": [')
    assert run("render", two_faces, broken, "-o", tmp_path / "a.png", "-q") == 1
    other = tmp_path / "other.png"
    Image.fromarray(np.hstack([astronaut, astronaut[::-1]])).save(other)
    assert run("render", other, anonymized[1], "-o", tmp_path / "b.png", "-q") == 1
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_video_plan_drop_a_track_and_draw_a_region_between_key_frames(
    tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    (tmp_path / "in").mkdir()
    clip = make_clip(tmp_path / "in" / "walk.mp4", astronaut, frames=12)
    out = tmp_path / "out"
    assert run("anonymize", clip.path, "-o", out, "-q") == 0
    plan_file = out / "walk.mp4.plan.json"
    plan = json.loads(plan_file.read_text())
    assert plan["source"]["frames"] == 12 and plan["source"]["time_base"] == "1/90000"
    track = max(plan["regions"], key=lambda r: r["found"]["score"])  # the astronaut's face
    assert [row[0] for row in track["track"]] == list(range(12))  # a box in every frame
    assert any(by.startswith("centerface x") for by in track["found"]["found_by"])

    unedited = tmp_path / "same.mp4"
    assert run("render", clip.path, plan_file, "-o", unedited, "-q") == 0
    same, _, c1 = read_clip(unedited)
    made, _, c2 = read_clip(out / "walk.mp4")
    c1.close(), c2.close()
    assert all(np.array_equal(a, b) for a, b in zip(same, made, strict=True))

    track["decision"] = "drop"
    plan["regions"].append(
        {"id": "m1", "kind": "manual", "decision": "mask", "shape": "box", "label": "plate",
         "keyframes": [[2, 60, 200, 100, 240], [10, 140, 200, 180, 240]]}
    )  # fmt: skip
    result = tmp_path / "edited.mp4"
    edited(plan, tmp_path / "p.json")
    assert run("render", clip.path, tmp_path / "p.json", "-o", result, "-q", "--no-verify") == 0
    frames, times, container = read_clip(result)
    container.close()
    originals, original_times, container = read_clip(clip.path)
    container.close()
    assert len(frames) == 12 and times == original_times
    assert abs(audio_seconds(result) - clip.audio_seconds) < 0.05
    x1, y1, x2, y2 = clip.faces[5]
    face = slice(y1 + 5, y2 - 5), slice(x1 + 5, x2 - 5)
    assert np.abs(frames[5][face].astype(int) - originals[5][face]).mean() < 6  # the track is gone

    def masked(frame: npt.NDArray[np.uint8], x: int) -> float:
        """The share of the box x..x+40, 200..240 (inset) in the mask colour."""
        inside = frame[203:237, x + 3 : x + 37].astype(np.int16)
        return float((np.abs(inside - MASK).max(axis=2) <= 8).mean())

    # Frame 6 is half way from key frame 2 to key frame 10: the box is at x 100..140.
    assert masked(originals[6], 100) < 0.5  # the astronaut's suit is there
    assert masked(frames[6], 100) > 0.95  # H.264 blurs the edges a little
    assert masked(frames[6], 60) < 0.5 and masked(frames[6], 140) < 0.5  # not where the key frames were
    assert masked(frames[2], 60) > 0.95 and masked(frames[10], 140) > 0.95
    for frame in (0, 1, 11):  # before the first key frame and after the last
        assert masked(frames[frame], 60 + 10 * (frame - 2)) < 0.5
    # Verification attacks the edit: the dropped track is a face left visible.
    assert run("render", clip.path, tmp_path / "p.json", "-o", tmp_path / "checked.mp4", "-q") == 1


def test_render_lands_through_the_same_envelope_as_anonymize(
    anonymized: tuple[Path, Path, dict[str, Any]], two_faces: Path, tmp_path: Path
) -> None:
    """An existing output is never overwritten, and a plan rendered where it
    already lies beside its output is kept as it is, not written again."""
    output, plan_file, plan = anonymized
    before = output.read_bytes()
    assert run("render", two_faces, plan_file, "-o", output, "-q") == 1
    assert output.read_bytes() == before
    again = tmp_path / "again.png"
    beside = edited(plan, tmp_path / "again.png.plan.json")
    written = beside.read_bytes()
    assert run("render", two_faces, beside, "-o", again, "-q") == 0
    assert again.read_bytes() == before
    assert beside.read_bytes() == written
