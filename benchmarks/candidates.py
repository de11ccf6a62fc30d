"""Where the false masks come from: every candidate of the search, by pass, size and score.

    python benchmarks/candidates.py [--data ../shared/data] [--sets negatives,upright,full]
                                    [--looks] [--limit N] [--json FILE]

For each photo of a set, CenterFace's search (`veil.detection.detect`) is run pass by
pass and its candidates merged as veil merges them. Each candidate is a true
face when it overlaps a ground-truth box (any, invalid ones included) by an
IoU of 0.3; on the people-free photos (`negatives.py`) every candidate is
false. Printed per set:
- candidates by height and score band, true and false;
- candidates by the pass that scored them best;
- with --looks, how often a second look (`veil.detection.second_look`) confirms true
  and false candidates, by score band (slow: every candidate is looked at);
- on widerface-dev, recall and collateral when every candidate is masked
  (veil before it chose) and when only candidates touching a true face are
  (an oracle no detector can beat with these boxes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.detection.detect import CenterFaceDetector, detection_passes
from veil.detection.second_look import SecondLook
from veil.detections import Detections
from veil.masks import draw, face_masks
from veil.media.image import read_image
from veil.options import DetectionOptions, MaskOptions

sys.path.insert(0, str(Path(__file__).parent))
from coverage import BIN_NAMES, Tally, changed_pixels, collateral, face_covered, height_bin
from negatives import stage as stage_negatives
from photos import Face, stage_set, true_faces

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
SCORE_BANDS = (0.1, 0.2, 0.3, 0.5, 1.0)
HEIGHTS = (0, 12, 16, 24, 32, 48, 64, 128, 10**9)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sets", default="negatives,upright,full")
    parser.add_argument("--looks", action="store_true", help="look again at every candidate (slow)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos of each set")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    detector = CenterFaceDetector()
    second_look = SecondLook() if args.looks else None
    results = {}
    with tempfile.TemporaryDirectory(prefix="veil-candidates-") as tmp:
        for name in args.sets.split(","):
            photos = staged_set(args.data, Path(tmp), name)
            if photos is None:
                print(f"{name}: skipped, no evaluation data under {args.data}")
                continue
            if args.limit:
                photos = photos[: args.limit]
            results[name] = measure(photos, detector, second_look)
            print_set(name, results[name])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def staged_set(data: Path, tmp: Path, name: str) -> list[tuple[Path, list[Face] | None]] | None:
    """(photo, its true faces; None for a people-free photo) for one set."""
    if name == "negatives":
        return [(path, None) for path in stage_negatives(data, tmp / name)]
    wider = data / "widerface-dev"
    if not (wider / "gt.json").is_file():
        return None
    gt = json.loads((wider / "gt.json").read_text())["images"]
    manifest = {f["file"]: f for f in json.loads((wider / "manifest.json").read_text())["files"]}
    staged = stage_set(wider, gt, manifest, tmp / name, name)
    faces = true_faces(gt, manifest, full=name == "full")
    return [(path, faces[key]) for key, path in staged.items()]


def measure(
    photos: list[tuple[Path, list[Face] | None]], detector: CenterFaceDetector, second_look: SecondLook | None
) -> dict[str, object]:
    by_size: Counter[str] = Counter()
    by_pass: Counter[str] = Counter()
    looked: Counter[str] = Counter()
    every, oracle = Tally(), Tally()
    for path, faces in photos:
        image = read_image(path).pixels
        candidates, best_pass = search_by_pass(image, detector)
        true = is_true(candidates, faces)
        heights = candidates.boxes[:, 3] - candidates.boxes[:, 1]
        for index, (height, score) in enumerate(zip(heights, candidates.scores, strict=True)):
            label = "true" if true[index] else "false"
            by_size[f"{label} {_band(float(height), HEIGHTS)} px {_band(float(score), SCORE_BANDS)}"] += 1
            by_pass[f"{label} {best_pass[index]}"] += 1
            if second_look is not None:
                seen = second_look.look(image, candidates.boxes[index])
                verdict = "confirmed" if seen.confirmed else "not confirmed"
                looked[f"{label} {_band(float(score), SCORE_BANDS)} {verdict}"] += 1
        if faces is not None:
            touching = candidates.select(np.flatnonzero(_overlaps(candidates, faces) > 0))
            score_masks(image, candidates, faces, every)
            score_masks(image, touching, faces, oracle)
    result: dict[str, object] = {"by_size": dict(by_size), "by_pass": dict(by_pass), "looks": dict(looked)}
    if every.images:
        result["every_candidate"] = every.summary()
        result["only_touching_true_faces"] = oracle.summary()
    return result


def search_by_pass(
    image: npt.NDArray[np.uint8], detector: CenterFaceDetector
) -> tuple[Detections, list[str]]:
    """The merged candidates of veil's search, and for each the pass that scored it best."""
    height, width = image.shape[:2]
    found, names = [], []
    for search, part in detector.iter_pass_finds(image, detection_passes(width, height, DetectionOptions())):
        found.append(part)
        names += [f"{search.scale:.2f}x{' mirrored' if search.mirrored else ''}"] * len(part)
    everything = Detections.concatenate(found).clipped(width, height)
    merged = everything.merged()
    best = []
    for box, score in zip(merged.boxes, merged.scores, strict=True):
        same = np.flatnonzero((everything.scores == score) & np.all(everything.boxes == box, axis=1))
        best.append(names[int(same[0])] if len(same) else "?")
    return merged, best


def is_true(candidates: Detections, faces: list[Face] | None) -> npt.NDArray[np.bool_]:
    if not faces:
        return np.zeros(len(candidates), bool)
    return _overlaps(candidates, faces) >= 0.3


def _overlaps(candidates: Detections, faces: list[Face]) -> npt.NDArray[np.float64]:
    """Each candidate's best IoU with any true face (0 with none)."""
    if not faces or not len(candidates):
        return np.zeros(len(candidates))
    truth = np.array([[x, y, x + w, y + h] for x, y, w, h in (f.box for f in faces)], np.float64)
    boxes = candidates.boxes.astype(np.float64)[:, None, :]
    low = np.maximum(boxes[..., :2], truth[None, :, :2])
    high = np.minimum(boxes[..., 2:], truth[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    boxes = boxes[:, 0, :]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    true_areas = (truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1])
    iou = inter / np.maximum(areas[:, None] + true_areas[None, :] - inter, 1e-9)
    result: npt.NDArray[np.float64] = iou.max(axis=1)
    return result


def score_masks(image: npt.NDArray[np.uint8], masked: Detections, faces: list[Face], tally: Tally) -> None:
    """Recall and collateral of veil's head masks drawn on `masked`."""
    changed = changed_pixels(image, draw(image, face_masks(masked), MaskOptions()))
    tally.images += 1
    valid = [f.box for f in faces if f.valid]
    for box in valid:
        covered = face_covered(changed, box)
        tally.add("all", covered)
        tally.add(height_bin(box[3]), covered)
    count, total = collateral(changed, valid)
    tally.collateral_changed += count
    tally.collateral_total += total


def _band(value: float, edges: tuple[float, ...]) -> str:
    for low, high in itertools.pairwise(edges):
        if low <= value < high:
            return f"{low:g}-{high:g}" if high < 10**9 else f">={low:g}"
    return f">={edges[-1]:g}"


def print_set(name: str, result: dict) -> None:
    print(f"\n== {name}")
    for title in ("by_size", "by_pass", "looks"):
        if result[title]:
            print(f"{title}:")
            for key, count in sorted(result[title].items()):
                print(f"  {key:40s} {count}")
    for title in ("every_candidate", "only_touching_true_faces"):
        if title in result:
            summary = result[title]
            recall = " ".join(f"{b}={summary['recall'][b]}" for b in ("all", *BIN_NAMES))
            print(f"{title:26s} {recall} collateral={summary['collateral']}")


if __name__ == "__main__":
    sys.exit(main())
