"""The review page end to end, in Debian's Chromium driven by Playwright:
a person fixes a photo and a clip by keyboard and mouse, applies, and the
files on disk (pixels, plan, report) show exactly what they decided."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from veil import MaskOptions
from veil.media.video import FrameReader

from review_batch import BOUQUET, FALSE_BOX, face_at, run, serving, three_faces_to_fix, track_onto_a_face
from videos import make_clip

CHROMIUM = "/usr/bin/chromium"
# No calls home: Chromium otherwise reaches for Google's hosts at every start.
QUIET = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-gpu",
]
MASK = np.array(MaskOptions().color, dtype=np.int16)
SLOW = 180_000  # ms: an apply renders and verifies on 2 cores
# Screenshots of what the tests show, for a person to look at: VEIL_SHOTS=FOLDER.
SHOTS = Path(os.environ["VEIL_SHOTS"]) if os.environ.get("VEIL_SHOTS") else None

sync_api = pytest.importorskip("playwright.sync_api")
sync_api.expect.set_options(timeout=30_000)  # a slow machine is not a failure: no test depends on timing
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"no {CHROMIUM}: apt-get install chromium (.ci/run does)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def pixels(path: Path) -> npt.NDArray[np.int16]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def inner(box: tuple[float, ...], margin: float = 0.25) -> tuple[slice, slice]:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    return slice(round(y1 + dy), round(y2 - dy)), slice(round(x1 + dx), round(x2 - dx))


def masked(image: npt.NDArray[np.int16], box: tuple[float, ...]) -> bool:
    return bool(np.all(image[inner(box)] == MASK))


def drag(page: Any, size: tuple[int, int], start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag on the picture from `start` to `end`, in the picture's pixels."""
    bounds = page.locator("#overlay").bounding_box()

    def screen(point: tuple[float, float]) -> tuple[float, float]:
        return bounds["x"] + point[0] * bounds["width"] / size[0], bounds["y"] + point[1] * bounds[
            "height"
        ] / size[1]

    page.mouse.move(*screen(start))
    page.mouse.down()
    page.mouse.move(*screen(((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)))
    page.mouse.move(*screen(end))
    page.mouse.up()


def shown(page: Any, selector: str) -> None:
    """Wait for the page to show `selector` (the page runs under its strict
    CSP, so no script is evaluated in it: the test waits on the DOM)."""
    sync_api.expect(page.locator(selector).first).to_be_visible()


def applied(page: Any) -> None:
    page.keyboard.press("a")
    sync_api.expect(page.locator("#status")).to_have_text(re.compile("^applied"), timeout=SLOW)


def test_a_person_fixes_a_photo(page: Any, tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    outdir = three_faces_to_fix(tmp_path, astronaut)
    original = pixels(tmp_path / "in" / "three.png")
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        card = page.locator("#grid li", has_text="three.png")
        assert "FAIL" in card.inner_text()  # the missed face fails verification
        card.click()
        page.wait_for_selector("#regions li")
        assert page.locator("#regions li[data-id]").first.get_attribute("data-id") == "f9"  # least sure first
        assert "FAIL" in page.locator("#findings").inner_text()

        page.locator("#regions li[data-id=f9] .id").click()
        page.keyboard.press("x")  # drop the false region
        shown(page, "#regions li[data-id=f9] .d-drop")
        selected = page.locator("#regions li.selected")
        sync_api.expect(selected).to_have_attribute("data-id", "f1")  # x went on to the next one

        x1, y1, x2, y2 = face_at(2)
        page.keyboard.press("b")
        drag(page, (1536, 512), (x1 - 15, y1 - 30), (x2 + 15, y2 + 15))  # a box over the missed face
        shown(page, "#regions li[data-id=m1]")

        page.locator("#regions li[data-id=f2] .id").click()
        page.keyboard.press("v")
        page.fill("#keep-reason", "the mission commander, speaking in public")
        page.keyboard.press("Enter")
        shown(page, "#regions li[data-id=f2] .d-keep")

        fitted = page.locator("#picture").bounding_box()["width"]
        page.keyboard.press("z")  # zoom onto the selected region
        assert page.locator("#picture").bounding_box()["width"] > 1.5 * fitted
        page.keyboard.press("0")
        assert page.locator("#picture").bounding_box()["width"] == pytest.approx(fitted, abs=1)

        page.keyboard.press("2")  # the preview shows the draft before anything is rendered
        assert "/preview" in page.locator("#picture").get_attribute("src")
        applied(page)
        assert page.locator("#file-state").inner_text().startswith(("PASS", "REVIEW"))
        page.keyboard.press("Shift+A")
        sync_api.expect(page.locator("#status")).to_have_text("approved")

    output = pixels(outdir / "three.png")
    assert masked(output, face_at(0))
    assert masked(output, face_at(2))  # drawn by the person
    assert np.array_equal(output[inner(face_at(1), 0)], original[inner(face_at(1), 0)])  # kept
    x1, y1, x2, _ = (round(v) for v in FALSE_BOX)  # dropped; below row 358 lies her badge, masked as text
    assert np.array_equal(output[y1:358, x1:x2], original[y1:358, x1:x2])
    assert np.array_equal(pixels(tmp_path / "in" / "three.png"), original)  # the original is untouched

    plan = json.loads((outdir / "three.png.plan.json").read_text())
    regions = {r["id"]: r for r in plan["regions"]}
    assert regions["f9"]["decision"] == "drop"
    assert regions["f2"]["decision"] == "keep" and "commander" in regions["f2"]["reason"]
    drawn = [r for r in plan["regions"] if r["kind"] == "manual"]
    assert len(drawn) == 1 and drawn[0]["decision"] == "mask" and drawn[0]["label"] == "face"
    assert not (outdir / "three.png.plan.draft.json").exists()

    file = json.loads((outdir / "veil-render.json").read_text())["files"][0]
    assert file["verification"]["passed"] is True
    looked = file["review"].pop("looked_at")
    assert file["review"] == {"approved": True, "changes": 3, "renders": 1}
    assert {"f9", "f2"} <= set(looked)  # selected or decided: looked at
    assert file["decisions"]["dropped"] == ["f9"] and file["decisions"]["added"] == [drawn[0]["id"]]
    assert file["decisions"]["kept"] == [{"id": "f2", "reason": "the mission commander, speaking in public"}]
    assert not (outdir / ".veil-review").exists()


def test_the_key_that_opens_the_keep_dialog_is_no_reason(
    page: Any, tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    outdir = three_faces_to_fix(tmp_path, astronaut)
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="three.png").click()
        page.locator("#regions li[data-id=f1] .id").click()
        page.keyboard.press("v")
        shown(page, "#keep-dialog")
        sync_api.expect(page.locator("#keep-reason")).to_have_value("")  # the v did not land in it
        page.keyboard.press("Enter")
        sync_api.expect(page.locator("#keep-error")).to_contain_text("Write the reason out")
        page.keyboard.type("k")  # one stray key is no reason either
        page.keyboard.press("Enter")
        sync_api.expect(page.locator("#keep-dialog")).to_be_visible()
        page.keyboard.press("Escape")
        sync_api.expect(page.locator("#keep-dialog")).to_be_hidden()
        sync_api.expect(page.locator("#regions li[data-id=f1] .d-mask")).to_be_visible()
    assert not (outdir / "three.png.plan.draft.json").exists()  # nothing was kept


def test_an_apply_that_fails_verification_leaves_the_output(
    page: Any, tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "in" / "one.png")
    outdir = tmp_path / "out"
    assert run("anonymize", tmp_path / "in", "-o", outdir, "-q") == 0  # verified: it passes
    on_disk = [outdir / name for name in ("one.png", "one.png.plan.json")]
    before = [path.read_bytes() for path in on_disk]
    report_before = json.loads((outdir / "veil-report.json").read_text())
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="one.png").click()
        page.locator("#regions li[data-id=f1] .id").click()
        page.keyboard.press("x")  # drop the mask on the astronaut's face
        shown(page, "#regions li[data-id=f1] .d-drop")
        page.keyboard.press("a")
        sync_api.expect(page.locator("#status")).to_have_text(re.compile("^not applied"), timeout=SLOW)
        sync_api.expect(page.locator("#findings")).to_contain_text("REFUSED")
        sync_api.expect(page.locator("#picture")).to_have_attribute("src", re.compile("/preview[?]"))
        assert page.locator("#overlay .finding.rejected").count() >= 1
        sync_api.expect(page.locator("#approve")).to_be_disabled()
        if SHOTS:
            page.screenshot(path=str(SHOTS / "review-refused.png"))
    assert [path.read_bytes() for path in on_disk] == before  # byte for byte
    report = json.loads((outdir / "veil-report.json").read_text())
    # the only change: what the person looked at (f1, and the region x moved on to)
    assert report["files"][0]["review"]["looked_at"][0] == "f1"
    report["files"][0]["review"] = report_before["files"][0]["review"]
    assert report == report_before  # the verification and everything else as it was
    assert (outdir / "one.png.plan.draft.json").exists()  # the person's work is kept
    assert not (outdir / ".veil-review").exists()


def test_a_track_is_split_where_it_moves_onto_a_face(
    page: Any, tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    outdir, faces = track_onto_a_face(tmp_path, astronaut)
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="walk.mp4").click()
        page.wait_for_selector("#timeline .row")
        page.locator("#regions li[data-id=f1] .id").click()
        page.keyboard.press("x")  # right at frame 0, where f1 is on the background
        shown(page, "#regions li[data-id=f1] .d-drop")
        page.keyboard.press("a")
        shown(page, "#uncovered-dialog")  # but it is the only mask on the face from frame 6
        sync_api.expect(page.locator("#uncovered-list")).to_contain_text("f1 in frames 6-11")
        if SHOTS:
            page.screenshot(path=str(SHOTS / "review-uncovered.png"))
        page.locator("#uncovered-cancel").click()
        page.keyboard.press("Control+z")
        shown(page, "#regions li[data-id=f1] .d-mask")
        for _ in range(6):
            page.keyboard.press("ArrowRight")
        sync_api.expect(page.locator("#frame-number")).to_have_value("6")
        page.locator("#regions li[data-id=f1] .id").click()
        page.keyboard.press("c")  # split: from frame 6 on, a region of its own
        shown(page, "#regions li[data-id=f3]")
        page.locator("#regions li[data-id=f1] .id").click()
        page.keyboard.press("x")
        shown(page, "#regions li[data-id=f1] .d-drop")
        applied(page)  # no warning: the drop uncovers no face now
        assert page.locator("#file-state").inner_text().startswith(("PASS", "REVIEW"))

    plan = json.loads((outdir / "walk.mp4.plan.json").read_text())
    regions = {r["id"]: r for r in plan["regions"]}
    assert regions["f1"]["decision"] == "drop" and [t[0] for t in regions["f1"]["track"]] == list(range(6))
    assert regions["f3"]["decision"] == "mask" and [t[0] for t in regions["f3"]["track"]] == list(
        range(6, 12)
    )
    with FrameReader(outdir / "walk.mp4") as output, FrameReader(tmp_path / "in" / "walk.mp4") as original:
        for frame in (2, 8):
            shown_frame = output.frame(frame).astype(np.int16)
            assert np.abs(shown_frame[inner(faces[frame])] - MASK).max() <= 16  # the face: masked
        bouquet = inner(BOUQUET, 0.1)
        assert np.abs(output.frame(2).astype(np.int16)[bouquet] - original.frame(2)[bouquet]).max() <= 16


def test_a_box_moved_off_the_face_in_a_clip_is_not_applied(
    page: Any, tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "walk.mp4", astronaut, frames=12)
    outdir = tmp_path / "out"
    assert run("anonymize", tmp_path / "in", "-o", outdir, "-q") in (0, 1)
    before = json.loads((outdir / "walk.mp4.plan.json").read_text())
    output_before = (outdir / "walk.mp4").read_bytes()
    in_frame_5 = [
        r for r in before["regions"] if r["decision"] == "mask" and any(t[0] == 5 for t in r["track"])
    ]
    track_region = max(in_frame_5, key=lambda r: len(r["track"]))  # the face's track
    old = {row[0]: row[1:5] for row in track_region["track"]}
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="walk.mp4").click()
        page.wait_for_selector("#timeline .row")
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        sync_api.expect(page.locator("#frame-number")).to_have_value("5")
        sync_api.expect(page.locator("#picture")).to_have_attribute("src", re.compile("/original/5[?]"))
        page.locator(f"#regions li[data-id={track_region['id']}] .id").click()
        x1, y1, x2, y2 = old[5]
        centre = ((x1 + x2) / 2, (y1 + y2) / 2)
        drag(page, (480, 320), centre, (centre[0] + 40, centre[1]))  # off the face
        shown(page, "#timeline .tick")  # frame 5 is a set frame of the track now
        page.keyboard.press("a")
        sync_api.expect(page.locator("#status")).to_have_text(re.compile("^not applied"), timeout=SLOW)

    assert (outdir / "walk.mp4").read_bytes() == output_before  # the face stays hidden on disk
    assert json.loads((outdir / "walk.mp4.plan.json").read_text()) == before
    draft = json.loads((outdir / "walk.mp4.plan.draft.json").read_text())
    region = next(r for r in draft["regions"] if r["id"] == track_region["id"])
    assert region["set_frames"] == [5]
    boxes = {row[0]: row[1:5] for row in region["track"]}
    assert boxes[5][0] == pytest.approx(old[5][0] + 40, abs=1.5)
    assert boxes[5][2] == pytest.approx(old[5][2] + 40, abs=1.5)
    assert 0 < boxes[4][0] - old[4][0] < 40  # the correction fades out towards the neighbours


def test_a_sign_left_readable_is_listed_and_masked_with_one_key(
    page: Any, tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    from PIL import ImageDraw, ImageFont

    image = Image.fromarray(np.hstack([astronaut, astronaut]))  # people: two sure faces
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 320, 220, 490), fill=(250, 250, 240))
    font = ImageFont.load_default(size=44)
    for i, word in enumerate(("FREE", "THE", "PRESS")):
        draw.text((25, 330 + 52 * i), word, font=font, fill=(200, 20, 20))
    (tmp_path / "in").mkdir()
    image.save(tmp_path / "in" / "sign.png")
    outdir = tmp_path / "out"
    assert run("anonymize", tmp_path / "in", "-o", outdir, "-q") == 0
    plan = json.loads((outdir / "sign.png.plan.json").read_text())
    signs = [r for r in plan["regions"] if r["kind"] == "text" and r["label"] == "sign"]
    assert len(signs) == 3 and all(r["decision"] == "drop" for r in signs)
    first = signs[0]["id"]
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="sign.png").click()
        shown(page, "#regions li.group[data-group='sign']")  # a group of its own: signs left readable
        row = page.locator(f"#regions li[data-id={first}]")
        sync_api.expect(row).to_contain_text("sign")
        sync_api.expect(row).to_contain_text("a sign: lines of large letters, left readable")
        row.locator(".id").click()
        page.keyboard.press("m")  # mask the sign after all
        shown(page, f"#regions li[data-id={first}] .d-mask")
        if SHOTS:
            page.screenshot(path=str(SHOTS / "review-sign.png"))
        applied(page)
    x1, y1, x2, y2 = (round(v) for v in signs[0]["box"])
    output = pixels(outdir / "sign.png")
    assert np.all(output[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2] == MASK)  # the sign's first line, masked
    assert json.loads((outdir / "sign.png.plan.json").read_text())["regions"] != plan["regions"]
