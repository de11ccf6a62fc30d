"""Clips made to slip through the search schedule (`veil.detection.schedule`),
built from a dev clip, and whether veil covers them.

    python benchmarks/adversarial.py [--data ../shared/data] [--frames 48] [--json FILE] [--keep DIR]
        [--clip NAME] [--detection FIELD=VALUE ...]

From the first frames of facenet_pytorch_video (1080p street):

- flash: small faces (16 and 24 px tall, cut from the clip's own people)
  pasted for three frames each, only between key frames, never on one;
- pan: a 1280x720 window sliding 48 px a frame across the scene (a fast
  pan; faces move as fast);
- fast: every fourth frame (the scene at 4x speed).

Each clip is anonymized (no verification) with the defaults and with every
pass on every frame; a face is left uncovered when fewer than half of its
box's pixels changed. Counted: the pasted faces (ground truth), and the
faces the exhaustive search found at score >= 0.3 that a second look
confirms (as benchmarks/cadence.py).
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
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).parent))
from cadence import _faces_uncovered, found_faces
from veil import AnonymizeOptions, anonymize_file

from coverage import changed_pixels
from video import add_detection_argument, with_detection

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
SOURCE = "video/facenet_pytorch_video.mp4"
# Faces of the clip's first frame (x1, y1, x2, y2), cut out to paste elsewhere.
DONORS = [(1082, 606, 1128, 670), (917, 636, 978, 717)]
Frame = npt.NDArray[np.uint8]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the clips and outputs here")
    parser.add_argument("--clip", action="append", help="only these: flash, pan, fast")
    add_detection_argument(parser, "the default run")
    args = parser.parse_args()
    source = args.data / SOURCE
    if not source.exists():
        print(f"benchmark skipped: no {source}")
        return 0
    frames = read_frames(source, 4 * args.frames)
    every = with_detection(AnonymizeOptions(), args.detection).detection.video_key_every
    flash, pasted = flashed(frames[: args.frames], every)
    clips = {"flash": (flash, pasted), "pan": (panned(frames[: args.frames]), {}), "fast": (frames[::4], {})}
    results = {}
    with tempfile.TemporaryDirectory(prefix="veil-adversarial-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, (pixels, truth) in clips.items():
            if args.clip and name not in args.clip:
                continue
            clip = folder / f"{name}.mp4"
            write_clip(clip, pixels)
            results[name] = measure(clip, folder / name, truth, args.detection)
            print(name, json.dumps(results[name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def read_frames(path: Path, count: int) -> list[Frame]:
    with av.open(str(path)) as container:
        return [
            f.to_ndarray(format="rgb24")
            for _, f in zip(range(count), container.decode(video=0), strict=False)
        ]


def write_clip(path: Path, frames: list[Frame]) -> None:
    """Nearly lossless H.264 at 25 fps, so what was pasted stays as it was."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for pixels in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(stream.encode())


def flashed(frames: list[Frame], every: int) -> tuple[list[Frame], dict[int, list[list[int]]]]:
    """`frames` with small faces pasted for three frames between each two
    key frames, and where (frame: boxes)."""
    first = frames[0]
    donors = [first[y1:y2, x1:x2] for x1, y1, x2, y2 in DONORS]
    rng = np.random.default_rng(7)
    out = [f.copy() for f in frames]
    truth: dict[int, list[list[int]]] = {}
    height, width = first.shape[:2]
    for start in range(1, len(frames) - 3, every):
        for number, size in enumerate((16, 24)):
            donor = donors[number % len(donors)]
            face = cv2.resize(donor, (round(size * donor.shape[1] / donor.shape[0]), size), cv2.INTER_AREA)
            x = int(rng.integers(50, width - 50 - face.shape[1]))
            y = int(rng.integers(150, height - 150 - size))
            for index in range(start + 1, start + 4):  # never on a key frame (multiples of `every`)
                out[index][y : y + size, x : x + face.shape[1]] = face
                truth.setdefault(index, []).append([x, y, x + face.shape[1], y + size])
    return out, truth


def panned(frames: list[Frame]) -> list[Frame]:
    """A 1280x720 window sliding 48 px a frame, to and fro."""
    height, width = frames[0].shape[:2]
    span = width - 1280
    out = []
    for index, pixels in enumerate(frames):
        x = (48 * index) % (2 * span)
        x = x if x <= span else 2 * span - x
        out.append(np.ascontiguousarray(pixels[(height - 720) // 2 : (height + 720) // 2, x : x + 1280]))
    return out


def measure(
    clip: Path, folder: Path, truth: dict[int, list[list[int]]], settings: list[str]
) -> dict[str, object]:
    default = with_detection(AnonymizeOptions(verify=False), settings)
    every_pass = replace(default, detection=replace(default.detection, video_key_every=1))
    outputs, seconds = {}, {}
    for label, options in (("default", default), ("every_pass", every_pass)):
        out = folder / label / clip.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        Path(f"{out}.plan.json").unlink(missing_ok=True)
        started = time.perf_counter()
        report = anonymize_file(clip, out, options)
        seconds[label] = round(time.perf_counter() - started, 2)
        assert report.video is not None, report.error
        outputs[label] = out
    faces, missed = _faces_uncovered(clip, outputs["default"], found_faces(outputs["every_pass"]))
    result: dict[str, object] = {
        "seconds": seconds,
        "faces_of_every_pass": faces,
        "uncovered_by_default": len(missed),
        "uncovered": missed[:10],
    }
    if truth:
        result["pasted_faces"] = sum(len(b) for b in truth.values())
        result["pasted_uncovered"] = {
            label: _pasted_uncovered(clip, out, truth) for label, out in outputs.items()
        }
    return result


def _pasted_uncovered(
    clip: Path, output: Path, truth: dict[int, list[list[int]]]
) -> list[tuple[int, list[int]]]:
    missed = []
    with av.open(str(clip)) as a, av.open(str(output)) as b:
        for index, (original, anonymized) in enumerate(
            zip(a.decode(video=0), b.decode(video=0), strict=True)
        ):
            if index not in truth:
                continue
            changed = changed_pixels(
                original.to_ndarray(format="rgb24"), anonymized.to_ndarray(format="rgb24")
            )
            for x1, y1, x2, y2 in truth[index]:
                if float(np.mean(changed[y1:y2, x1:x2])) < 0.5:
                    missed.append((index, [x1, y1, x2, y2]))
    return missed


if __name__ == "__main__":
    sys.exit(main())
