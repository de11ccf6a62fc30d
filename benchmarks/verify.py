"""Measure veil's verification on ../shared/data.

    python benchmarks/verify.py [--data ../shared/data] [--json FILE] [--skip-wider]

1. identities-dev, the recognition attack: one original photo per person is
   the gallery; every other photo is a probe. Each probe is anonymized
   (solid, veil's default; blur and pixelate for comparison) and its face
   region, aligned with the landmarks of the original probe (a stronger
   attacker than a real one), is matched to the nearest gallery face with
   dlib's ResNet. Rank-1 identification should be at chance (1/13) or below
   for anonymized probes and well above it for the originals.
2. widerface-dev: `veil anonymize` with its default verification; the share
   of outputs that pass, and for every detection failure whether it is a
   true miss: a ground-truth face left uncovered (the coverage rule of
   ../shared/data/README.md) under the failure's box.

Needs veil[audit]. Says so and stops when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from veil import anonymize_image
from veil.detection.detect import CenterFaceDetector
from veil.detection.retinaface import RetinaFaceDetector
from veil.media.image import read_image
from veil.options import AnonymizeOptions, MaskMethod, MaskOptions
from veil.recognition import FaceRecognizer

from coverage import changed_pixels, face_covered


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-wider", action="store_true")
    parser.add_argument("--keep", type=Path, help="write the WIDER outputs here to look at the failures")
    args = parser.parse_args()
    results: dict[str, object] = {}
    identities = args.data / "identities-dev"
    if identities.is_dir():
        results["identities"] = identification(identities)
    else:
        print(f"skipped: no {identities} (see ../shared/data/README.md)")
    wider = args.data / "widerface-dev"
    if wider.is_dir() and not args.skip_wider:
        results["widerface"] = wider_verification(wider, args.keep)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def identification(root: Path) -> dict[str, object]:
    finder = RetinaFaceDetector(threshold=0.8)
    recognizer = FaceRecognizer()
    detector = CenterFaceDetector()
    people = sorted(p for p in root.iterdir() if p.is_dir())
    gallery: list[np.ndarray] = []
    probes: list[tuple[int, dict[str, np.ndarray]]] = []
    for person, folder in enumerate(people):
        for n, path in enumerate(sorted(folder.glob("*.jpg"))):
            image = read_image(path).pixels
            found = finder.detect(image)
            if not len(found):
                print(f"no face found in {path.name}; left out")
                continue
            box = tuple(found.boxes[int(np.argmax(found.scores))].tolist())
            if n == 0:
                gallery.append(recognizer.describe(image, box))
                continue
            versions = {"original": recognizer.describe(image, box)}
            for method in MaskMethod:
                options = AnonymizeOptions(mask=MaskOptions(method=method))
                masked = anonymize_image(image, options, detector).image
                versions[method.value] = recognizer.describe(masked, box, aligned_on=image)
            probes.append((person, versions))
    table = np.stack(gallery)
    result: dict[str, object] = {
        "people": len(people),
        "probes": len(probes),
        "chance": round(1 / len(people), 3),
    }
    for version in ("original", *(m.value for m in MaskMethod)):
        hits = sum(
            int(np.argmin(np.linalg.norm(table - descriptors[version], axis=1))) == person
            for person, descriptors in probes
        )
        result[f"rank1_{version}"] = round(hits / len(probes), 3)
        result[f"rank1_{version}_hits"] = hits
    return result


def wider_verification(wider: Path, keep: Path | None) -> dict[str, object]:
    gt = json.loads((wider / "gt.json").read_text())["images"]
    with tempfile.TemporaryDirectory(prefix="veil-verify-bench-") as tmp:
        out = keep or Path(tmp) / "out"
        started = time.perf_counter()
        command = [sys.executable, "-m", "veil", "anonymize", str(wider / "images"), "-o", str(out), "-q"]
        subprocess.run(command, check=False)
        elapsed = time.perf_counter() - started
        report = json.loads((out / "veil-report.json").read_text())
        by_name = {Path(f["input"]).name: f for f in report["files"]}
        passed = true_misses = false_alarms = reviewed = useful_reviews = 0
        uncovered_total = uncovered_flagged = uncovered_in_review = 0
        by_check: dict[str, int] = {}
        for item in gt:
            name = Path(item["file"]).name
            file = by_name[name]
            verification = file["verification"]
            passed += verification["passed"]
            reviewed += len(verification["review"])
            original = read_image(wider / item["file"]).pixels
            output = read_image(out / Path(item["file"]).relative_to("images")).pixels
            changed = changed_pixels(original, output)
            uncovered = [
                box
                for box, invalid in zip(item["boxes"], item["invalid"], strict=True)
                if not invalid and not face_covered(changed, box)
            ]
            for failure in verification["failures"]:
                by_check[failure["check"]] = by_check.get(failure["check"], 0) + 1
            flagged = [f["box"] for f in verification["failures"] if f["check"] == "detection"]
            to_review = [f["box"] for f in verification["review"] if f["box"]]
            useful_reviews += sum(any(_overlaps(box, face) for face in uncovered) for box in to_review)
            uncovered_in_review += sum(any(_overlaps(box, face) for box in to_review) for face in uncovered)
            for box in flagged:
                if any(_overlaps(box, face) for face in uncovered):
                    true_misses += 1
                else:
                    false_alarms += 1
            uncovered_total += len(uncovered)
            uncovered_flagged += sum(any(_overlaps(box, face) for box in flagged) for face in uncovered)
    return {
        "images": len(gt),
        "passed": passed,
        "pass_share": round(passed / len(gt), 3),
        "detection_failures": true_misses + false_alarms,
        "true_misses": true_misses,
        "not_misses": false_alarms,
        "failures_by_check": by_check,
        "review_items": reviewed,
        "review_items_on_uncovered_faces": useful_reviews,
        "uncovered_faces": uncovered_total,
        "uncovered_faces_flagged": uncovered_flagged,
        "uncovered_faces_in_review": uncovered_in_review,
        "images_per_s_with_verification": round(len(gt) / elapsed, 2),
    }


def _overlaps(found: list[int], face: list[float]) -> bool:
    """The failure's box and a ground-truth face (x, y, w, h) share a centre."""
    x, y, w, h = face
    cx, cy = (found[0] + found[2]) / 2, (found[1] + found[3]) / 2
    inside = x <= cx <= x + w and y <= cy <= y + h
    return inside or (found[0] <= x + w / 2 <= found[2] and found[1] <= y + h / 2 <= found[3])


if __name__ == "__main__":
    sys.exit(main())
