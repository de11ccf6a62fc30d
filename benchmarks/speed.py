"""Speed of veil's defaults against deface 1.5.0 and the plain transcode floor.

    python benchmarks/speed.py [--data ../shared/data] [--no-deface] [--no-photos] [--no-video]
                               [--before LABEL=SRC ...] [--deface-scale 2] [--sizes stored,full]
                               [--clip NAME] [--device auto|cpu|cuda] [--repeat N] [--json FILE]

Same machine, same run, each tool as a user runs it (one CLI process for a
folder, verification on because it is veil's default), and the veil of
other checkouts beside it (`--before before=/tmp/old/src`). deface runs at
its defaults and searching each photo or frame at `--deface-scale` times
its size, as hard as it can look for small faces
(benchmarks/deface_scaled.py for photos, whose sizes differ):
- photos: widerface-dev as stored (416x416) and at full size (each image
  resized back to its original WIDER size, about 1024x700, as the crowd
  photos a user has would be); images/s over the wall time of the process,
  and recall by the coverage rule of ../shared/data/README.md;
- video: each clip of ../shared/data/video: veil's and deface's fps, the
  transcode floor (decode, convert to RGB and back, encode with veil's x264
  settings, copy the sound), and veil's peak RSS, also on the clip played
  `--repeat` times over (memory must stay flat as a clip grows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from coverage import Tally, changed_pixels, face_covered, height_bin
from video import DEFACE_AS_SHIPPED, beside_python, deface_clip_runs, evaluation_clips, transcode_floor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-deface", action="store_true")
    parser.add_argument("--no-photos", action="store_true")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--clip", action="append", help="only clips whose name contains this")
    parser.add_argument("--device", default="auto", help="veil --device (default auto)")
    parser.add_argument("--repeat", type=int, default=3, help="the longer clip plays the clip this often")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--before", action="append", default=[], help="LABEL=SRC: also run the veil in this src folder"
    )
    parser.add_argument("--deface-scale", type=float, default=2.0, help="deface's second run (0: none)")
    parser.add_argument("--sizes", default="stored,full", help="photo sets: stored, full")
    parser.add_argument("--no-floor", action="store_true", help="skip the transcode floor")
    args = parser.parse_args()
    deface = None if args.no_deface else shutil.which("deface") or beside_python("deface")
    veils = {"veil": [sys.executable, "-m", "veil", "anonymize", "-q", "--device", args.device]}
    sources: dict[str, Path | None] = {"veil": None}
    for before in args.before:
        label, src = before.split("=", 1)
        veils[label] = [sys.executable, "-m", "veil", "anonymize", "-q"]
        sources[label] = Path(src).resolve()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="veil-speed-") as tmp:
        root = Path(tmp)
        wider = args.data / "widerface-dev"
        if not args.no_photos and (wider / "manifest.json").is_file():
            manifest = json.loads((wider / "manifest.json").read_text())["files"]
            for size in args.sizes.split(","):
                photos = root / f"photos-{size}"
                staged, boxes = _stage_photos(wider, manifest, photos, size == "full")
                entry: dict[str, object] = {"images": len(staged)}
                for label, veil in veils.items():
                    out = root / f"{label}-{size}"
                    run = _timed([*veil, str(photos), "-o", str(out)], sources[label])
                    entry[label] = run | _recall(staged, {name: out / name for name in staged}, boxes)
                if deface:
                    # deface_scaled.py imports deface: run it on the Python deface was installed for
                    python = str(Path(deface).with_name("python"))
                    scaled = [python, str(Path(__file__).with_name("deface_scaled.py"))]
                    runs = {"deface": [deface, *DEFACE_AS_SHIPPED]}
                    if args.deface_scale:
                        runs[f"deface x{args.deface_scale:g}"] = [*scaled, str(args.deface_scale)]
                    for label, command in runs.items():
                        copies = root / f"{label.replace(' ', '-')}-{size}"
                        shutil.copytree(photos, copies)
                        run = _timed([*command, str(copies)])
                        outputs = {n: copies / f"{Path(n).stem}_anonymized{Path(n).suffix}" for n in staged}
                        entry[label] = run | _recall(staged, outputs, boxes)
                _rates(entry, len(staged))
                results[f"photos/{size}"] = entry
                print(f"photos/{size}: {json.dumps(entry)}", flush=True)
        elif not args.no_photos:
            print(f"photos skipped: no evaluation data at {wider} (see ../shared/data/README.md)")
        clips = [] if args.no_video else evaluation_clips(args.data, args.clip)
        for clip in clips:
            frames = _count_frames(clip)
            entry = {"frames": frames, "size": _size(clip)}
            if not args.no_floor:
                entry["floor"] = {"seconds": transcode_floor(clip, root / "floor" / clip.name)}
            for label, veil in veils.items():
                entry[label] = _timed([*veil, str(clip), "-o", str(root / f"{label}-video")], sources[label])
            if deface:
                for label, command in deface_clip_runs(deface, args.deface_scale, entry["size"]).items():
                    out = root / f"{label.replace(' ', '-')}-video" / clip.name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    entry[label] = _timed([*command, str(clip), "-o", str(out)])
            if args.repeat > 1:
                longer = root / "long" / clip.name
                _repeated(clip, longer, args.repeat)
                run = _timed([*veils["veil"], str(longer), "-o", str(root / "veil-long")])
                entry["veil_repeated"] = run | {"frames": frames * args.repeat}
                extra_s = run["seconds"] - entry["veil"]["seconds"]  # type: ignore[operator]
                if extra_s > 0:  # the start-up (imports, models, GPU) paid once, left out
                    entry["veil_steady_fps"] = round(frames * (args.repeat - 1) / extra_s, 3)
            _rates(entry, frames, unit="fps")
            results[clip.name] = entry
            print(f"{clip.name}: {json.dumps(entry)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _timed(command: list[str], src: Path | None = None) -> dict[str, object]:
    """Wall time, exit status and peak RSS of one process (running the veil in `src`)."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    result: dict[str, object] = {
        "seconds": round(seconds, 2),
        "exit": process.returncode,
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
    }
    if process.returncode not in (0, 1):
        result["stderr"] = stderr.decode(errors="replace")[-500:]
    return result


def _rates(entry: dict, count: int, unit: str = "images_per_s") -> None:
    tools = [key for key, value in entry.items() if isinstance(value, dict) and "seconds" in value]
    for tool in tools:
        if entry[tool].get("seconds"):
            entry[tool][unit] = round(count / entry[tool]["seconds"], 3)
    veil = entry["veil"].get(unit)
    for other in (tool for tool in tools if tool != "veil"):
        if other in entry and entry[other].get(unit) and veil:
            entry[f"veil_over_{other}"] = round(veil / entry[other][unit], 3)
            if entry.get("veil_steady_fps"):
                entry[f"veil_steady_over_{other}"] = round(entry["veil_steady_fps"] / entry[other][unit], 3)


def _stage_photos(
    wider: Path, manifest: list[dict], folder: Path, full: bool
) -> tuple[dict[str, Path], dict[str, list[list[float]]]]:
    """Copies of the images, stored or resized to the original WIDER size,
    and their valid face boxes (x, y, w, h) in the staged pixels."""
    folder.mkdir(parents=True)
    staged, boxes = {}, {}
    for item in manifest:
        name = Path(item["file"]).name
        target = folder / name
        if full:
            with Image.open(wider / item["file"]) as image:
                size = (item["original_width"], item["original_height"])
                image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(target, quality=92)
            key = "box_original_pixels"
        else:
            shutil.copyfile(wider / item["file"], target)
            key = "box"
        staged[name] = target
        boxes[name] = [face[key] for face in item["faces"] if not face["invalid"]]
    return staged, boxes


def _recall(
    staged: dict[str, Path], outputs: dict[str, Path], boxes: dict[str, list[list[float]]]
) -> dict[str, object]:
    tally = Tally()
    for name, source in staged.items():
        with Image.open(source) as image:
            original = np.asarray(image.convert("RGB"))
        output = original
        if outputs[name].exists():
            with Image.open(outputs[name]) as image:
                output = np.asarray(image.convert("RGB"))
        else:
            tally.missing_outputs += 1
        changed = changed_pixels(original, output)
        for box in boxes[name]:
            covered = face_covered(changed, box)
            tally.add("all", covered)
            tally.add(height_bin(box[3]), covered)
    summary = tally.summary()
    return {"recall": summary["recall"], "missing": summary["missing_outputs"]}


def _count_frames(clip: Path) -> int:
    with av.open(str(clip)) as container:
        return sum(1 for _ in container.decode(video=0))


def _size(clip: Path) -> list[int]:
    with av.open(str(clip)) as container:
        video = container.streams.video[0].codec_context
        return [video.width, video.height]


def _repeated(clip: Path, out: Path, times: int) -> None:
    """The clip's pictures `times` over, one after another, without sound."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w") as sink:
        video = None
        offset = 0
        for _ in range(times):
            with av.open(str(clip)) as source:
                stream = source.streams.video[0]
                if video is None:
                    video = sink.add_stream("libx264", rate=stream.average_rate or 30)
                    video.width, video.height = stream.codec_context.width, stream.codec_context.height
                    video.pix_fmt = "yuv420p"
                    video.time_base = video.codec_context.time_base = stream.time_base
                    video.options = {"crf": "18", "preset": "veryfast"}
                last = 0
                for frame in source.decode(video=0):
                    new = frame.reformat(format="yuv420p")
                    new.pts, new.time_base = frame.pts + offset, frame.time_base
                    last = frame.pts + (frame.duration or 1)
                    sink.mux(video.encode(new))
                offset += last
        assert video is not None
        sink.mux(video.encode(None))


if __name__ == "__main__":
    sys.exit(main())
