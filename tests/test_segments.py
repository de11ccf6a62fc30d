"""A long clip cut into parts that two workers mask side by side, joined
without encoding again: the same frames at the same times, the same sound
and the same masks in every frame as the clip done in one piece, the joined
output verified, and no part left behind. Clips that cannot be cut are done
in one piece.

The clips here are short, so tracking's reach (and with it the overlap of
the parts) is cut down too: the cuts fall where a face is in view."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from veil import AnonymizeOptions, ChoiceOptions, FileStatus, anonymize_file
from veil.batch.run import run_batch
from veil.jobs import Job
from veil.media.video import VideoSource
from veil.options import TrackingOptions, VideoOptions
from veil.pipeline import parts as segments

from videos import audio_seconds, make_clip

OPTIONS = AnonymizeOptions(
    video=VideoOptions(segment_frames=20, tracking=TrackingOptions(max_gap=2, extend=1)),
    choice=ChoiceOptions(people_memory=2),
)


def frames_and_times(path: Path) -> tuple[int, list[int]]:
    with VideoSource(path) as video:
        times = [item.pts for item in video.iter_media(pixels=False) if not hasattr(item, "stream")]
    return len(times), times


def parts_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("veil-parts-*"))


@pytest.mark.parametrize(
    "name, made",
    [
        ("clip.mp4", {}),
        ("vfr.mov", {"variable_rate": True}),
        ("clip.webm", {}),
        # A phone's time base: parts start between milliseconds, where an MP4
        # edit list in its default time scale would move them.
        ("phone.mp4", {"rate": 30, "time_base": Fraction(1, 15360)}),
    ],
)
def test_a_clip_in_parts_is_the_clip_in_one_piece(
    tmp_path: Path, astronaut: npt.NDArray[np.uint8], name: str, made: dict[str, Any]
) -> None:
    source = tmp_path / "in" / name
    source.parent.mkdir()
    make_clip(source, astronaut, frames=64, key_every=8, **made)
    before = parts_folders()
    split = run_batch([Job(source, tmp_path / "split" / name)], OPTIONS, jobs=2).files[0]
    whole = anonymize_file(source, tmp_path / "whole" / name, replace(OPTIONS, verify=False))
    assert split.status is whole.status is FileStatus.ANONYMIZED, split.error
    assert split.video is not None and whole.video is not None
    assert split.video.parts == 3 and whole.video.parts == 1
    assert split.video.boxes_per_frame == whole.video.boxes_per_frame  # every frame masked alike
    assert split.video.faces_per_frame == whole.video.faces_per_frame
    assert frames_and_times(tmp_path / "split" / name) == frames_and_times(source)
    assert split.video.duration_s == whole.video.duration_s
    assert audio_seconds(tmp_path / "split" / name) == pytest.approx(audio_seconds(source), abs=0.03)
    assert split.verification is not None and split.verification.passed, split.verification
    assert (tmp_path / "split" / f"{name}.plan.json").exists()
    assert parts_folders() == before
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == [name, f"{name}.plan.json"]


def test_parts_cut_at_key_frames_cover_each_frame_once() -> None:
    clip = segments.Survey(tuple(range(0, 300 * 3600, 3600)), tuple(range(0, 300, 25)))
    options = replace(OPTIONS, video=replace(OPTIONS.video, segment_frames=50))
    parts = segments.cut_parts(clip, 2, options)
    assert len(parts) == 4
    kept = [frame for part in parts for frame in part.span.keep]
    assert kept == list(range(300))
    margin = segments.overlap(options)
    for part in parts:
        assert part.span.keep.start in clip.keys and part.span.seek in clip.keys
        assert part.span.seek <= part.span.start == max(0, part.span.keep.start - margin)
        assert part.span.stop == min(300, part.span.keep.stop + margin)


def test_clips_too_short_or_without_key_frames_to_cut_at_are_not_cut() -> None:
    short = segments.Survey(tuple(range(30)), tuple(range(0, 30, 5)))
    assert segments.cut_parts(short, 2, OPTIONS) == []  # under two parts' worth
    one_key = segments.Survey(tuple(range(300)), (0,))
    assert segments.cut_parts(one_key, 2, OPTIONS) == []


def test_a_clip_with_one_key_frame_is_done_in_one_piece(
    tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    source = tmp_path / "clip.mp4"
    make_clip(source, astronaut, frames=48)
    report = run_batch([Job(source, tmp_path / "out" / "clip.mp4")], OPTIONS, jobs=2).files[0]
    assert report.status is FileStatus.ANONYMIZED and report.video is not None
    assert report.video.parts == 1 and report.video.frames == 48
