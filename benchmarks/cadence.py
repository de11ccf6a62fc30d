"""What spreading the costly detection passes over video frames gives up.

    python benchmarks/cadence.py [--data ../shared/data] [--clip NAME] [--json FILE]

For each clip of ../shared/data/video, veil runs twice without verification:
once with every pass on every frame (`video_fine_every=1,
video_mirror_every=1`), once with the defaults. Every face box the full
search masked is then looked up in the default output: it is left uncovered
when fewer than half of its pixels changed (the photo rule). An uncovered box
counts as a face (not one of the extra passes' false alarms) when
RetinaFace, enlarged 4x around it, finds a face there (IoU >= 0.3); the
rest are listed for a person to look at. Times are the
detection-and-encoding wall time of each run, same machine, same process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from veil import anonymize_file
from veil.detection.retinaface import RetinaFaceDetector
from veil.options import AnonymizeOptions

from coverage import changed_pixels
from video import evaluation_clips

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--clip", action="append", help="only clips whose name contains this")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clips = evaluation_clips(args.data, args.clip)
    if not clips:
        print(f"benchmark skipped: no clips at {args.data / 'video'} (see ../shared/data/README.md)")
        return 0
    default = AnonymizeOptions(verify=False)
    full = replace(default, detection=replace(default.detection, video_fine_every=1, video_mirror_every=1))
    results = {}
    with tempfile.TemporaryDirectory(prefix="veil-cadence-") as tmp:
        for clip in clips:
            runs = {}
            for name, options in (("every_pass", full), ("default", default)):
                out = Path(tmp) / name / clip.name
                out.parent.mkdir(parents=True, exist_ok=True)
                started = time.perf_counter()
                report = anonymize_file(clip, out, options)
                seconds = time.perf_counter() - started
                assert report.video is not None, report.error
                runs[name] = (out, report.video, seconds)
            boxes = runs["every_pass"][1].boxes_per_frame
            uncovered, total, frames_with = _uncovered(clip, runs["default"][0], boxes)
            frames = runs["default"][1].frames
            entry = {
                "frames": frames,
                "every_pass_fps": round(frames / runs["every_pass"][2], 3),
                "default_fps": round(frames / runs["default"][2], 3),
                "boxes_of_every_pass": total,
                "of_them_uncovered_by_default": len(uncovered),
                "uncovered_and_confirmed_by_retinaface": sum(1 for u in uncovered if u[2]),
                "frames_with_an_uncovered_box": frames_with,
                "confirmed": [u[:2] for u in uncovered if u[2]],
                "first_uncovered": uncovered[:10],
            }
            results[clip.name] = entry
            print(clip.name, json.dumps(entry), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _uncovered(
    clip: Path, output: Path, boxes: list[list[tuple[int, int, int, int]]]
) -> tuple[list[tuple[int, list[int], bool]], int, int]:
    uncovered: list[tuple[int, list[int], bool]] = []
    finder = RetinaFaceDetector(threshold=0.5)
    total = 0
    frames_with: set[int] = set()
    with av.open(str(clip)) as a, av.open(str(output)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        for index, (original, anonymized) in enumerate(pairs):
            before = original.to_ndarray(format="rgb24")
            changed = changed_pixels(before, anonymized.to_ndarray(format="rgb24"))
            for x1, y1, x2, y2 in boxes[index]:
                total += 1
                region = changed[max(0, y1) : y2, max(0, x1) : x2]
                if region.size and float(np.mean(region)) < 0.5:
                    face = _confirmed(finder, before, (x1, y1, x2, y2))
                    uncovered.append((index, [x1, y1, x2, y2], face))
                    frames_with.add(index)
    return uncovered, total, len(frames_with)


def _confirmed(finder: RetinaFaceDetector, image: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left, top = max(0, x1 - w), max(0, y1 - h)
    crop = np.ascontiguousarray(image[top : y2 + h, left : x2 + w])
    found = finder.detect(crop, scale=4.0).shifted(left, top)
    return any(_iou(tuple(b), box) >= 0.3 for b in found.boxes.tolist())


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


if __name__ == "__main__":
    sys.exit(main())
