"""Bulk decisions on the review page, in Debian's Chromium driven by
Playwright: a person clears a photo of many false regions in a few actions,
and the plan on disk shows exactly what they decided."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from test_review_browser import applied, browser, drag, page, shown, sync_api  # noqa: F401 (fixtures)

from review_batch import run, serving, three_faces_to_fix

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium")


def weak(number: int, box: list[float], why: str = "among people", score: float = 0.11) -> dict[str, Any]:
    return {
        "id": f"f{number}",
        "kind": "face",
        "decision": "mask",
        "shape": "ellipse",
        "box": box,
        "found": {"score": score, "decision": "mask", "why": why, "found_by": ["centerface x0.613 mirrored"]},
    }


def planned(root: Path, picture: npt.NDArray[np.uint8], regions: list[dict[str, Any]]) -> Path:
    """A rendered run of one photo whose plan veil made (of faces only: its
    text is left out, `--no-text`), plus `regions`."""
    originals = root / "in"
    originals.mkdir(parents=True)
    Image.fromarray(picture).save(originals / "one.png")
    assert run("anonymize", originals, "-o", root / "first", "-q", "--no-verify", "--no-text") == 0
    plan_file = root / "first" / "one.png.plan.json"
    plan = json.loads(plan_file.read_text())
    plan["regions"] += regions
    plan_file.write_text(json.dumps(plan))
    assert run("render", originals, root / "first", "-o", root / "out", "-q") == 0
    return root / "out"


def decisions(outdir: Path) -> dict[str, str]:
    plan = json.loads((outdir / "one.png.plan.json").read_text())
    return {r["id"]: r["decision"] for r in plan["regions"]}


def test_a_rectangle_and_one_key_clear_many_false_regions(
    page: Any,  # noqa: F811
    tmp_path: Path,
    astronaut: npt.NDArray[np.uint8],
) -> None:
    # 24 false regions over the rocket and the suit, below the astronaut's face
    false = [
        weak(
            100 + n, [30.0 + 60 * (n % 8), 320.0 + 60 * (n // 8), 62.0 + 60 * (n % 8), 356.0 + 60 * (n // 8)]
        )
        for n in range(24)
    ]
    outdir = planned(tmp_path, astronaut, false)
    actions = 0
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="one.png").click()
        actions += 1
        shown(page, "#regions li.group")
        header = page.locator("#regions li.group[data-group='among people']")
        assert "24" in header.inner_text()  # a group of its own, with its count...
        assert page.locator("#regions li[data-id=f100]").count() == 0  # ...folded: the list stays short
        assert "because of f1" in page.locator("#proof").inner_text()  # the proof of people is named
        words = page.locator("#side").inner_text()
        assert "centerface" not in words and "mirrored" not in words  # no jargon in the text
        sync_api.expect(page.locator("#reviewed")).to_have_text(re.compile(r"^0 of \d+ reviewed$"))
        dropped_by_veil = page.locator("#overlay .region.drop").count()

        drag(page, (512, 512), (5, 300), (507, 507))  # from an empty spot: a selection rectangle
        actions += 1
        sync_api.expect(page.locator("#selection strong")).to_have_text("24 selected")
        assert page.locator("#overlay .picked").count() == 24
        page.keyboard.press("x")  # drop all of them: one edit
        actions += 1
        shown(page, "#regions li.group[data-group='among people'] .count")
        sync_api.expect(page.locator("#status")).to_have_text(re.compile("^24 regions dropped"))
        sync_api.expect(page.locator("#reviewed")).to_have_text(re.compile(r"^24 of \d+ reviewed$"))
        assert page.locator("#selection").is_hidden()

        page.keyboard.press("Shift+N")  # the last region
        page.keyboard.press("n")  # does not go round to the first
        sync_api.expect(page.locator("#status")).to_have_text("last region")
        last = page.locator("#regions li.selected").get_attribute("data-id")
        assert last == "f1"  # the sure face comes last: the most doubtful come first

        page.keyboard.press("Control+z")  # one undo step takes all 24 back...
        sync_api.expect(page.locator("#status")).to_have_text("undone")
        assert page.locator("#overlay .region.drop").count() == dropped_by_veil
        page.keyboard.press("Control+Shift+Z")  # ...and one brings them again
        sync_api.expect(page.locator("#overlay .region.drop")).to_have_count(dropped_by_veil + 24)

        applied(page)
        actions += 1
        page.keyboard.press("Shift+A")
        actions += 1
        sync_api.expect(page.locator("#status")).to_have_text("approved")

    after = decisions(outdir)
    assert all(after[f"f{100 + n}"] == "drop" for n in range(24))
    assert after["f1"] == "mask"  # the astronaut's face stays masked
    review = json.loads((outdir / "veil-render.json").read_text())["files"][0]["review"]
    assert review["approved"] is True and review["changes"] == 1  # one edit for 24 regions
    assert {f"f{100 + n}" for n in range(24)} <= set(review["looked_at"])
    assert actions == 5  # open, drag, x, apply, approve: one x per region would take 24 more


def test_the_proof_of_people_drops_with_what_stood_on_it(page: Any, tmp_path: Path) -> None:  # noqa: F811
    """A picture of no one (a smooth gradient) where one weak find was taken
    for proof of people and 20 others were masked because of it."""
    ramp = np.linspace(40, 220, 640, dtype=np.uint8)
    picture = np.dstack(
        [np.tile(ramp, (400, 1)), np.tile(ramp[::-1], (400, 1)), np.full((400, 640), 90, np.uint8)]
    )
    found = [weak(50, [300.0, 40.0, 340.0, 90.0], why="sure", score=0.52)]
    found += [weak(60 + n, [20.0 + 30 * n, 250.0, 44.0 + 30 * n, 280.0]) for n in range(20)]
    found += [weak(90, [560.0, 300.0, 600.0, 350.0], why="confirmed", score=0.4)]
    outdir = planned(tmp_path, picture, found)
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="one.png").click()
        proof = page.locator("#proof")
        sync_api.expect(proof).to_contain_text("veil treats this picture as showing people because of f50")

        page.locator("#label").focus()  # a focused dropdown leaves the page its keys
        for key in ("k", "ArrowDown", "b"):
            page.keyboard.press(key)
        assert page.locator("#label").input_value() == "face"
        sync_api.expect(page.locator("#draw-box")).to_have_class(re.compile(r"\bon\b"))  # b drew a box
        page.keyboard.press("b")  # and put the tool away again

        proof.get_by_role(
            "button", name="not a face? drop f50 and the 20 weak regions that depended on it"
        ).click()
        sync_api.expect(page.locator("#status")).to_have_text(re.compile("^21 regions dropped"))
        applied(page)
        page.keyboard.press("Shift+A")
        sync_api.expect(page.locator("#status")).to_have_text("approved")
    after = decisions(outdir)
    assert after["f50"] == "drop" and all(after[f"f{60 + n}"] == "drop" for n in range(20))
    assert after["f90"] == "mask"  # a second look confirmed it: not part of the proof


def test_a_click_on_a_finding_shows_it(page: Any, tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> None:  # noqa: F811
    outdir = three_faces_to_fix(tmp_path, astronaut)
    with serving(outdir) as (keys, _):
        page.goto(keys.url())
        page.locator("#grid li", has_text="three.png").click()
        failure = page.locator("#findings li.fail").first
        failure.wait_for()
        assert failure.bounding_box()["y"] < 300  # above the regions, not below them
        fitted = page.locator("#picture").bounding_box()["width"]
        failure.click()  # the missed face: no region is tied to it
        shown(page, "#overlay .flash")
        assert page.locator("#picture").bounding_box()["width"] > 1.5 * fitted  # zoomed onto it
