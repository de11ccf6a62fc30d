"""Measure photo coverage, collateral and speed on ../shared/data.

    python benchmarks/photos.py [--data ../shared/data] [--sets upright,sideways,full]
                                [--no-deface] [--no-exif] [--veil-src OTHER/src] [--keep DIR] [--json FILE]

Runs veil's CLI with its defaults (and deface 1.5.0's CLI, when installed, on
the same files in the same run) over widerface-dev as stored (upright), the
same images stored sideways with an EXIF orientation tag, and the same
images resized back to their original WIDER size (full, about 1024x700, as
the crowd photos a user has would be). Recall is by face height and WIDER
protocol; collateral is the share of pixels away from every true face that
changed, given beside the collateral of veil's masks drawn on the true faces
alone (`truth/`). Then runs veil over ../shared/data/exif and lists every tag
that survives in its outputs. Images/s is files over the wall time of the
whole CLI process. `--veil-src` runs another checkout, for before/after.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from veil.detections import Detections
from veil.masks import draw, face_masks
from veil.options import MaskOptions

sys.path.insert(0, str(Path(__file__).parent))
from coverage import Tally, changed_pixels, collateral, face_covered, height_bin
from video import DEFACE_AS_SHIPPED, beside_python

REPO = Path(__file__).resolve().parents[1]
SETS = ("upright", "sideways", "full")
DEFAULT_DATA = REPO.parent / "shared" / "data"
ORIENTATION = 0x0112
_METADATA_INFO_KEYS = {
    "exif",
    "xmp",
    "XML:com.adobe.xmp",
    "photoshop",
    "iptc",
    "comment",
    "icc_profile",
    "thumbnails",
    "depth_images",
    "aux",
    "metadata",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-deface", action="store_true", help="skip the deface comparison")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument(
        "--sets", default=",".join(SETS), help=f"comma-separated, from {', '.join(SETS)} (default all)"
    )
    parser.add_argument("--no-exif", action="store_true", help="skip the metadata samples")
    parser.add_argument("--veil-src", type=Path, help="run the veil in this src folder (before/after)")
    parser.add_argument("--keep", type=Path, help="keep the staged photos and outputs in this new folder")
    parser.add_argument(
        "--veil-option",
        action="append",
        default=[],
        help="pass this to veil anonymize (e.g. --precision=high)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.veil_src:
        os.environ["PYTHONPATH"] = str(args.veil_src.resolve())
    wider = args.data / "widerface-dev"
    read = read_wider(wider)
    if read is None:
        return 0
    gt, manifest = read
    if args.limit:
        gt = gt[: args.limit]
    deface = None if args.no_deface else shutil.which("deface") or beside_python("deface")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        root = args.keep or Path(tmp)
        for name in args.sets.split(","):
            staged = stage_set(wider, gt, manifest, root / name, name)
            faces = true_faces(gt, manifest, full=name == "full")
            results[f"truth/{name}"] = _truth_collateral(staged, faces)
            run = _run_veil(staged, root / f"veil-{name}", args.veil_option)
            results[f"veil/{name}"] = _score(faces, staged, run) | {"images_per_s": run["rate"]}
            if deface:
                run = _run_deface(deface, staged, root / f"deface-{name}")
                results[f"deface/{name}"] = _score(faces, staged, run) | {"images_per_s": run["rate"]}
            _print({k: v for k, v in results.items() if k.endswith(f"/{name}")})
        exif = args.data / "exif"
        if exif.is_dir() and not args.no_exif:
            results["veil/exif"] = _exif_check(exif, root / "veil-exif")
            _print({"veil/exif": results["veil/exif"]})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def read_wider(wider: Path) -> tuple[list[dict], dict[str, dict]] | None:
    """widerface-dev's ground truth and its manifest by file; None (said) when absent."""
    if not (wider / "gt.json").is_file():
        print(f"benchmark skipped: no evaluation data at {wider} (see ../shared/data/README.md)")
        return None
    gt = json.loads((wider / "gt.json").read_text())["images"]
    manifest = {f["file"]: f for f in json.loads((wider / "manifest.json").read_text())["files"]}
    return gt, manifest


@dataclass(frozen=True)
class Face:
    box: list[float]  # x, y, w, h in the staged (upright) pixels
    valid: bool
    subsets: tuple[str, ...]  # the WIDER protocols (easy, medium, hard) it counts in


def true_faces(gt: list[dict], manifest: dict[str, dict], full: bool) -> dict[str, list[Face]]:
    """The ground-truth faces of each image, in the pixels of the staged copy."""
    faces = {}
    for item in gt:
        listed = manifest.get(item["file"], {})
        subsets = listed.get("difficulty_face_indices", {})
        boxes = [f["box_original_pixels"] for f in listed["faces"]] if full else item["boxes"]
        faces[item["file"]] = [
            Face(box, not bad, tuple(s for s in ("easy", "medium", "hard") if index in subsets.get(s, [])))
            for index, (box, bad) in enumerate(zip(boxes, item["invalid"], strict=True))
        ]
    return faces


def stage_set(
    wider: Path, gt: list[dict], manifest: dict[str, dict], folder: Path, name: str
) -> dict[str, Path]:
    """Copies of the images: as stored (upright), turned with Orientation=6
    to undo it (sideways), or resized to their original WIDER size (full)."""
    folder.mkdir(parents=True)
    staged = {}
    for item in gt:
        source = wider / item["file"]
        target = folder / Path(item["file"]).name
        if name == "sideways":
            with Image.open(source) as image:
                stored = image.convert("RGB").transpose(Image.Transpose.ROTATE_90)
                exif = Image.Exif()
                exif[ORIENTATION] = 6
                stored.save(target, "JPEG", quality=95, exif=exif)
        elif name == "full":
            listed = manifest[item["file"]]
            with Image.open(source) as image:
                size = (listed["original_width"], listed["original_height"])
                image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(target, quality=92)
        else:
            shutil.copyfile(source, target)
        staged[item["file"]] = target
    return staged


def _truth_collateral(staged: dict[str, Path], faces: dict[str, list[Face]]) -> dict[str, object]:
    """The collateral of veil's head masks drawn on the valid true faces
    alone: what a perfect detector with veil's mask shape would change."""
    changed_count = total = 0
    for key, path in staged.items():
        original = _upright(path)
        valid = [f.box for f in faces[key] if f.valid]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in valid], np.float32).reshape(-1, 4)
        masked = draw(original, face_masks(Detections(boxes, np.ones(len(boxes), np.float32))), MaskOptions())
        count, pixels = collateral(changed_pixels(original, masked), valid)
        changed_count += count
        total += pixels
    return {"collateral": round(changed_count / max(1, total), 4)}


def _run_veil(staged: dict[str, Path], out: Path, options: list[str]) -> dict:
    folder = next(iter(staged.values())).parent
    command = [sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out), "-q", *options]
    started = time.perf_counter()
    subprocess.run(command, check=False)
    elapsed = time.perf_counter() - started
    outputs = {key: out / path.name for key, path in staged.items()}
    return {"outputs": outputs, "rate": round(len(staged) / elapsed, 2)}


def _run_deface(deface: str, staged: dict[str, Path], out: Path) -> dict:
    """deface writes NAME_anonymized.EXT beside each input: give it its own copies."""
    shutil.copytree(next(iter(staged.values())).parent, out)
    started = time.perf_counter()
    subprocess.run([deface, *DEFACE_AS_SHIPPED, str(out)], check=False, capture_output=True)
    elapsed = time.perf_counter() - started
    outputs = {key: out / f"{path.stem}_anonymized{path.suffix}" for key, path in staged.items()}
    return {"outputs": outputs, "rate": round(len(staged) / elapsed, 2)}


def _upright(path: Path) -> npt.NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _sideways(original: npt.NDArray[np.uint8], output: npt.NDArray[np.uint8]) -> bool:
    """Was the output written with the stored (sideways) pixels, orientation ignored?"""
    turned = np.rot90(output, k=-1)
    if turned.shape != original.shape:
        return False
    if output.shape != original.shape:
        return True
    return _distance(original, turned) < _distance(original, output)  # square images


def _distance(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _score(faces: dict[str, list[Face]], staged: dict[str, Path], run: dict) -> dict:
    tally = Tally()
    written_sideways = 0
    for key, path in staged.items():
        original = _upright(path)
        output_path = run["outputs"][key]
        if not output_path.exists():
            tally.missing_outputs += 1
            output = original  # nothing written: nothing covered
        else:
            with Image.open(output_path) as image:
                output = np.asarray(image.convert("RGB"))
            if _sideways(original, output):
                written_sideways += 1
                output = np.ascontiguousarray(np.rot90(output, k=-1))  # as a viewer would fix it
        changed = changed_pixels(original, output)
        tally.images += 1
        for face in faces[key]:
            if not face.valid:
                continue
            covered = face_covered(changed, face.box)
            tally.add("all", covered)
            tally.add(height_bin(face.box[3]), covered)
            for subset in face.subsets:
                tally.add(subset, covered)
        changed_count, total = collateral(changed, [f.box for f in faces[key] if f.valid])
        tally.collateral_changed += changed_count
        tally.collateral_total += total
    return tally.summary() | {"written_sideways": written_sideways}


def _exif_check(folder: Path, out: Path) -> dict:
    """Run veil over the metadata samples and list every tag left in its outputs."""
    sys.path.insert(0, str(REPO / "src"))
    from veil.media.metadata import metadata_names

    command = [sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out), "-q"]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    report = json.loads((out / "veil-report.json").read_text())
    surviving = {}
    for file in report["files"]:
        if file["status"] != "anonymized":
            continue
        with Image.open(file["output"]) as image:
            names = metadata_names(image)
            extra = sorted(k for k, v in image.info.items() if v and k in _METADATA_INFO_KEYS)
        if names or extra:
            surviving[Path(file["input"]).name] = names + extra
    return {
        "anonymized": sum(f["status"] == "anonymized" for f in report["files"]),
        "failed": {Path(f["input"]).name: f["error"] for f in report["files"] if f["status"] == "failed"},
        "skipped": sum(f["status"] == "skipped" for f in report["files"]),
        "outputs_with_metadata": surviving,
        "exit_status": result.returncode,
    }


def _print(results: dict) -> None:
    for name, value in results.items():
        if name.endswith("exif"):
            print(f"\n{name}: {json.dumps(value, indent=1)}")
            continue
        if name.startswith("truth/"):
            print(f"{name:16s} collateral of masks on the true faces alone={value['collateral']}")
            continue
        recall = value["recall"]
        row = " ".join(f"{k}={v}" for k, v in recall.items())
        print(
            f"{name:16s} {row} collateral={value['collateral']} images/s={value['images_per_s']} "
            f"missing={value['missing_outputs']} sideways_outputs={value['written_sideways']}"
        )


if __name__ == "__main__":
    sys.exit(main())
