"""What the search schedule (`veil.detection.schedule`) gives up against
the exhaustive search.

    python benchmarks/cadence.py [--data ../shared/data] [--clip NAME] [--json FILE] [--sheets DIR]
        [--detection FIELD=VALUE ...]

For each clip of ../shared/data/video, veil runs twice without verification:
once with every pass on every frame (`video_key_every=1`, as on a GPU),
once with the defaults. Two counts of what the default run leaves
uncovered (fewer than half of a box's pixels changed, the photo rule):

- faces: every box the exhaustive search itself found (not filled in by
  tracking) with score >= 0.3 that a second look at the original frame
  confirms (`veil.detection.second_look`): the issue's target is none;
- boxes: every box the exhaustive run masked (tracking's too), and of
  those the ones RetinaFace, enlarged 4x around it, finds a face in
  (IoU >= 0.3).

With --sheets, a contact sheet per clip of the frames where the two
outputs' masks differ most.

Times are each run's wall time (detection, choice, tracking, encoding),
same machine, same process.
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
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from veil import anonymize_file
from veil.detection.retinaface import RetinaFaceDetector
from veil.detection.second_look import SecondLook
from veil.options import AnonymizeOptions

from coverage import changed_pixels
from video import add_detection_argument, evaluation_clips, with_detection

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--clip", action="append", help="only clips whose name contains this")
    add_detection_argument(parser, "the default run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheets", type=Path, help="a contact sheet per clip in this folder")
    args = parser.parse_args()
    clips = evaluation_clips(args.data, args.clip)
    if not clips:
        print(f"benchmark skipped: no clips at {args.data / 'video'} (see ../shared/data/README.md)")
        return 0
    default = with_detection(AnonymizeOptions(verify=False), args.detection)
    full = replace(default, detection=replace(default.detection, video_key_every=1))
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
            if args.sheets:
                args.sheets.mkdir(parents=True, exist_ok=True)
                sheet = args.sheets / f"{clip.stem}.png"
                contact_sheet(clip, runs["default"][0], runs["every_pass"][0], sheet)
            uncovered, total, frames_with = _uncovered(clip, runs["default"][0], boxes)
            faces, missed = _faces_uncovered(clip, runs["default"][0], found_faces(runs["every_pass"][0]))
            frames = runs["default"][1].frames
            entry = {
                "frames": frames,
                "every_pass_fps": round(frames / runs["every_pass"][2], 3),
                "default_fps": round(frames / runs["default"][2], 3),
                "faces_of_every_pass": faces,  # score >= 0.3, confirmed by a second look
                "of_them_uncovered_by_default": len(missed),
                "frames_with_an_uncovered_face": len({frame for frame, _ in missed}),
                "uncovered_faces": missed[:20],
                "boxes_of_every_pass": total,
                "boxes_uncovered_by_default": len(uncovered),
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


def contact_sheet(clip: Path, default: Path, every_pass: Path, sheet: Path, count: int = 4) -> None:
    """The `count` frames whose masks differ most between the two outputs:
    a row each, the default output on the left, every pass's on the right,
    where only one of them changed pixels tinted (red: every pass only,
    blue: the default only)."""
    scored = []
    with av.open(str(clip)) as a, av.open(str(default)) as b, av.open(str(every_pass)) as c:
        frames = zip(a.decode(video=0), b.decode(video=0), c.decode(video=0), strict=True)
        for index, (original, mine, theirs) in enumerate(frames):
            before = original.to_ndarray(format="rgb24")
            ours, full = mine.to_ndarray(format="rgb24"), theirs.to_ndarray(format="rgb24")
            only_full = changed_pixels(before, full) & ~changed_pixels(before, ours)
            only_ours = changed_pixels(before, ours) & ~changed_pixels(before, full)
            score = int(only_full.sum()) * 2 + int(only_ours.sum())  # what the default leaves counts twice
            scored.append((score, index, ours, full, only_full, only_ours))
            scored = sorted(scored, key=lambda s: -s[0])[:count]
    rows = []
    for _, index, ours, full, only_full, only_ours in sorted(scored, key=lambda s: s[1]):
        left, right = ours.copy(), full.copy()
        left[only_full] = (0.5 * left[only_full] + [127, 0, 0]).astype(np.uint8)
        right[only_ours] = (0.5 * right[only_ours] + [0, 0, 127]).astype(np.uint8)
        row = np.concatenate([left, right], axis=1)
        cv2.putText(row, f"frame {index}", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 0), 4)
        rows.append(row)
    picture = np.concatenate(rows, axis=0)
    scale = min(1.0, 2400 / picture.shape[1])
    picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(sheet), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))


def found_faces(output: Path) -> dict[int, list[list[float]]]:
    """Per frame, the boxes the search found (score >= 0.3, not filled in
    by tracking) in the plan beside `output`."""
    plan = json.loads(Path(f"{output}.plan.json").read_text())
    found: dict[int, list[list[float]]] = {}
    for region in plan["regions"]:
        if region["kind"] != "face":
            continue
        for frame, x1, y1, x2, y2, score in region.get("track", []):
            if score >= 0.3:
                found.setdefault(frame, []).append([x1, y1, x2, y2])
    return found


def _faces_uncovered(
    clip: Path, output: Path, found: dict[int, list[list[float]]]
) -> tuple[int, list[tuple[int, list[int]]]]:
    """How many of `found` a second look at the original confirms, and those
    of them `output` leaves uncovered (frame, box)."""
    second_look = SecondLook()
    faces, missed = 0, []
    with av.open(str(clip)) as a, av.open(str(output)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        for index, (original, anonymized) in enumerate(pairs):
            boxes = found.get(index, [])
            if not boxes:
                continue
            before = original.to_ndarray(format="rgb24")
            changed = changed_pixels(before, anonymized.to_ndarray(format="rgb24"))
            for box in boxes:
                if not second_look.look(before, np.array(box, np.float32)).confirmed:
                    continue
                faces += 1
                x1, y1, x2, y2 = (round(v) for v in box)
                region = changed[max(0, y1) : y2, max(0, x1) : x2]
                if region.size and float(np.mean(region)) < 0.5:
                    missed.append((index, [x1, y1, x2, y2]))
    return faces, missed


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
