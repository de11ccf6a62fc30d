"""Measure photo coverage, collateral and speed on ../shared/data.

    python benchmarks/photos.py [--data ../shared/data] [--no-deface] [--json FILE]

Runs veil's CLI with its defaults (and deface 1.5.0's CLI, when installed, on
the same files in the same run) over widerface-dev as stored, and over the
same images stored sideways with an EXIF orientation tag. Then runs veil over
../shared/data/exif and lists every tag that survives in its outputs.
Images/s is files over the wall time of the whole CLI process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parent))
from coverage import Tally, changed_pixels, collateral, face_covered, height_bin
from video import DEFACE_AS_SHIPPED, beside_python

REPO = Path(__file__).resolve().parents[1]
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
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    wider = args.data / "widerface-dev"
    if not (wider / "gt.json").is_file():
        print(f"benchmark skipped: no evaluation data at {wider} (see ../shared/data/README.md)")
        return 0
    gt = json.loads((wider / "gt.json").read_text())["images"]
    manifest = {f["file"]: f for f in json.loads((wider / "manifest.json").read_text())["files"]}
    if args.limit:
        gt = gt[: args.limit]
    deface = None if args.no_deface else shutil.which("deface") or beside_python("deface")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        root = Path(tmp)
        upright = _stage(wider, gt, root / "upright", sideways=False)
        sideways = _stage(wider, gt, root / "sideways", sideways=True)
        for name, staged in (("upright", upright), ("sideways", sideways)):
            run = _run_veil(staged, root / f"veil-{name}")
            results[f"veil/{name}"] = _score(gt, manifest, staged, run) | {"images_per_s": run["rate"]}
            if deface:
                run = _run_deface(deface, staged, root / f"deface-{name}")
                results[f"deface/{name}"] = _score(gt, manifest, staged, run) | {"images_per_s": run["rate"]}
        exif = args.data / "exif"
        if exif.is_dir():
            results["veil/exif"] = _exif_check(exif, root / "veil-exif")
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _stage(wider: Path, gt: list[dict], folder: Path, sideways: bool) -> dict[str, Path]:
    """Copies of the images (sideways: pixels turned, with Orientation=6 to undo it)."""
    folder.mkdir(parents=True)
    staged = {}
    for item in gt:
        source = wider / item["file"]
        target = folder / Path(item["file"]).name
        if sideways:
            with Image.open(source) as image:
                stored = image.convert("RGB").transpose(Image.Transpose.ROTATE_90)
                exif = Image.Exif()
                exif[ORIENTATION] = 6
                stored.save(target, "JPEG", quality=95, exif=exif)
        else:
            shutil.copyfile(source, target)
        staged[item["file"]] = target
    return staged


def _run_veil(staged: dict[str, Path], out: Path) -> dict:
    folder = next(iter(staged.values())).parent
    command = [sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out), "-q"]
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


def _score(gt: list[dict], manifest: dict[str, dict], staged: dict[str, Path], run: dict) -> dict:
    tally = Tally()
    written_sideways = 0
    for item in gt:
        original = _upright(staged[item["file"]])
        output_path = run["outputs"][item["file"]]
        valid = [b for b, bad in zip(item["boxes"], item["invalid"], strict=True) if not bad]
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
        subsets = manifest.get(item["file"], {}).get("difficulty_face_indices", {})
        for index, (box, bad) in enumerate(zip(item["boxes"], item["invalid"], strict=True)):
            if bad:
                continue
            covered = face_covered(changed, box)
            tally.add("all", covered)
            tally.add(height_bin(box[3]), covered)
            for subset in ("easy", "medium", "hard"):
                if index in subsets.get(subset, []):
                    tally.add(subset, covered)
        changed_count, total = collateral(changed, valid)
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
        recall = value["recall"]
        row = " ".join(f"{k}={v}" for k, v in recall.items())
        print(
            f"{name:16s} {row} collateral={value['collateral']} images/s={value['images_per_s']} "
            f"missing={value['missing_outputs']} sideways_outputs={value['written_sideways']}"
        )


if __name__ == "__main__":
    sys.exit(main())
