"""Make the README's pictures of the review page, in Debian's Chromium.

    .venv/bin/python scripts/review_screenshots.py [--out docs]

Everything shown is made from scikit-image's astronaut (public domain): a
photo of three astronauts whose third face veil "missed" and with weak
regions on the suits, one astronaut, and a clip whose first track starts
on the background and moves onto the face. Needs the dev extras
(Playwright) and /usr/bin/chromium; uses the tests' helpers to build the
run. Writes review-batch.png, review-photo.png, review-keep.png,
review-refused.png, review-video.png and review-uncovered.png.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from review_batch import BOUQUET, face_at, run, serving  # noqa: E402
from videos import make_clip  # noqa: E402

QUIET = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
SIZE = {"width": 1440, "height": 900}


def build(root: Path) -> Path:
    """A rendered run to review; returns its output folder."""
    astronaut = np.asarray(skimage.data.astronaut(), dtype=np.uint8)
    originals = root / "in"
    originals.mkdir()
    Image.fromarray(np.hstack([astronaut] * 3)).save(originals / "crowd.png")
    Image.fromarray(astronaut).save(originals / "one.png")
    clip = make_clip(originals / "walk.mp4", astronaut, frames=12)
    assert run("anonymize", originals, "-o", root / "first", "-q", "--no-verify") == 0

    crowd_file = root / "first" / "crowd.png.plan.json"
    crowd: dict[str, Any] = json.loads(crowd_file.read_text())
    faces = crowd["regions"]
    faces.remove(max(faces, key=lambda r: r["box"][0]))  # veil "missed" the third face
    for n in range(20):  # weak finds on the suits, masked because the picture shows people
        x, y = 560 + 44 * (n % 10), 330 + 60 * (n // 10)
        faces.append(
            {
                "id": f"f{20 + n}",
                "kind": "face",
                "decision": "mask",
                "shape": "ellipse",
                "box": [x, y, x + 30, y + 36],
                "found": {"score": 0.12, "decision": "mask", "why": "among people"},
            }
        )
    crowd_file.write_text(json.dumps(crowd))

    clip_file = root / "first" / "walk.mp4.plan.json"
    plan: dict[str, Any] = json.loads(clip_file.read_text())
    onto = [[f, *BOUQUET, 0.15] if f < 6 else [f, *clip.faces[f], 0.9] for f in range(12)]
    found = {"decision": "mask", "found_by": ["centerface x1"], "frames_filled": 0}
    face = [[f, *clip.faces[f], 0.6] for f in range(6)]
    plan["regions"] = [
        {"id": "f1", "kind": "face", "decision": "mask", "track": onto}
        | {"found": found | {"score": 0.9, "frames_detected": 12}},
        {"id": "f2", "kind": "face", "decision": "mask", "track": face}
        | {"found": found | {"score": 0.6, "frames_detected": 6}},
    ]
    clip_file.write_text(json.dumps(plan))
    run("render", originals, root / "first", "-o", root / "out", "-q")  # crowd.png fails: its third face
    return root / "out"


def drag(page: Any, size: tuple[int, int], start: tuple[float, float], end: tuple[float, float]) -> None:
    bounds = page.locator("#overlay").bounding_box()

    def screen(point: tuple[float, float]) -> tuple[float, float]:
        return (
            bounds["x"] + point[0] * bounds["width"] / size[0],
            bounds["y"] + point[1] * bounds["height"] / size[1],
        )

    page.keyboard.down("Shift")
    page.mouse.move(*screen(start))
    page.mouse.down()
    page.mouse.move(*screen(((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)))
    page.mouse.move(*screen(end))
    page.mouse.up()
    page.keyboard.up("Shift")


def shoot(outdir: Path, docs: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=QUIET)
        page = browser.new_context(viewport=SIZE).new_page()
        with serving(outdir) as (keys, _):
            page.goto(keys.url())
            expect(page.locator("#grid li img").first).to_be_visible()
            page.wait_for_timeout(1500)  # the thumbnails
            page.screenshot(path=str(docs / "review-batch.png"))

            page.locator("#grid li", has_text="crowd.png").click()
            page.wait_for_selector("#regions li[data-id]")
            drag(page, (1536, 512), (540, 310), (1010, 450))  # the weak finds on the suits
            expect(page.locator("#selection")).to_be_visible()
            page.screenshot(path=str(docs / "review-photo.png"))
            page.keyboard.press("Escape")
            x1, y1, x2, y2 = face_at(1)
            page.mouse.click(*_point(page, (1536, 512), ((x1 + x2) / 2, (y1 + y2) / 2)))
            page.keyboard.press("v")
            page.keyboard.type("The mission commander, speaking at a press conference")
            page.screenshot(path=str(docs / "review-keep.png"))
            page.keyboard.press("Escape")
            page.locator("#back").click()

            page.locator("#grid li", has_text="one.png").click()
            page.locator("#regions li[data-id=f1] .id").click()
            page.keyboard.press("x")
            expect(page.locator("#regions li[data-id=f1] .d-drop")).to_be_visible()
            page.keyboard.press("a")
            expect(page.locator("#status")).to_have_text(re.compile("^not applied"), timeout=180_000)
            page.screenshot(path=str(docs / "review-refused.png"))
            page.keyboard.press("Control+z")
            page.locator("#back").click()

            page.locator("#grid li", has_text="walk.mp4").click()
            page.wait_for_selector("#people .person img")
            page.keyboard.press("1")  # Edit: the refused Apply left the page on Preview
            for _ in range(6):
                page.keyboard.press("ArrowRight")
            expect(page.locator("#frame-number")).to_have_value("6")
            page.locator("#regions li[data-id=f1] .id").click()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(docs / "review-video.png"))
            page.keyboard.press("x")
            expect(page.locator("#regions li[data-id=f1] .d-drop")).to_be_visible()
            page.keyboard.press("a")
            expect(page.locator("#uncovered-dialog")).to_be_visible()
            page.screenshot(path=str(docs / "review-uncovered.png"))
        browser.close()


def _point(page: Any, size: tuple[int, int], point: tuple[float, float]) -> tuple[float, float]:
    bounds = page.locator("#overlay").bounding_box()
    return (
        bounds["x"] + point[0] * bounds["width"] / size[0],
        bounds["y"] + point[1] * bounds["height"] / size[1],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as root:
        shoot(build(Path(root)), args.out)
    print(f"pictures in {args.out}")


if __name__ == "__main__":
    main()
