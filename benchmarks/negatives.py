"""Masks drawn where there is no person: veil and deface on people-free photos.

    python benchmarks/negatives.py [--data ../shared/data] [--no-deface] [--keep DIR] [--json FILE]
                                   [--veil-src OTHER/src] [--veil-option=--precision=high]

The photos:
- the people-free photos of ../shared/data listed in its negatives.json
  (flowers, a kitchen, landscapes, animals, the waterfall orientation samples);
- scikit-image's bundled data images with no person in them (a cat, coffee,
  a rocket, a motorcycle, textures, text, a colour wheel...; its astronaut,
  cameraman, coins and face crops are left out: they show people or heads);
- a few made here: noise, a sky gradient, stripes.

Every mask on them is a false one. Per photo: the masks drawn (veil's
report; for deface, the separate regions it filled), the share of the
picture masked (pixels changed by more than 12 in a channel, as in the
coverage rule, that hold the tool's fill colour), for veil also the share
changed at all (re-encoding a JPEG changes a few pixels too), and veil's
verification verdict. deface runs in the same run with its defaults, but for
`--replacewith solid`, so that the area it hides can be measured (a blur
leaves flat regions unchanged); it is compared with the pixels as stored,
since it applies no EXIF orientation. With --keep, the outputs and a contact
sheet (originals left, veil's outputs right) are kept in DIR.
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

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from veil.media.image import read_image
from veil.options import MaskOptions

from coverage import changed_pixels
from video import DEFACE_AS_SHIPPED, beside_python

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
# scikit-image data with no person, animal faces included (the cat), as shipped in its wheel.
_BLACK = 24  # deface's solid fill is black; JPEG leaves it a little above 0
_VEIL_FILL = np.array(MaskOptions().color, np.int16)
_FILL_NOISE = 16  # what JPEG leaves of veil's flat grey
SKIMAGE_IMAGES = (
    "binary_blobs", "brick", "cell", "checkerboard", "chelsea", "clock", "coffee", "colorwheel", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon",
    "page", "retina", "rocket", "shepp_logan_phantom", "text",
)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-deface", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the outputs and a contact sheet here")
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
    deface = None if args.no_deface else shutil.which("deface") or beside_python("deface")
    with tempfile.TemporaryDirectory(prefix="veil-negatives-") as tmp:
        root = args.keep or Path(tmp)
        photos = stage(args.data, root / "photos")
        started = time.perf_counter()
        command = [sys.executable, "-m", "veil", "anonymize", str(root / "photos"), "-o", str(root / "veil")]
        command += args.veil_option
        run = subprocess.run([*command, "-q"], check=False, capture_output=True, text=True, env=env)
        veil_s = time.perf_counter() - started
        report = json.loads((root / "veil" / "veil-report.json").read_text())
        by_input = {Path(f["input"]).resolve(): f for f in report["files"]}
        deface_out = None
        if deface:
            deface_out = root / "deface"
            shutil.copytree(root / "photos", deface_out)
            for folder in sorted({p.parent.relative_to(root / "photos") for p in photos}):
                subprocess.run(  # deface reads the files of a folder, not its subfolders
                    [deface, *DEFACE_AS_SHIPPED, "--replacewith", "solid", str(deface_out / folder)],
                    check=False,
                    capture_output=True,
                )
        rows = []
        for photo in photos:
            original = upright(photo)
            relative = photo.relative_to(root / "photos")
            entry = by_input.get(photo.resolve(), {})
            row: dict[str, object] = {"photo": str(relative), "size": [original.shape[1], original.shape[0]]}
            row["veil"] = veil_row(entry, original)
            if deface_out is not None:
                row["deface"] = deface_row(deface_out / relative)
            rows.append(row)
        summary = summarise(rows, veil_s, run.returncode)
        if args.keep:
            contact_sheet([root / "photos" / str(r["photo"]) for r in rows], root, args.keep / "sheet.png")
    print_rows(rows, summary)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "photos": rows}, indent=2))
    return 0


def stage(data: Path, folder: Path) -> list[Path]:
    """The people-free photos under `folder`: copies of the data set's, and
    PNGs of the packaged and made ones."""
    folder.mkdir(parents=True)
    photos = []
    listing = data / "negatives.json"
    if listing.is_file():
        for name in json.loads(listing.read_text())["files"]:
            source = data / name
            target = folder / "data" / source.name
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(source, target)
            photos.append(target)
    else:
        print(f"no {listing}: only packaged and made photos (see ../shared/data/README.md)")
    for name, pixels in packaged_and_made():
        target = folder / "made" / f"{name}.png"
        target.parent.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(target)
        photos.append(target)
    return photos


def packaged_and_made() -> list[tuple[str, npt.NDArray[np.uint8]]]:
    import skimage.data

    images = []
    for name in SKIMAGE_IMAGES:
        made = getattr(skimage.data, name)
        pixels = np.asarray(made(rng=0) if name == "binary_blobs" else made())
        if pixels.dtype != np.uint8:
            pixels = pixels.astype(np.float64)
            pixels = (255 * (pixels - pixels.min()) / max(np.ptp(pixels), 1e-9)).astype(np.uint8)
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=2)
        images.append((f"skimage_{name}", np.ascontiguousarray(pixels[:, :, :3])))
    left, _, _ = skimage.data.stereo_motorcycle()
    images.append(("skimage_motorcycle", np.asarray(left, np.uint8)))
    rng = np.random.default_rng(0)
    images.append(("made_noise", rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)))
    rows = np.linspace(0.0, 1.0, 720)[:, None, None]
    sky = np.array([70, 130, 220]) * (1 - rows) + np.array([200, 220, 250]) * rows
    images.append(("made_sky", np.broadcast_to(sky, (720, 1280, 3)).astype(np.uint8)))
    stripes = ((np.arange(1280) // 24) % 2 * 180 + 40).astype(np.uint8)
    images.append(("made_stripes", np.broadcast_to(stripes[None, :, None], (720, 1280, 3)).copy()))
    return images


def upright(path: Path) -> npt.NDArray[np.uint8]:
    """Pixels as veil sees them: HEIC decoded, EXIF orientation applied."""
    return read_image(path).pixels


def veil_row(entry: dict, original: npt.NDArray[np.uint8]) -> dict[str, object]:
    if entry.get("status") != "anonymized":
        return {"error": entry.get("error", "no output")}
    output = upright(Path(entry["output"]))
    verification = entry.get("verification") or {}
    changed = changed_pixels(original, output)
    filled = np.abs(output.astype(np.int16) - _VEIL_FILL).max(axis=2) <= _FILL_NOISE
    return {
        "masks": len(entry["faces"]),
        "changed": round(float(changed.mean()), 4),
        "masked": round(float((changed & filled).mean()), 4),
        "verified": "FAIL" if verification.get("failures") else "PASS",
        "review": len(verification.get("review", [])),
    }


def deface_row(copy: Path) -> dict[str, object]:
    """deface's masks: pixels it turned black (`--replacewith solid`), against
    the pixels as stored (deface applies no EXIF orientation and no colour
    profile), counted as separate regions."""
    output = copy.with_name(f"{copy.stem}_anonymized{copy.suffix}")
    if not output.exists():
        return {"error": "no output"}
    with Image.open(copy) as image:
        stored = np.asarray(image.convert("RGB"))
    with Image.open(output) as image:
        pixels = np.asarray(image.convert("RGB"))
    if pixels.shape != stored.shape:
        return {"error": f"output is {pixels.shape[1]}x{pixels.shape[0]}, not the input's size"}
    masked = changed_pixels(stored, pixels) & (pixels.max(axis=2) < _BLACK)
    return {"masks": count_regions(masked), "masked": round(float(masked.mean()), 4)}


def count_regions(masked: npt.NDArray[np.bool_], smallest: int = 16) -> int:
    """Separate masked regions of at least `smallest` pixels (a mask each),
    after closing the specks that JPEG noise leaves inside a fill."""
    closed = cv2.morphologyEx(masked.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    return int(np.sum(stats[1:, cv2.CC_STAT_AREA] >= smallest))


def summarise(rows: list[dict], veil_s: float, veil_exit: int) -> dict[str, object]:
    summary: dict[str, object] = {
        "photos": len(rows),
        "veil_seconds": round(veil_s, 1),
        "veil_exit": veil_exit,
    }
    for tool in ("veil", "deface"):
        done = [r[tool] for r in rows if tool in r and "error" not in r[tool]]
        if not done:
            continue
        summary[tool] = {
            "photos_read": len(done),
            "photos_with_a_mask": sum(1 for r in done if r["masks"] > 0),
            "share_with_a_mask": round(sum(1 for r in done if r["masks"] > 0) / len(done), 3),
            "mean_area_masked": round(float(np.mean([r["masked"] for r in done])), 4),
            "masks": sum(r["masks"] for r in done),
        }
        if tool == "veil":
            summary[tool] |= {  # type: ignore[operator]
                "mean_area_changed": round(float(np.mean([r["changed"] for r in done])), 4),
                "verification_fails": sum(1 for r in done if r["verified"] == "FAIL"),
                "review_items": sum(r["review"] for r in done),
            }
    return summary


def print_rows(rows: list[dict], summary: dict[str, object]) -> None:
    for row in rows:
        cells = []
        for tool in ("veil", "deface"):
            if tool in row:
                value = row[tool]
                if "error" in value:
                    cells.append(f"{tool}: {value['error']}")
                else:
                    extra = f" {value['verified']} review={value['review']}" if tool == "veil" else ""
                    cells.append(f"{tool}: masks={value['masks']} masked={value['masked']:.4f}{extra}")
        print(f"{row['photo']:60s} " + " | ".join(cells))
    print(json.dumps(summary, indent=1))


def contact_sheet(photos: list[Path], root: Path, target: Path, cell: int = 240, columns: int = 4) -> None:
    """Each original beside veil's output, a pair per cell, for looking at."""
    tiles = []
    for photo in photos:
        relative = photo.relative_to(root / "photos")
        pair = [upright(photo)]
        output = root / "veil" / relative
        pair.append(upright(output) if output.exists() else np.zeros_like(pair[0]))
        small = [_fit(p, cell) for p in pair]
        tile = np.full((cell, 2 * cell + 4, 3), 255, np.uint8)
        for index, image in enumerate(small):
            tile[: image.shape[0], index * (cell + 4) : index * (cell + 4) + image.shape[1]] = image
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    grid = np.vstack([np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)])
    Image.fromarray(grid).save(target)


def _fit(pixels: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    scale = side / max(pixels.shape[:2])
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)


if __name__ == "__main__":
    sys.exit(main())
