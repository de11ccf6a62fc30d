"""What rendering from a plan costs: `veil render` against the plain transcode
floor on each clip, and against `veil anonymize` on widerface-dev's photos.

    python benchmarks/render.py [--data ../shared/data] [--clip NAME] [--no-photos] [--json FILE]

For each clip of ../shared/data/video: `veil anonymize` writes the output
and its plan; then `veil render` re-renders it from the unedited plan, with
and without verification, and the transcode floor (decode, RGB and back,
x264 at veil's settings, sound copied) runs on the same clip. Reported: the
seconds of each, render / floor (the command's wall time, start-up
included, and the rendering alone, in this process), whether the rendered
frames equal anonymize's, and the plan's size per minute of video.

For widerface-dev (as stored): `veil anonymize` and `veil render` of the
whole folder from its plans, both with --no-verify (verification costs the
same after either), as images/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from veil.pipeline.render import render_video
from veil.plan import load_plan

from video import evaluation_clips, transcode_floor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
VEIL = [sys.executable, "-m", "veil"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--clip", action="append", help="only clips whose name contains this")
    parser.add_argument("--no-photos", action="store_true")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="veil-render-") as tmp:
        root = Path(tmp)
        for clip in [] if args.no_video else evaluation_clips(args.data, args.clip):
            results[clip.name] = entry = _clip(clip, root / clip.stem)
            print(f"{clip.name}: {json.dumps(entry)}", flush=True)
        wider = args.data / "widerface-dev"
        if not args.no_photos and wider.is_dir():
            results["widerface-dev"] = entry = _photos(wider, root / "photos")
            print(f"widerface-dev: {json.dumps(entry)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _clip(clip: Path, folder: Path) -> dict[str, object]:
    anonymized = folder / "anonymized"
    entry: dict[str, object] = {
        "anonymize": _timed([*VEIL, "anonymize", "-q", str(clip), "-o", str(anonymized)])
    }
    output, plan_file = anonymized / clip.name, anonymized / f"{clip.name}.plan.json"
    entry["floor_s"] = floor = transcode_floor(clip, folder / "floor" / clip.name)
    rendered = folder / "rendered" / clip.name
    render = [*VEIL, "render", "-q", str(clip), str(plan_file), "-o"]
    entry["render_no_verify"] = _timed([*render, str(rendered), "--no-verify"], cwd=folder)
    entry["render_verified"] = _timed([*render, str(folder / "verified" / clip.name)], cwd=folder)
    plan = load_plan(plan_file)
    started = time.perf_counter()
    render_video(clip, plan, folder / "in-process" / clip.name)
    entry["render_in_process_s"] = round(time.perf_counter() - started, 2)
    no_verify = entry["render_no_verify"]["seconds"]  # type: ignore[index]
    entry["render_over_floor"] = round(no_verify / floor, 2)
    entry["render_in_process_over_floor"] = round(entry["render_in_process_s"] / floor, 2)  # type: ignore[operator]
    entry["same_frames_as_anonymize"] = _same_frames(output, rendered)
    frames = plan.source.frames or 0
    with av.open(str(clip)) as container:
        rate = float(container.streams.video[0].average_rate or 30)
    minutes = frames / rate / 60
    size = plan_file.stat().st_size
    entry["plan"] = {
        "bytes": size,
        "regions": len(plan.regions),
        "boxes": sum(len(r.track) for r in plan.regions),
        "bytes_per_minute": round(size / minutes) if minutes else None,
        "size": [plan.source.width, plan.source.height],
    }
    return entry


def _photos(wider: Path, folder: Path) -> dict[str, object]:
    wider = wider / "images"
    images = sorted(p.relative_to(wider) for p in wider.rglob("*") if p.suffix.lower() in {".jpg", ".png"})
    anonymized = folder / "anonymized"
    entry: dict[str, object] = {"images": len(images)}
    entry["anonymize"] = _timed([*VEIL, "anonymize", "-q", "--no-verify", str(wider), "-o", str(anonymized)])
    entry["render"] = _timed(
        [*VEIL, "render", "-q", "--no-verify", str(wider), str(anonymized), "-o", str(folder / "rendered")],
        cwd=folder,
    )
    for stage in ("anonymize", "render"):
        seconds = entry[stage]["seconds"]  # type: ignore[index]
        entry[f"{stage}_images_per_s"] = round(len(images) / seconds, 2)
    same = sum(
        (anonymized / p).read_bytes() == (folder / "rendered" / p).read_bytes()
        for p in images
        if (folder / "rendered" / p).is_file()
    )
    entry["same_bytes_as_anonymize"] = same
    entry["render_over_anonymize"] = round(
        entry["render"]["seconds"] / entry["anonymize"]["seconds"],  # type: ignore[index]
        3,
    )
    return entry


def _same_frames(first: Path, second: Path) -> bool:
    with av.open(str(first)) as a, av.open(str(second)) as b:
        for x, y in zip(a.decode(video=0), b.decode(video=0), strict=True):
            if not np.array_equal(x.to_ndarray(format="rgb24"), y.to_ndarray(format="rgb24")):
                return False
    return True


def _timed(command: list[str], cwd: Path | None = None) -> dict[str, object]:
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = subprocess.run(command, check=False, capture_output=True, text=True, cwd=cwd)
    timed: dict[str, object] = {"seconds": round(time.perf_counter() - started, 2), "exit": result.returncode}
    if result.returncode:
        timed["stderr"] = result.stderr.strip().splitlines()[-3:]
    return timed


if __name__ == "__main__":
    raise SystemExit(main())
