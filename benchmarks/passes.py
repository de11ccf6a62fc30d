"""Which search passes find faces that no other pass finds, and what int8 and focus cost.

    python benchmarks/passes.py [--data ../shared/data] [--sets full,upright,negatives]
                                [--focus 0.01,0.02,0.05] [--limit N] [--json FILE]

For each photo, CenterFace's search (`veil.detection.detect`) is run pass by pass,
once with float convolutions and once with int8 ones (`veil.detection.quantize`),
and the finest pass once more over the whole image and over only the
windows that the next pass points to (`veil.detection.detect.focus_windows`) at each
`--focus` threshold. Passes are named by rank: "finest", "next", ...,
"coarsest". Each pass's candidates are drawn as veil's head masks, and a
true face counts as found by a pass when its mask covers it by the coverage
rule of ../shared/data/README.md. Printed per set, by face height:
- faces found by all passes together, in float;
- faces that only one pass finds (what dropping it would lose);
- faces lost, and faces gained, when one pass runs in int8 and the others
  in float, when every pass does, and when the finest pass is focused;
- seconds per pass in float and in int8, of the focused finest pass, and
  the share of the image it searched;
- candidates per pass (on the people-free photos all are false).
The faces are found before veil chooses among candidates, so these are upper
bounds of recall; benchmarks/photos.py measures the whole of veil.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from veil.detection.detect import CenterFaceDetector, Evidence, Pass, detection_passes, focus_windows
from veil.detections import Detections
from veil.masks import draw, face_masks
from veil.media.image import read_image
from veil.options import DetectionOptions, MaskOptions

sys.path.insert(0, str(Path(__file__).parent))
from candidates import staged_set

from coverage import BIN_NAMES, changed_pixels, face_covered, height_bin

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
KINDS = ("float", "int8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sets", default="full,upright,negatives")
    parser.add_argument("--focus", default="0.01,0.02,0.05", help="focus thresholds to try")
    parser.add_argument("--no-int8", action="store_true", help="float passes only")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos of each set")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    detectors = {kind: searcher(kind == "int8") for kind in KINDS if kind == "float" or not args.no_int8}
    results = {}
    with tempfile.TemporaryDirectory(prefix="veil-passes-") as tmp:
        for name in args.sets.split(","):
            photos = staged_set(args.data, Path(tmp), name)
            if photos is None:
                print(f"{name}: skipped, no evaluation data under {args.data}")
                continue
            focus = [float(t) for t in args.focus.split(",") if t]
            results[name] = measure(photos[: args.limit or None], detectors, focus)
            print_set(name, results[name])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def searcher(int8: bool) -> CenterFaceDetector:
    """veil's CPU detector with every pass in float, or every pass in int8."""
    detector = CenterFaceDetector(DetectionOptions(int8_finest=int8))
    if int8:
        detector._net = detector._int8_net  # type: ignore[assignment]
    return detector


def rank(search: Pass, passes: list[Pass]) -> str:
    scales = sorted({p.scale for p in passes}, reverse=True)
    index = scales.index(search.scale)
    name = "finest" if index == 0 else "coarsest" if index == len(scales) - 1 else f"finest/{2**index}"
    return name + (" mirrored" if search.mirrored else "")


def measure(photos: list, detectors: dict[str, CenterFaceDetector], focus: list[float]) -> dict[str, object]:
    seconds: Counter[str] = Counter()
    candidates: Counter[str] = Counter()
    faces: Counter[str] = Counter()
    found: Counter[str] = Counter()
    only: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    gained: Counter[str] = Counter()
    area: Counter[str] = Counter()
    for path, truth in photos:
        image = read_image(path).pixels
        height, width = image.shape[:2]
        passes = detection_passes(width, height, DetectionOptions())
        valid = [f.box for f in truth or [] if f.valid]
        covered: dict[tuple[str, str], list[bool]] = {}

        def cover(kind: str, name: str, part: Detections, image=image, valid=valid, covered=covered) -> None:
            candidates[f"{kind} {name}"] += len(part)
            changed = changed_pixels(image, draw(image, face_masks(part), MaskOptions()))
            covered[kind, name] = [face_covered(changed, box) for box in valid]

        for kind, detector in detectors.items():
            for search in passes:
                started = time.perf_counter()
                (_, part), *_ = detector.iter_pass_finds(image, [search])
                seconds[f"{kind} {rank(search, passes)}"] += time.perf_counter() - started
                cover(kind, rank(search, passes), part)
        variants = (
            ["int8 " + rank(p, passes) for p in passes] + ["int8 every pass"] if "int8" in detectors else []
        )
        finest = next((p for p in passes if p.finest), None)
        plain = next((p for p in passes if not p.finest and not p.mirrored), None)
        if finest is not None and plain is not None:
            detector = detectors["float"]
            evidence = Evidence.empty(image, plain.scale)
            detector._detect_at_scale(image, plain.scale, heat=evidence)
            for threshold in focus:
                label = f"focus {threshold:g}"
                windows = focus_windows(evidence, threshold)
                area[label] += sum(w * h for _, _, w, h in windows) / (width * height)
                area[f"{label} photos"] += 1
                started = time.perf_counter()
                part = detector._detect_finest(image, finest.scale, evidence, threshold)
                seconds[f"float finest, {label}"] += time.perf_counter() - started
                cover(label, "finest", part)
                variants.append(label)
        names = [rank(p, passes) for p in passes]
        for index, box in enumerate(valid):
            size = height_bin(box[3])
            by_float = {name for name in names if covered["float", name][index]}
            faces[size] += 1
            found[size] += bool(by_float)
            if len(by_float) == 1:
                only[f"{next(iter(by_float))} {size}"] += 1
            for variant in variants:
                kind, _, changed = variant.partition(" ")
                if variant == "int8 every pass":
                    seen = any(covered["int8", name][index] for name in names)
                elif kind == "int8":
                    seen = any(covered["int8" if name == changed else "float", name][index] for name in names)
                else:
                    seen = covered[variant, "finest"][index] or any(
                        covered["float", name][index] for name in names if name != "finest"
                    )
                lost[f"{variant} {size}"] += bool(by_float) and not seen
                gained[f"{variant} {size}"] += not by_float and seen
    return {
        "faces": dict(faces),
        "found_float": dict(found),
        "only_by": dict(only),
        "lost": dict(lost),
        "gained": dict(gained),
        "seconds": {key: round(value, 2) for key, value in seconds.items()},
        "candidates": dict(candidates),
        "focus_area": {
            key: round(value / area[f"{key} photos"], 3) for key, value in area.items() if "photos" not in key
        },
    }


def print_set(name: str, result: dict) -> None:
    print(f"\n== {name}")
    bins = [b for b in BIN_NAMES if b in result["faces"]]
    print(f"{'':34s}" + "".join(f"{b:>9s}" for b in bins))
    print(f"{'faces':34s}" + "".join(f"{result['faces'][b]:9d}" for b in bins))
    print(
        f"{'found by some pass (float)':34s}" + "".join(f"{result['found_float'].get(b, 0):9d}" for b in bins)
    )
    rows: dict[str, dict[str, int]] = defaultdict(dict)
    for title, table in (
        ("only by", result["only_by"]),
        ("lost:", result["lost"]),
        ("gained:", result["gained"]),
    ):
        for key, count in table.items():
            label, size = key.rsplit(" ", 1)
            rows[f"{title} {label}"][size] = count
    for label in sorted(rows):
        print(f"{label:34s}" + "".join(f"{rows[label].get(b, 0):9d}" for b in bins))
    for key in sorted(result["seconds"]):
        print(f"  {key:40s} {result['seconds'][key]:8.2f} s")
    for key in sorted(result["candidates"]):
        print(f"  {key:40s} {result['candidates'][key]:6d} candidates")
    for key, share in result["focus_area"].items():
        print(f"  {key}: the finest pass searched {share:.1%} of the image")


if __name__ == "__main__":
    sys.exit(main())
