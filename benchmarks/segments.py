"""A long clip in parts (`veil.segments`) against the clip in one piece, on
this machine, in the same run: seconds for each (verification on, as by
default), and whether the two outputs have the same frames, timestamps and
masks in every frame.

    python benchmarks/segments.py [--clip ../shared/data/video/egoblur_gen1_test_video.mp4]
        [--jobs 2] [--segment-frames 150]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from veil.batch.run import run_batch
from veil.jobs import Job
from veil.media.video import VideoSource
from veil.options import AnonymizeOptions

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO.parent / "shared" / "data" / "video" / "egoblur_gen1_test_video.mp4"


def times(path: Path) -> list[int]:
    with VideoSource(path) as video:
        return [item.pts for item in video.iter_media(pixels=False) if not hasattr(item, "stream")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--segment-frames", type=int, default=150)
    args = parser.parse_args()
    options = AnonymizeOptions()
    options = replace(options, video=replace(options.video, segment_frames=args.segment_frames))
    with tempfile.TemporaryDirectory() as folder:
        runs = {}
        for name, jobs in (("one piece, --jobs 1", 1), (f"in parts, --jobs {args.jobs}", args.jobs)):
            target = Path(folder) / name.split(",")[0].replace(" ", "-") / args.clip.name
            started = time.monotonic()
            report = run_batch([Job(args.clip, target)], options, jobs=jobs).files[0]
            seconds = time.monotonic() - started
            assert report.video is not None, report.error
            passed = report.verification.passed if report.verification else None
            print(f"{name}: {seconds:.1f} s, {report.video.parts} part(s), verification passed: {passed}")
            runs[name] = (seconds, report, times(target))
        (one, whole, whole_times), (parts, split, split_times) = runs.values()
    assert whole.video is not None and split.video is not None
    print(f"speed-up: {one / parts:.2f}x")
    print(f"same frames and timestamps: {whole_times == split_times} ({len(split_times)} frames)")
    same = sum(a == b for a, b in zip(whole.video.boxes_per_frame, split.video.boxes_per_frame, strict=True))
    print(f"frames masked alike: {same} of {len(split.video.boxes_per_frame)}")


if __name__ == "__main__":
    main()
