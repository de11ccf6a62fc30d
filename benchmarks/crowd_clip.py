"""A crowd clip with exact ground truth: a camera panning slowly over a
WIDER crowd photo, its faces small, every face's box known in every frame.

    python benchmarks/crowd_clip.py [--data ../shared/data] [--before LABEL=SRC ...] [--keep DIR]

The photos are widerface-dev's densest crowds at their original size,
scaled so that most faces are 8-20 px tall (the back of a crowd filmed
from a distance). Each clip pans a 640x360 window across its photo over 75
frames, so faces move and enter and leave the picture. veil's CLI (and the
veil of other checkouts, `--before`) anonymizes each clip with verification
on; per clip it reports the frames that leave a true face uncovered (the
coverage rule of ../shared/data/README.md, faces of 6 px and more, whole
in the frame), true faces uncovered over all frames by height, and the
collateral (pixels changed away from every true face grown by 50%).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from coverage import changed_pixels, collateral, face_covered, height_bin
from photos import DEFAULT_DATA, read_wider, true_faces

WINDOW = (640, 360)
FRAMES = 75
CROWDS = 3  # the photos with the most valid faces
FACE_HEIGHT = 13.0  # the median face is scaled to about this height
MIN_FACE = 6.0  # smaller true faces are not counted


def make_clip(photo: Path, boxes: list[list[float]], out: Path) -> list[list[list[float]]]:
    """Write the panning clip; the true boxes (x, y, w, h) in each frame."""
    with Image.open(photo) as image:
        picture = np.asarray(image.convert("RGB"))
    median = float(np.median([h for _, _, _, h in boxes])) if boxes else FACE_HEIGHT
    scale = max(FACE_HEIGHT / median, WINDOW[0] / picture.shape[1] * 1.3, WINDOW[1] / picture.shape[0] * 1.1)
    scaled = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = scaled.shape[:2]
    truth = []
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WINDOW[0], WINDOW[1], "yuv420p"
        for index in range(FRAMES):
            share = index / (FRAMES - 1)
            left = round(share * (width - WINDOW[0]))
            top = round((0.5 - 0.5 * np.cos(np.pi * share)) * (height - WINDOW[1]))
            frame = np.ascontiguousarray(scaled[top : top + WINDOW[1], left : left + WINDOW[0]])
            pixels = av.VideoFrame.from_ndarray(frame, format="rgb24")
            pixels.pts = index
            container.mux(stream.encode(pixels))
            inside = []
            for x, y, w, h in boxes:
                x, y, w, h = x * scale - left, y * scale - top, w * scale, h * scale
                if x >= 0 and y >= 0 and x + w <= WINDOW[0] and y + h <= WINDOW[1]:
                    inside.append([x, y, w, h])
            truth.append(inside)
        container.mux(stream.encode(None))
    return truth


def score(clip: Path, output: Path, truth: list[list[list[float]]]) -> dict[str, object]:
    leaked_frames, by_height, away, total = 0, {}, 0, 0
    with av.open(str(clip)) as a, av.open(str(output)) as b:
        for boxes, original, anonymized in zip(truth, a.decode(video=0), b.decode(video=0), strict=True):
            changed = changed_pixels(
                original.to_ndarray(format="rgb24"), anonymized.to_ndarray(format="rgb24")
            )
            leaked = False
            for box in boxes:
                if box[3] < MIN_FACE:
                    continue
                covered = face_covered(changed, box)
                by_height.setdefault(height_bin(box[3]), [0, 0])[0] += not covered
                by_height[height_bin(box[3])][1] += 1
                leaked = leaked or not covered
            leaked_frames += leaked
            count, pixels = collateral(changed, boxes)
            away, total = away + count, total + pixels
    return {
        "frames_leaking": leaked_frames,
        "faces_uncovered": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_height.items())},
        "collateral": round(away / max(1, total), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--before", action="append", default=[], help="LABEL=SRC: also run the veil in this src"
    )
    parser.add_argument("--keep", type=Path, help="keep the clips and outputs in this new folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    read = read_wider(args.data / "widerface-dev")
    if read is None:
        return 0
    gt, manifest = read
    faces = true_faces(gt, manifest, full=True)
    crowds = sorted(gt, key=lambda item: -sum(f.valid for f in faces[item["file"]]))[:CROWDS]
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="veil-crowd-") as tmp:
        root = args.keep or Path(tmp)
        (root / "clips").mkdir(parents=True)
        for item in crowds:
            name = Path(item["file"]).stem
            listed = manifest[item["file"]]
            photo = root / "clips" / f"{name}.jpg"
            with Image.open(args.data / "widerface-dev" / item["file"]) as image:
                size = (listed["original_width"], listed["original_height"])
                image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(photo, quality=95)
            clip = root / "clips" / f"{name}.mp4"
            truth = make_clip(photo, [f.box for f in faces[item["file"]] if f.valid], clip)
            entry: dict[str, object] = {}
            for label, src in [("veil", None), *(b.split("=", 1) for b in args.before)]:
                out = root / label
                env = dict(os.environ) | ({"PYTHONPATH": str(Path(src).resolve())} if src else {})
                command = [sys.executable, "-m", "veil", "anonymize", str(clip), "-o", str(out), "-q"]
                subprocess.run(command, env=env, check=False)
                entry[label] = (
                    score(clip, out / clip.name, truth) if (out / clip.name).exists() else "no output"
                )
            results[name] = entry
            print(name, json.dumps(entry))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
