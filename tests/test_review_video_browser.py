"""A clip reviewed in Debian's Chromium driven by Playwright: a face veil
missed in every frame is masked with one click on one finding, the clip's
tracks are shown as people, the preview plays through every frame, and the
first frame is laid out inside the stage. What counts is on disk."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from test_review_browser import MASK, applied, browser, page, shown, sync_api  # noqa: F401 (fixtures)
from veil.media.video import FrameReader
from veil.plan.model import box_iou

from review_batch import run, serving
from videos import Clip, make_clip

FRAMES = 16


def missed_face_clip(root: Path, astronaut: npt.NDArray[np.uint8]) -> tuple[Path, Clip]:
    """A rendered clip whose plan lost the astronaut's face in every frame
    (as if veil had missed it): verification fails with a finding per frame."""
    (root / "in").mkdir()
    clip = make_clip(root / "in" / "walk.mp4", astronaut, frames=FRAMES, audio=False)
    assert run("anonymize", root / "in", "-o", root / "first", "-q", "--no-verify") == 0
    plan_file = root / "first" / "walk.mp4.plan.json"
    plan: dict[str, Any] = json.loads(plan_file.read_text())

    def on_the_face(region: dict[str, Any]) -> bool:
        return any(
            box_iou(tuple(row[1:5]), tuple(map(float, clip.faces[row[0]]))) > 0.2 for row in region["track"]
        )

    plan["regions"] = [r for r in plan["regions"] if not on_the_face(r)]
    plan_file.write_text(json.dumps(plan))
    run("render", root / "in", root / "first", "-o", root / "out", "-q")
    return root / "out", clip


def masked_in(frame: npt.NDArray[np.int16], face: tuple[int, ...]) -> bool:
    x1, y1, x2, y2 = face
    dx, dy = (x2 - x1) // 4, (y2 - y1) // 4
    inner = frame[y1 + dy : y2 - dy, x1 + dx : x2 - dx]
    return bool(np.abs(inner - MASK).max() <= 16)  # lossy video


def test_one_click_masks_a_face_missed_in_every_frame(
    page: Any,  # noqa: F811
    tmp_path: Path,
    astronaut: npt.NDArray[np.uint8],
) -> None:
    outdir, clip = missed_face_clip(tmp_path, astronaut)
    report = json.loads((outdir / "veil-render.json").read_text())["files"][0]
    failing_frames = {f["frame"] for f in report["verification"]["failures"]}
    assert len(failing_frames) > FRAMES // 2  # the missed face fails verification across the clip
    with FrameReader(outdir / "walk.mp4") as reader:
        assert not any(masked_in(reader.frame(f).astype(np.int16), clip.faces[f]) for f in range(FRAMES))
    pictures: list[str] = []
    page.on("response", lambda r: pictures.append(r.url) if r.ok and "/preview/" in r.url else None)

    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="walk.mp4").click()
        page.wait_for_selector("#timeline .row")
        page.locator("#findings li.fail button", has_text="mask it").first.click()  # the one action
        sync_api.expect(page.locator("#status")).to_have_text(
            f"masked frames 0-{FRAMES - 1} (the whole clip)"
        )
        selected = page.locator("#timeline .row.selected")
        sync_api.expect(selected).to_have_count(1)
        drawn = selected.get_attribute("data-id")
        assert drawn is not None and drawn.startswith("m")
        assert page.locator("#findings li.fail button", has_text="mask it").count() == 0  # all under it now

        page.keyboard.press("Home")
        sync_api.expect(page.locator("#frame-number")).to_have_value("0")
        page.keyboard.press("Space")  # watch the preview through before applying
        sync_api.expect(page.locator("#status")).to_have_text(re.compile("^played to the end"))
        sync_api.expect(page.locator("#frame-number")).to_have_value(str(FRAMES - 1))
        played = {int(m.group(1)) for m in (re.search(r"/preview/(\d+)", u) for u in pictures) if m}
        assert played >= set(range(FRAMES))  # every frame was shown, none skipped
        applied(page)

    with FrameReader(outdir / "walk.mp4") as reader:
        covered = [masked_in(reader.frame(f).astype(np.int16), clip.faces[f]) for f in range(FRAMES)]
    assert all(covered), covered
    plan = json.loads((outdir / "walk.mp4.plan.json").read_text())
    (region,) = [r for r in plan["regions"] if r["kind"] == "manual"]
    assert region["shape"] == "ellipse" and region["label"] == "face"
    assert [row[0] for row in region["track"]] == list(range(FRAMES))
    file = json.loads((outdir / "veil-render.json").read_text())["files"][0]
    assert file["verification"]["passed"] is True
    assert file["decisions"]["added"] == [region["id"]]


def test_a_clip_shows_its_tracks_as_people(
    page: Any,  # noqa: F811
    tmp_path: Path,
    astronaut: npt.NDArray[np.uint8],
) -> None:
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "walk.mp4", astronaut, frames=12, audio=False)
    outdir = tmp_path / "out"
    assert run("anonymize", tmp_path / "in", "-o", outdir, "-q", "--no-verify") == 0
    plan = json.loads((outdir / "walk.mp4.plan.json").read_text())
    tracks = plan["regions"]
    page.set_viewport_size({"width": 1400, "height": 700})  # the clip's height limits its size
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="walk.mp4").click()
        page.wait_for_selector("#people .person")

        stage = page.locator("#stage").bounding_box()  # the first frame, before any step, fits the stage
        picture = page.locator("#picture").bounding_box()
        assert picture["y"] + picture["height"] <= stage["y"] + stage["height"] + 1
        assert picture["x"] + picture["width"] <= stage["x"] + stage["width"] + 1

        cards = page.locator("#people .person")
        sync_api.expect(cards).to_have_count(len(tracks))  # one card per track
        for index in range(len(tracks)):
            sync_api.expect(cards.nth(index).locator("img")).to_have_js_property("complete", True)
        widths = cards.locator("img").evaluate_all("images => images.map((i) => i.naturalWidth)")
        assert all(0 < width <= 160 for width in widths), widths  # each picture loaded

        best = max(tracks, key=lambda r: max(row[5] for row in r["track"]))
        surest = max(best["track"], key=lambda row: row[5])[0]
        page.locator(f"#people .person[data-id={best['id']}] img").click()
        sync_api.expect(page.locator("#frame-number")).to_have_value(str(surest))
        shown(page, f"#regions li.selected[data-id={best['id']}]")
        page.locator(f"#people .person[data-id={best['id']}] button", has_text="drop").click()
        shown(page, f"#people .person.drop[data-id={best['id']}]")
        shown(page, f"#regions li[data-id={best['id']}] .d-drop")
    draft = json.loads((outdir / "walk.mp4.plan.draft.json").read_text())
    assert next(r for r in draft["regions"] if r["id"] == best["id"])["decision"] == "drop"
