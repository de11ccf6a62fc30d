"""Where a clip's time goes: each detection pass, choice, tracking, text,
verification, and the rest (decoding and encoding run on threads of their
own, so they show as the time left over), with the frames each pass
searched, whole or in windows, and the peak memory.

    python benchmarks/stages.py CLIP [--no-verify] [--detection FIELD=VALUE ...] [--json FILE]

One process, veil's library with its defaults (verification on unless
--no-verify). The shares are of the run's wall time on the main thread.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from veil import AnonymizeOptions, anonymize_file, track, verify, verify_text
from veil.detection import detect, retinaface, second_look
from veil.pipeline import clip as clip_path
from veil.pipeline import photo

from video import add_detection_argument, with_detection

SECONDS: dict[str, float] = defaultdict(float)
FRAMES: Counter[str] = Counter()


def timed(owner: Any, name: str, stage: str | Callable[..., str]) -> None:
    """Time every call of owner.name under `stage` (or what it returns for the call)."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SECONDS[stage if isinstance(stage, str) else stage(*args, **kwargs)] += (
                time.perf_counter() - started
            )

    setattr(owner, name, wrapper)


def _who(detector: detect.CenterFaceDetector) -> str:
    return "verify" if detector.options.max_upscale <= 1.0 and not detector.options.mirror else "anonymize"


def _time_passes() -> None:
    """Each pass of CenterFace, whole or in a window, by who runs it."""
    original = detect.CenterFaceDetector.iter_pass_finds

    def passes(self: detect.CenterFaceDetector, image: Any, chosen: list[detect.Pass]) -> Iterator[Any]:
        started = time.perf_counter()
        where = "window" if getattr(self, "_frame_shape", image.shape) != image.shape else "whole"
        for search, finds in original(self, image, chosen):
            label = f"{_who(self)}: {search.label} ({where})"
            SECONDS[label] += time.perf_counter() - started
            FRAMES[label] += 1
            yield search, finds
            started = time.perf_counter()

    detect.CenterFaceDetector.iter_pass_finds = passes  # type: ignore[method-assign]
    original_one = detect.CenterFaceDetector.pass_finds

    def one(self: detect.CenterFaceDetector, image: Any, search: detect.Pass, heat: Any = None) -> Any:
        self._frame_shape = image.shape  # type: ignore[attr-defined]
        started = time.perf_counter()
        try:
            return original_one(self, image, search, heat)
        finally:
            label = f"{_who(self)}: {search.label} (whole)"
            SECONDS[label] += time.perf_counter() - started
            FRAMES[label] += 1

    detect.CenterFaceDetector.pass_finds = one  # type: ignore[method-assign]
    original_search = detect.CenterFaceDetector.search

    def search(self: detect.CenterFaceDetector, image: Any, chosen: list[detect.Pass]) -> Any:
        self._frame_shape = image.shape  # type: ignore[attr-defined]
        return original_search(self, image, chosen)

    detect.CenterFaceDetector.search = search  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("clip", type=Path)
    parser.add_argument("--no-verify", action="store_true")
    add_detection_argument(parser)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    options = with_detection(AnonymizeOptions(verify=not args.no_verify), args.detection)
    _time_passes()
    timed(retinaface.RetinaFaceDetector, "detect_many", "verify: RetinaFace")
    timed(second_look.SecondLook, "look", "second look (choice and verify)")
    timed(track.FaceTracker, "push", "tracking")
    timed(photo, "frame_text", "text: search")
    timed(clip_path, "frame_text", "text: search")
    timed(verify_text, "text_under_masks", "verify: text under masks")
    timed(verify, "text_under_masks", "verify: text under masks")
    with tempfile.TemporaryDirectory(prefix="veil-stages-") as tmp:
        started = time.perf_counter()
        report = anonymize_file(args.clip, Path(tmp) / args.clip.name, options)
        total = time.perf_counter() - started
    frames = report.video.frames if report.video else 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    accounted = sum(SECONDS.values())
    result = {
        "clip": args.clip.name,
        "status": str(report.status),
        "frames": frames,
        "seconds": round(total, 2),
        "fps": round(frames / total, 3),
        "peak_rss_mb": peak,
        "stages_s": {k: round(v, 2) for k, v in sorted(SECONDS.items(), key=lambda kv: -kv[1])},
        "other_s (decode, encode, merge, draw)": round(total - accounted, 2),
        "frames_per_pass": dict(sorted(FRAMES.items())),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if report.status.value == "anonymized" else 1


if __name__ == "__main__":
    sys.exit(main())
