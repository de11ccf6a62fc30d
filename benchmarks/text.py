"""Text in photos: licence plates and a name badge hidden, protest signs left readable.

    python benchmarks/text.py [--data ../shared/data] [--verify] [--keep DIR] [--json FILE]
                              [--veil-src OTHER/src] [--veil-option=--precision=high]

Three sets, each anonymized by one `veil anonymize` call (with `--no-verify`
unless --verify is given), timed as the wall time of that call over its
photos (model loading included, so the one-photo set is dominated by it):

- plates: the 24 photos of ../shared/data/plates-dev, one labelled plate
  each (other plates in a photo are unlabelled and not scored). A plate is
  covered when at least 50% of its box changed (by more than 12 in a
  channel, both images upright: the coverage rule of
  ../shared/data/README.md). Goal: every plate covered.
- badge: samples/astronaut-phone.jpg, the name line of the badge on the
  astronaut's chest (BADGE_NAME_LINE). Share of its box changed; masked when
  at least 50%. Goal: masked.
- signs: the protest signs annotated in benchmarks/signs.json, on
  widerface-dev's 2--Demonstration photos resized back to their original
  WIDER size (photos.stage_set "full"). Per sign, the share of its box that
  veil masked: pixels changed that hold veil's fill colour (the plan's mask
  colour, within JPEG's noise), as negatives.py measures it; also the share
  changed at all. Goal: at most 10% of each sign masked (a head mask that
  overlaps a sign counts too: faces in front of signs are part of the set),
  and the share masked by text masks alone (the plan's text regions).

Each set also counts the regions of veil's plans by kind and decision (face,
manual, text...). `--veil-src` runs another checkout's veil (PYTHONPATH),
for before/after; the measuring (upright reading) uses the veil this script
imports. With --keep, the staged photos, outputs and contact sheets (PNG:
plates.png, each plate's surroundings before and after; signs.png, each sign
photo before and after with its signs outlined; badge.png) stay in DIR.
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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from veil.media.image import read_image
from veil.options import MaskOptions

from coverage import COVERED_SHARE, changed_pixels
from photos import read_wider, stage_set

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
SIGNS = Path(__file__).parent / "signs.json"
SAMPLE = REPO / "samples" / "astronaut-phone.jpg"
# The badge's name line, [x, y, w, h] in the upright 512x512 pixels of the
# sample (read_image applies its EXIF orientation): found by looking at a 10x
# crop of x 270-340, y 330-385 with a 5 px grid drawn on it, and drawing this
# box back on the crop to check that it holds the line's letters (about x
# 286-320, y 367-374; the badge is a little tilted) and little else.
BADGE_NAME_LINE = (285, 366, 36, 9)
SIGN_MASKED_AT_MOST = 0.10
_FILL_NOISE = 16  # what JPEG leaves of veil's flat fill (as negatives.py)
Box = list[int] | tuple[int, ...]  # x, y, w, h


@dataclass(frozen=True)
class Run:
    """One veil call over a folder: where each staged photo's output and plan
    are, the call's wall time and exit status."""

    outputs: dict[str, Path]
    plans: dict[str, Path]
    seconds: float
    exit: int


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--verify", action="store_true", help="let veil verify its outputs (slower)")
    parser.add_argument("--keep", type=Path, help="keep the outputs and contact sheets here")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--veil-src", type=Path, help="run the veil in this src folder (before/after)")
    parser.add_argument(
        "--veil-option",
        action="append",
        default=[],
        help="pass this to veil anonymize (e.g. --precision=high)",
    )
    args = parser.parse_args()
    if args.keep and args.keep.exists():
        parser.error(f"--keep {args.keep}: choose a folder that does not exist yet")
    env = dict(os.environ, PYTHONPATH=str(args.veil_src.resolve())) if args.veil_src else None
    options = [*args.veil_option, *([] if args.verify else ["--no-verify"])]
    results: dict[str, object] = {
        "veil_src": str(args.veil_src.resolve()) if args.veil_src else "installed",
        "options": options,
    }
    with tempfile.TemporaryDirectory(prefix="veil-text-") as tmp:
        root = args.keep or Path(tmp)
        labels = read_plates(args.data / "plates-dev")
        if labels:
            plates = {key: _copy(args.data / "plates-dev" / key, root / "plates" / key) for key in labels}
            run = run_veil(plates, root / "veil-plates", options, env)
            scored = results["plates"] = score_plates(plates, labels, run)
            if args.keep:
                plate_sheet(plates, run, scored, args.keep / "plates.png")
        badge = {SAMPLE.name: _copy(SAMPLE, root / "sample" / SAMPLE.name)}
        run = run_veil(badge, root / "veil-sample", options, env)
        results["badge"] = score_badge(badge[SAMPLE.name], run)
        if args.keep:
            badge_sheet(badge[SAMPLE.name], run.outputs[SAMPLE.name], args.keep / "badge.png")
        signs = read_signs(SIGNS)
        sign_photos = stage_signs(args.data / "widerface-dev", signs, root / "signs")
        if sign_photos:
            run = run_veil(sign_photos, root / "veil-signs", options, env)
            results["signs"] = score_signs(sign_photos, signs, run)
            if args.keep:
                sign_sheet(sign_photos, signs, run, args.keep / "signs.png")
    print_results(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def read_plates(plates: Path) -> dict[str, dict[str, Any]]:
    """plates-dev's labelled plate ({"box": [x, y, w, h], "region"}) by photo;
    none (said) when absent."""
    if not (plates / "gt.json").is_file():
        print(f"plates skipped: no evaluation data at {plates} (see ../shared/data/README.md)")
        return {}
    return {item["file"]: item for item in json.loads((plates / "gt.json").read_text())["images"]}


def read_signs(path: Path) -> dict[str, list[list[int]]]:
    """The annotated signs, [x, y, w, h] in the full-size staged pixels, by
    the file's name in widerface-dev's gt.json."""
    signs: dict[str, list[list[int]]] = json.loads(path.read_text())["signs"]
    return signs


def stage_signs(wider: Path, signs: dict[str, list[list[int]]], folder: Path) -> dict[str, Path]:
    """The sign photos resized back to their original WIDER size; none (said)
    when the data is absent."""
    if not (wider / "gt.json").is_file():
        print(f"signs skipped: no evaluation data at {wider} (see ../shared/data/README.md)")
        return {}
    read = read_wider(wider)
    if read is None:
        return {}
    gt, manifest = read
    return stage_set(wider, [item for item in gt if item["file"] in signs], manifest, folder, "full")


def run_veil(staged: dict[str, Path], out: Path, options: list[str], env: dict[str, str] | None) -> Run:
    """Anonymize the staged photos' folder in one veil call, timed."""
    folder = next(iter(staged.values())).parent
    report = out / "veil-report.json"
    command = [sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out)]
    command += ["--report", str(report), *options, "-q"]
    started = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1) or not report.is_file():
        print(f"veil exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    outputs = {key: out / path.name for key, path in staged.items()}
    plans = {key: path.with_name(path.name + ".plan.json") for key, path in outputs.items()}
    return Run(outputs, plans, seconds, done.returncode)


def upright(path: Path) -> npt.NDArray[np.uint8]:
    """Pixels as veil sees them: EXIF orientation applied, sRGB."""
    return read_image(path).pixels


def regions(plan: Path) -> tuple[Counter[str], tuple[int, int, int]]:
    """A plan's regions counted as KIND:DECISION (KIND/LABEL:DECISION where
    labelled), and its fill colour."""
    if not plan.is_file():
        return Counter(), tuple(MaskOptions().color)  # type: ignore[return-value]
    data = json.loads(plan.read_text())
    counts: Counter[str] = Counter()
    for region in data.get("regions", []):
        kind = region.get("kind", "?") + (f"/{region['label']}" if region.get("label") else "")
        counts[f"{kind}:{region.get('decision', '?')}"] += 1
    colour = data.get("mask", {}).get("color") or MaskOptions().color
    return counts, (int(colour[0]), int(colour[1]), int(colour[2]))


def text_masks(plan: Path, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Where a photo's plan masks text (its `text` regions decided `mask`),
    as a boolean image: what of a sign's masked share is text, not heads."""
    drawn = np.zeros(shape[:2], bool)
    if not plan.is_file():
        return drawn
    for region in json.loads(plan.read_text()).get("regions", []):
        if region.get("kind") == "text" and region.get("decision") == "mask" and "box" in region:
            x1, y1, x2, y2 = (round(v) for v in region["box"])
            drawn[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = True
    return drawn


def box_share(mask: npt.NDArray[np.bool_], box: Box) -> float:
    """The share of an [x, y, w, h] box's pixels (clipped to the image) set in `mask`."""
    x, y, w, h = box
    height, width = mask.shape
    x1, y1, x2, y2 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    return float(mask[y1:y2, x1:x2].mean())


def filled(output: npt.NDArray[np.uint8], colour: tuple[int, int, int]) -> npt.NDArray[np.bool_]:
    """Pixels that hold veil's fill colour, within JPEG's noise."""
    return np.asarray(np.abs(output.astype(np.int16) - np.array(colour, np.int16)).max(axis=2) <= _FILL_NOISE)


def _pair(photo: Path, output: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8] | None]:
    original = upright(photo)
    return original, (upright(output) if output.is_file() else None)


def score_plates(plates: dict[str, Path], gt: dict[str, dict[str, Any]], run: Run) -> dict[str, Any]:
    """Per plate, the share of its labelled box changed; covered at 50%."""
    rows = []
    kinds: Counter[str] = Counter()
    for key, photo in plates.items():
        original, output = _pair(photo, run.outputs[key])
        counts, _ = regions(run.plans[key])
        kinds += counts
        row: dict[str, object] = {"photo": key, "region": gt[key]["region"], "box": gt[key]["box"]}
        if output is None:
            row |= {"error": "no output", "changed": 0.0, "covered": False}
        else:
            share = box_share(changed_pixels(original, output), gt[key]["box"])
            row |= {"changed": round(share, 3), "covered": share >= COVERED_SHARE}
        rows.append(row | {"regions": dict(counts)})
    return {
        "photos": len(rows),
        "covered": sum(1 for r in rows if r["covered"]),
        "seconds_per_photo": round(run.seconds / len(rows), 2),
        "veil_exit": run.exit,
        "regions": dict(sorted(kinds.items())),
        "rows": rows,
    }


def score_badge(photo: Path, run: Run) -> dict[str, object]:
    """The share of the badge's name line changed (masked at 50%), and held
    in the fill colour."""
    original, output = _pair(photo, run.outputs[photo.name])
    counts, colour = regions(run.plans[photo.name])
    result: dict[str, object] = {"box": list(BADGE_NAME_LINE), "regions": dict(counts)}
    if output is None:
        return result | {"error": "no output", "changed": 0.0, "masked": False}
    changed = changed_pixels(original, output)
    share = box_share(changed, BADGE_NAME_LINE)
    return result | {
        "changed": round(share, 3),
        "filled": round(box_share(changed & filled(output, colour), BADGE_NAME_LINE), 3),
        "masked": share >= COVERED_SHARE,
        "seconds_per_photo": round(run.seconds, 2),
        "veil_exit": run.exit,
    }


def score_signs(photos: dict[str, Path], signs: dict[str, list[list[int]]], run: Run) -> dict[str, object]:
    """Per sign, the share of its box masked (changed and in the fill colour)
    and changed at all; the mean, the max and the signs over 10% masked."""
    rows = []
    kinds: Counter[str] = Counter()
    for key, photo in photos.items():
        original, output = _pair(photo, run.outputs[key])
        counts, colour = regions(run.plans[key])
        kinds += counts
        changed = np.zeros(original.shape[:2], bool) if output is None else changed_pixels(original, output)
        masked = changed if output is None else changed & filled(output, colour)
        by_text = masked & text_masks(run.plans[key], original.shape)
        for index, box in enumerate(signs[key]):
            x, y, w, h = box
            height, width = original.shape[:2]
            if x < 0 or y < 0 or x + w > width or y + h > height:
                print(f"{Path(key).name} sign {index}: {box} reaches outside the {width}x{height} photo")
            rows.append(
                {
                    "photo": Path(key).stem,
                    "sign": index,
                    "box": box,
                    "masked": round(box_share(masked, box), 3),
                    "masked_by_text": round(box_share(by_text, box), 3),
                    "changed": round(box_share(changed, box), 3),
                    "error": None if output is not None else "no output",
                }
            )
    shares = [float(r["masked"]) for r in rows]  # type: ignore[arg-type]
    by_text = [float(r["masked_by_text"]) for r in rows]  # type: ignore[arg-type]
    return {
        "photos": len(photos),
        "signs": len(rows),
        "mean_masked": round(float(np.mean(shares)), 3),
        "max_masked": round(max(shares), 3),
        "signs_over_10pct_masked": sum(1 for s in shares if s > SIGN_MASKED_AT_MOST),
        "mean_masked_by_text": round(float(np.mean(by_text)), 3),
        "max_masked_by_text": round(max(by_text), 3),
        "seconds_per_photo": round(run.seconds / len(photos), 2),
        "veil_exit": run.exit,
        "regions": dict(sorted(kinds.items())),
        "rows": rows,
    }


def print_results(results: dict[str, object]) -> None:
    print(f"veil: {results['veil_src']}  options: {' '.join(results['options'])}")  # type: ignore[arg-type]
    plates = results.get("plates")
    if isinstance(plates, dict):
        for row in plates["rows"]:
            mark = "covered" if row["covered"] else "OPEN"
            print(f"  plate {row['photo']:48s} changed={row['changed']:.3f} {mark:7s} {row['regions']}")
        print(
            f"plates: {plates['covered']}/{plates['photos']} covered  "
            f"{plates['seconds_per_photo']} s/photo  regions {plates['regions']}"
        )
    badge = results["badge"]
    assert isinstance(badge, dict)
    print(
        f"badge name line {badge['box']}: changed={badge['changed']} filled={badge.get('filled')} "
        f"{'masked' if badge['masked'] else 'NOT masked'}  {badge.get('seconds_per_photo')} s/photo  "
        f"regions {badge['regions']}"
    )
    signs = results.get("signs")
    if isinstance(signs, dict):
        for row in signs["rows"]:
            flag = "  OVER 10%" if row["masked"] > SIGN_MASKED_AT_MOST else ""
            print(
                f"  sign {row['photo']:52s} #{row['sign']} masked={row['masked']:.3f} "
                f"(by text {row['masked_by_text']:.3f}) changed={row['changed']:.3f}{flag}"
            )
        print(
            f"signs: {signs['signs']} in {signs['photos']} photos  mean masked={signs['mean_masked']} "
            f"max={signs['max_masked']}  over 10%: {signs['signs_over_10pct_masked']}  "
            f"by text masks: mean={signs['mean_masked_by_text']} max={signs['max_masked_by_text']}  "
            f"{signs['seconds_per_photo']} s/photo  regions {signs['regions']}"
        )


def _fit(pixels: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    scale = side / max(pixels.shape[:2])
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    return np.asarray(cv2.resize(pixels, size, interpolation=interpolation), np.uint8)


def _tile(images: list[npt.NDArray[np.uint8]], side: int, caption: str) -> Image.Image:
    """Images side by side, each fitted in side x side, a caption above."""
    fitted = [_fit(pixels, side) for pixels in images]
    tile = Image.new("RGB", (len(images) * (side + 4), max(f.shape[0] for f in fitted) + 20), "white")
    for index, pixels in enumerate(fitted):
        tile.paste(Image.fromarray(pixels), (index * (side + 4), 16))
    ImageDraw.Draw(tile).text((2, 2), caption, fill="black")
    return tile


def _grid(tiles: list[Image.Image], target: Path, columns: int) -> None:
    width = max(tile.size[0] for tile in tiles)
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    heights = [max(tile.size[1] for tile in row) for row in rows]
    sheet = Image.new("RGB", (columns * width, sum(heights)), "white")
    for index, row in enumerate(rows):
        for column, tile in enumerate(row):
            sheet.paste(tile, (column * width, sum(heights[:index])))
    sheet.save(target)


def _around(pixels: npt.NDArray[np.uint8], box: Box, grow: float = 1.0) -> npt.NDArray[np.uint8]:
    """A crop of `pixels` around [x, y, w, h], grown `grow` times its larger side on each side."""
    x, y, w, h = box
    margin = round(grow * max(w, h))
    x1, y1 = max(0, x - margin), max(0, y - margin)
    return pixels[y1 : y + h + margin, x1 : x + w + margin]


def plate_sheet(plates: dict[str, Path], run: Run, scored: dict[str, Any], target: Path) -> None:
    """Each labelled plate with its surroundings, before (left) and after (right)."""
    tiles = []
    for row in scored["rows"]:
        original, output = _pair(plates[row["photo"]], run.outputs[row["photo"]])
        after = output if output is not None else np.zeros_like(original)
        caption = f"{row['photo'][:30]} changed={row['changed']:.2f}"
        tiles.append(_tile([_around(original, row["box"]), _around(after, row["box"])], 200, caption))
    _grid(tiles, target, 3)


def badge_sheet(photo: Path, output: Path, target: Path) -> None:
    """The badge, before and after, with the name line outlined."""
    original, after = _pair(photo, output)
    crops = []
    for pixels in (original, after if after is not None else np.zeros_like(original)):
        marked = Image.fromarray(pixels)
        x, y, w, h = BADGE_NAME_LINE
        ImageDraw.Draw(marked).rectangle([x - 1, y - 1, x + w, y + h], outline=(0, 255, 0))
        crops.append(_around(np.asarray(marked), BADGE_NAME_LINE))
    _tile(crops, 300, "badge name line, before and after").save(target)


def sign_sheet(photos: dict[str, Path], signs: dict[str, list[list[int]]], run: Run, target: Path) -> None:
    """Each sign photo before (left) and after (right), its signs outlined."""
    tiles = []
    for key, photo in photos.items():
        original, output = _pair(photo, run.outputs[key])
        pair = []
        for pixels in (original, output if output is not None else np.zeros_like(original)):
            marked = Image.fromarray(pixels)
            draw = ImageDraw.Draw(marked)
            for x, y, w, h in signs[key]:
                draw.rectangle([x, y, x + w - 1, y + h - 1], outline=(255, 0, 255), width=3)
            pair.append(np.asarray(marked))
        tiles.append(_tile(pair, 480, Path(key).stem))
    _grid(tiles, target, 2)


if __name__ == "__main__":
    sys.exit(main())
