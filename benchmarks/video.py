"""Measure video coverage, timing fidelity and speed on ../shared/data/video.

    python benchmarks/video.py [--data ../shared/data] [--no-deface] [--before LABEL=SRC|PYTHON ...]
                               [--clip NAME] [--json FILE]

For each clip, in the same run: veil's CLI with its defaults; the veil of
other checkouts (`--before before=/tmp/old/src`, or a Python another veil is
installed for, `--before before=/tmp/old/.venv/bin/python`, for before/after); deface
1.5.0's CLI when installed, at its defaults and searching frames at twice
their size (`--scale`, as hard as it can look for small faces); and a plain
decode + re-encode with veil's encoder settings (the floor no anonymizer
can beat here). Each tool's fps, peak memory, output size against the
input's, and leaked frames.

Leaked frames are counted against pseudo ground truth from an independent
detector (RetinaFace-MobileNet0.25, the model veil's verification uses,
`veil.detection.retinaface`) run on the original frames at score >= 0.8: a frame leaks
when any of its reference faces has fewer than half of its box's pixels
changed by more than 12 (the photo rule). The reference has false alarms
(a T-shirt in egoblur_gen1); frames that leak a reference face that a
second look (`veil.detection.second_look`) also confirms are counted apart.
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
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from veil.detection.retinaface import RetinaFaceDetector
from veil.detection.second_look import SecondLook
from veil.media.encode import VideoSink
from veil.media.video import VIDEO_FORMATS, VideoFrameIn, VideoSource
from veil.options import AnonymizeOptions, VideoOptions

from coverage import changed_pixels, collateral

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
# deface as `pip install deface` gives it: on OpenCV. veil installs onnx, and
# with onnx importable deface's default switches to its onnxruntime backend,
# which ran slower here (gen1: 5.5 fps against 8.3 fps on OpenCV).
DEFACE_AS_SHIPPED = ["--backend", "opencv"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-deface", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--clip", action="append", help="only clips whose name contains this")
    parser.add_argument(
        "--before",
        action="append",
        default=[],
        help="LABEL=SRC or LABEL=PYTHON: also run the veil in this src folder, or installed for this Python",
    )
    parser.add_argument("--deface-scale", type=float, default=2.0, help="deface's second run (0: none)")
    args = parser.parse_args()
    clips = evaluation_clips(args.data, args.clip)
    if not clips:
        print(f"benchmark skipped: no clips at {args.data / 'video'} (see ../shared/data/README.md)")
        return 0
    reference = RetinaFaceDetector(threshold=0.8)
    deface = None if args.no_deface else shutil.which("deface") or beside_python("deface")
    results = {}
    with tempfile.TemporaryDirectory(prefix="veil-video-bench-") as tmp:
        root = Path(tmp)
        for clip in clips:
            truth = _reference_boxes(clip, reference) if reference else None
            entry: dict[str, object] = {"input": _describe(clip)}
            for label, other in [("veil", None), *(b.split("=", 1) for b in args.before)]:
                out = root / label / clip.name
                python, env = other_veil(other)
                command = [python, "-m", "veil", "anonymize", str(clip), "-o", str(out.parent), "-q"]
                entry[label] = _timed(command, env)
                entry[label] |= _describe(out) | _leaks(clip, out, truth)  # type: ignore[operator]
            if deface:
                size = entry["input"]["size"]  # type: ignore[index]
                for label, command in deface_clip_runs(deface, args.deface_scale, size).items():
                    out = root / label.replace(" ", "-") / clip.name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    entry[label] = _timed([*command, str(clip), "-o", str(out)])
                    entry[label] |= _describe(out) | _leaks(clip, out, truth)  # type: ignore[operator]
            floor = root / "floor" / clip.name
            entry["transcode_floor_s"] = transcode_floor(clip, floor)
            entry["floor_psnr_db"] = psnr(clip, floor)
            entry["floor_bytes_over_input"] = round(floor.stat().st_size / clip.stat().st_size, 3)
            results[clip.name] = entry
            _print(clip.name, entry)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def other_veil(other: str | None) -> tuple[str, dict[str, str] | None]:
    """The Python and environment that run another veil: OTHER is its
    checkout's src folder (run by this Python) or a Python it is installed
    in (an older veil that needs packages this one dropped); None: this veil."""
    if other is None:
        return sys.executable, None
    path = Path(other)
    if path.is_file():
        return str(path), None
    return sys.executable, {"PYTHONPATH": str(path.resolve())}


def add_detection_argument(parser: argparse.ArgumentParser, run: str = "the run") -> None:
    """--detection FIELD=VALUE (repeatable): DetectionOptions for `run` (`with_detection`)."""
    parser.add_argument(
        "--detection",
        action="append",
        default=[],
        help=f"FIELD=VALUE of DetectionOptions for {run}, e.g. video_key_every=12",
    )


def with_detection(options: AnonymizeOptions, settings: list[str]) -> AnonymizeOptions:
    """`options` with each FIELD=VALUE of DetectionOptions in `settings` set."""
    for setting in settings:
        field, value = setting.split("=", 1)
        kind = type(getattr(options.detection, field))
        options = replace(options, detection=replace(options.detection, **{field: kind(value)}))
    return options


def evaluation_clips(data: Path, names: list[str] | None) -> list[Path]:
    """The clips of DATA/video, or those whose names contain one of `names`."""
    folder = data / "video"
    clips = sorted(folder.glob("*.mp4")) if folder.is_dir() else []
    return [c for c in clips if not names or any(part in c.name for part in names)]


def deface_clip_runs(deface: str, scale: float, size: list[int]) -> dict[str, list[str]]:
    """deface's command for a clip of `size`: at its defaults, and with
    frames enlarged `scale` times (0: not)."""
    runs = {"deface": [deface, *DEFACE_AS_SHIPPED]}
    if scale:
        width, height = size
        resize = ["--scale", f"{round(width * scale)}x{round(height * scale)}"]
        runs[f"deface x{scale:g}"] = [deface, *DEFACE_AS_SHIPPED, *resize]
    return runs


def beside_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def _timed(command: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Wall time, exit status and peak memory (RSS) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    _, status, usage = os.wait4(process.pid, 0)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "exit": os.waitstatus_to_exitcode(status),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
    }


def _describe(path: Path) -> dict[str, object]:
    if not path.exists():
        return {"exists": False}
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        container.seek(0)
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = (
            sum(f.samples for f in container.decode(audio=0)) / audio.rate if audio is not None else 0.0
        )
        return {
            "exists": True,
            "frames": frames,
            "size": [video.codec_context.width, video.codec_context.height],
            "duration_s": round(container.duration / av.time_base, 3) if container.duration else None,
            "audio_s": round(audio_seconds, 3),
            "bytes": path.stat().st_size,
        }


def _reference_boxes(clip: Path, reference: RetinaFaceDetector) -> list[np.ndarray]:
    """Per frame, the reference faces as rows of x1, y1, x2, y2 and a last
    column: 1 when a second look at the frame (`veil.detection.second_look`) confirms
    the face, 0 when not (RetinaFace's T-shirt in egoblur_gen1, say)."""
    second_look = SecondLook()
    truth = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            pixels = frame.to_ndarray(format="rgb24")
            boxes = reference.detect(pixels).boxes
            confirmed = [float(second_look.look(pixels, box).confirmed) for box in boxes]
            truth.append(np.column_stack([boxes, np.array(confirmed, np.float32)]).reshape(-1, 5))
    return truth


def _leaks(clip: Path, output: Path, truth: list[np.ndarray] | None) -> dict[str, object]:
    if truth is None or not output.exists():
        return {}
    leaked, leaked_confirmed, faces, compared = [], set(), 0, 0
    away, away_total = 0, 0  # pixels changed away from every reference face, of all such pixels
    with av.open(str(clip)) as a, av.open(str(output)) as b:
        for index, (original, anonymized) in enumerate(
            zip(a.decode(video=0), b.decode(video=0), strict=False)
        ):
            before = original.to_ndarray(format="rgb24")
            after = anonymized.to_ndarray(format="rgb24")
            if after.shape != before.shape:  # a tool that changed the size: compare at the input's
                after = cv2.resize(after, (before.shape[1], before.shape[0]), interpolation=cv2.INTER_NEAREST)
            changed = changed_pixels(before, after)
            compared += 1
            boxes = truth[index] if index < len(truth) else np.zeros((0, 5))
            faces += len(boxes)
            count, total = collateral(changed, [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2, _ in boxes])
            away, away_total = away + count, away_total + total
            for x1, y1, x2, y2, confirmed in boxes.astype(int):
                x1, y1 = max(0, x1), max(0, y1)
                region = changed[y1:y2, x1:x2]
                if region.size and region.mean() < 0.5:
                    if confirmed:
                        leaked_confirmed.add(index)
                    if not leaked or leaked[-1] != index:
                        leaked.append(index)
    with_faces = sum(1 for boxes in truth if len(boxes))
    return {
        "frames_with_reference_faces": with_faces,
        "reference_faces": faces,
        "frames_compared": compared,
        "leaked_frames": len(leaked),
        "leaked_share": round(len(leaked) / max(1, with_faces), 4),
        "first_leaks": leaked[:10],
        "leaked_frames_confirmed_faces": len(leaked_confirmed),  # leaks of faces a second look confirms
        # the photo rule's collateral over every frame: pixels changed away from
        # every reference face (each grown by 50%)
        "collateral": round(away / max(1, away_total), 4),
    }


def transcode_floor(clip: Path, out: Path) -> float:
    """Decode and re-encode as veil does (`veil.media.video` at VideoOptions'
    defaults), sound copied, nothing detected or drawn: seconds taken."""
    out.parent.mkdir(parents=True, exist_ok=True)
    options = VideoOptions()
    started = time.perf_counter()
    with VideoSource(clip) as video:
        sink = VideoSink(
            out,
            VIDEO_FORMATS[out.suffix.lower()],
            video.probe,
            video.audio_stream,
            options.audio,
            options.crf,
            options.bitrate_cap,
        )
        for item in video.iter_media():
            if isinstance(item, VideoFrameIn):
                sink.write_frame(item.pixels, item.pts)
            else:
                sink.write_audio(item)
        sink.close()
    return round(time.perf_counter() - started, 2)


def psnr(clip: Path, out: Path) -> float:
    """Mean PSNR (dB, RGB) of `out`'s frames against the clip's."""
    values = []
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        for original, copy in zip(a.decode(video=0), b.decode(video=0), strict=False):
            error = np.mean(
                (original.to_ndarray(format="rgb24").astype(np.float32) - copy.to_ndarray(format="rgb24"))
                ** 2
            )
            values.append(100.0 if error == 0 else 10 * np.log10(255.0**2 / error))
    return round(float(np.mean(values)), 2) if values else 0.0


def _print(name: str, entry: dict) -> None:
    frames = entry["input"]["frames"]
    line = [f"{name}: {frames} frames, {entry['input']['size']}, audio {entry['input']['audio_s']} s"]
    for tool, r in entry.items():
        if isinstance(r, dict) and "exit" in r:
            fps = round(frames / r["seconds"], 2) if r.get("seconds") else None
            ratio = round(r["bytes"] / entry["input"]["bytes"], 2) if r.get("bytes") else None
            line.append(
                f"  {tool}: fps={fps} leaked={r.get('leaked_frames')}/{r.get('frames_with_reference_faces')} "
                f"(confirmed faces: {r.get('leaked_frames_confirmed_faces')}) "
                f"collateral={r.get('collateral')} frames={r.get('frames')} size={r.get('size')} "
                f"audio={r.get('audio_s')} s "
                f"duration={r.get('duration_s')} bytes={ratio}x input "
                f"peak={r['peak_rss_mb']} MB exit={r['exit']}"
            )
    floor = entry["transcode_floor_s"]
    line.append(
        f"  transcode floor: {floor} s ({round(frames / floor, 2)} fps), {entry['floor_psnr_db']} dB, "
        f"{entry['floor_bytes_over_input']}x the input's bytes"
    )
    print("\n".join(line), flush=True)


if __name__ == "__main__":
    sys.exit(main())
