"""What `veil review` costs a person waiting at the page.

    python benchmarks/review.py [--data ../shared/data] [--json FILE] [--skip-clip]

- Opening a batch of 1,000 photos: the bundled sample anonymized once and
  copied to 1,000 files with their plans and report entries; then the time
  to read the batch, and in Chromium (Debian's, via Playwright) the time
  from loading the page to a grid of 1,000 cards with the first screen of
  thumbnails shown, cold (thumbnails made) and warm.
- A random frame of a 1080p clip: facenet_pytorch_video.mp4 of
  ../shared/data/video (1920x1080), looped to one minute; frames fetched
  in random order through the server (decoded by index, JPEG), and
  stepping forwards one frame at a time.
- The check before a clip's Apply: every track of the one-minute clip
  dropped, the time to name those that would uncover a face (sure scores,
  and second looks, at most 96, at the frames they need).
- Apply: from a person's edit to a new verified output, for a 12 MP photo
  (the astronaut tiled 8 x 6, 48 faces) and for the one-minute clip (its
  plan is veil's plan of the 4.2 s clip, repeated).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import skimage.data
from PIL import Image
from starlette.testclient import TestClient

from veil.cli import main
from veil.plan.files import file_sha256, load_plan, save_plan
from veil.plan.model import Decision, FrameBox, Source
from veil.report import RunReport
from veil.review.run import ReviewedRun
from veil.review.server import Review, Secrets, make_server

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
CLIP = "facenet_pytorch_video.mp4"
QUIET = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def run(*args: str | Path) -> None:
    code = main([str(a) for a in args])
    if code not in (0, 1):
        raise SystemExit(f"veil {args[0]} exited {code}")


def thousand_photos(root: Path) -> Path:
    (root / "in").mkdir(parents=True)
    shutil.copy(REPO / "samples" / "astronaut-phone.jpg", root / "in" / "p0000.jpg")
    run("anonymize", root / "in", "-o", root / "out", "-q")
    out = root / "out"
    report = RunReport.read(out / "veil-report.json")
    first = report.files[0]
    files = [first]
    for index in range(1, 1000):
        name = f"p{index:04d}.jpg"
        shutil.copy(root / "in" / "p0000.jpg", root / "in" / name)
        shutil.copy(out / "p0000.jpg", out / name)
        shutil.copy(out / "p0000.jpg.plan.json", out / f"{name}.plan.json")
        files.append(replace(first, input=str(root / "in" / name), output=str(out / name)))
    report.files = files
    (out / "veil-report.json").write_text(report.to_json())
    return out


def open_batch(out: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    batch = ReviewedRun(out)
    read = time.perf_counter() - started
    keys = Secrets()
    server, sock = make_server(batch, keys)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    first_screen = """() => {
        const cards = document.querySelectorAll('#grid li');
        if (cards.length < 1000) return false;
        const visible = [...document.querySelectorAll('#grid img')].filter(
            (img) => img.getBoundingClientRect().top < innerHeight);
        return visible.length > 0 && visible.every((img) => img.complete && img.naturalWidth > 0);
    }"""
    times = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=QUIET)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page = context.new_page()
        for label in ("cold", "warm"):
            started = time.perf_counter()
            page.goto(keys.url())
            page.wait_for_function(first_screen, timeout=600_000, polling=20)
            times[label] = time.perf_counter() - started
        browser.close()
    server.should_exit = True
    thread.join(10)
    return {"read_report_s": read, "page_cold_s": times["cold"], "page_warm_s": times["warm"]}


def one_minute_clip(data: Path, root: Path) -> tuple[Path, Path]:
    """The clip looped to a minute, and a plan for it made from veil's plan of the clip."""
    source = data / "video" / CLIP
    (root / "short").mkdir(parents=True)
    shutil.copy(source, root / "short" / CLIP)
    run("anonymize", root / "short", "-o", root / "short-out", "-q", "--no-verify")
    short = load_plan(root / "short-out" / f"{CLIP}.plan.json")
    frames = []
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    loops = -(-int(60 * rate) // len(frames))
    (root / "in").mkdir()
    long_clip = root / "in" / "minute.mp4"
    with av.open(str(long_clip), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20"}
        for _ in range(loops):
            for pixels in frames:
                out.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(video.encode(None))
    total = loops * len(frames)
    with av.open(str(long_clip)) as container:
        time_base = str(container.streams.video[0].time_base)
    regions = []
    for loop in range(loops):
        for region in short.regions:
            track = tuple(FrameBox(e.frame + loop * len(frames), e.box, e.score) for e in region.track)
            regions.append(replace(region, id=f"{region.id}-{loop}", track=track))
    plan = replace(
        short,
        source=Source(
            long_clip.name, file_sha256(long_clip), short.source.width, short.source.height, total, time_base
        ),
        regions=tuple(regions),
    )
    plan_file = root / "minute.plan.json"
    save_plan(plan, plan_file, replace=True)
    run(
        "render",
        long_clip,
        plan_file,
        "-o",
        root / "out" / long_clip.name,
        "--report",
        root / "out" / "veil-report.json",
        "-q",
    )
    return long_clip, root / "out"


def frame_times(out: Path) -> dict[str, float]:
    keys = Secrets(port=1)
    review = Review(ReviewedRun(out), keys)
    client = TestClient(review.app(), base_url="http://127.0.0.1:1")
    client.get(f"/?token={keys.token}", follow_redirects=False)
    item = client.get("/api/files").json()["files"][0]["id"]
    frames = client.get(f"/api/files/{item}").json()["frames"]
    picks = random.Random(1).sample(range(frames), 20)
    random_s = []
    for frame in picks:
        started = time.perf_counter()
        assert client.get(f"/media/{item}/original/{frame}").status_code == 200
        assert client.get(f"/api/files/{item}/frame/{frame}").status_code == 200
        random_s.append(time.perf_counter() - started)
    step_s = []
    for frame in range(picks[0] + 1, picks[0] + 21):
        started = time.perf_counter()
        client.get(f"/media/{item}/original/{frame % frames}")
        step_s.append(time.perf_counter() - started)
    return {
        "random_frame_median_s": statistics.median(random_s),
        "random_frame_max_s": max(random_s),
        "next_frame_median_s": statistics.median(step_s),
    }


def uncover_time(out: Path) -> dict[str, Any]:
    """Every track of the clip dropped; the check the page makes before Apply."""
    keys = Secrets(port=1)
    batch = ReviewedRun(out)
    client = TestClient(Review(batch, keys).app(), base_url="http://127.0.0.1:1")
    client.get(f"/?token={keys.token}", follow_redirects=False)
    (item,) = batch.items.values()
    ids = [r.id for r in batch.draft(item).plan.regions]
    batch.change(item, lambda plan: plan.decide_many(ids, Decision.DROP))
    started = time.perf_counter()
    told = client.get(f"/api/files/{item.id}/uncovered").json()["uncovered"]
    seconds = time.perf_counter() - started
    batch.draft(item).undo()
    return {"check_s": seconds, "dropped": len(ids), "told": len(told)}


def apply_time(out: Path, on_frames: bool = False) -> dict[str, Any]:
    batch = ReviewedRun(out)
    (item,) = batch.items.values()
    draft = batch.draft(item)
    region = next(r for r in draft.plan.regions if r.decision is Decision.MASK)
    batch.change(item, lambda plan: plan.decide(region.id, Decision.DROP))
    batch.change(item, lambda plan: plan.decide(region.id, Decision.MASK))
    batch.change(item, lambda plan: plan.drawn(**_drawn(plan)))
    started = time.perf_counter()
    report = batch.apply(item)
    seconds = time.perf_counter() - started
    verification = report.verification
    return {
        "apply_s": seconds,
        "passed": verification.passed if verification else None,
        "frames": report.video.frames if report.video else None,
    }


def _drawn(plan: Any) -> dict[str, Any]:
    box = (10.0, 10.0, 60.0, 40.0)
    if plan.is_video:
        return {"keyframes": [(0, box), ((plan.source.frames or 1) - 1, box)], "label": "text"}
    return {"box": box, "label": "text"}


def twelve_megapixels(root: Path) -> Path:
    (root / "in").mkdir(parents=True)
    astronaut = np.asarray(skimage.data.astronaut(), dtype=np.uint8)
    Image.fromarray(np.tile(astronaut, (6, 8, 1))).save(root / "in" / "crowd.jpg", quality=92)
    run("anonymize", root / "in", "-o", root / "out", "-q")
    return root / "out"


def main_() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-clip", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        results["batch_1000_photos"] = open_batch(thousand_photos(root / "batch"))
        print("batch of 1,000 photos:", json.dumps(results["batch_1000_photos"]), flush=True)
        results["apply_12mp_photo"] = apply_time(twelve_megapixels(root / "photo"))
        print("apply, 12 MP photo:", json.dumps(results["apply_12mp_photo"]), flush=True)
        if not args.skip_clip:
            _, out = one_minute_clip(args.data, root / "clip")
            results["frames_1080p"] = frame_times(out)
            print("1080p frames:", json.dumps(results["frames_1080p"]), flush=True)
            results["uncover_check_1080p"] = uncover_time(out)
            print(
                "check before Apply, every track dropped:",
                json.dumps(results["uncover_check_1080p"]),
                flush=True,
            )
            results["apply_1min_1080p"] = apply_time(out)
            print("apply, one minute of 1080p:", json.dumps(results["apply_1min_1080p"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main_())
