"""A clip streamed once: decode -> detect -> choose -> track -> plan -> draw ->
encode, each frame drawn as soon as tracking has made its boxes final.
A part of a long clip (`veil.pipeline.parts`) streams the same way.
"""

from __future__ import annotations

from collections import deque
from contextlib import closing
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from veil.background import Worker, prefetched
from veil.detection.choose import ChoosingDetector
from veil.detection.detect import clip
from veil.detections import Detections
from veil.masks import draw
from veil.media.encode import VideoSink
from veil.media.files import atomic_output, check_input_file
from veil.media.video import MAX_VIDEO_BYTES, VIDEO_FORMATS, VideoFrameIn, VideoProbe, VideoSource
from veil.options import AnonymizeOptions, VideoOptions
from veil.pipeline.output import FrameProgress, text_reports, veil_version
from veil.pipeline.photo import frame_text
from veil.plan.files import file_sha256
from veil.plan.make import TrackRecorder
from veil.plan.model import Kind, Mask, Plan, Shape, Source
from veil.report import (
    FileReport,
    FileStatus,
    VideoReport,
)
from veil.track import FaceTracker, is_scene_cut, thumbnail


def anonymize_video(
    source: Path,
    target: Path,
    options: AnonymizeOptions,
    detector: ChoosingDetector,
    on_frame: FrameProgress | None,
) -> tuple[FileReport, Plan]:
    """Stream a clip through detect -> track -> plan -> draw -> encode; fail
    closed. Each frame is drawn from the plan's boxes as soon as tracking
    has made them final, so the clip is decoded once."""
    check_input_file(source, MAX_VIDEO_BYTES)
    container_format = VIDEO_FORMATS[target.suffix.lower()]
    sha256 = file_sha256(source)
    with VideoSource(source) as video, atomic_output(target) as temporary:
        probe = video.probe
        sink = output_sink(temporary, container_format, video, options.video)
        with clip(probe.frames, detector):
            try:
                streamed = stream_frames(video, sink, options, detector, on_frame)
                sink.close()
            except BaseException:
                sink.abort()
                raise
    tracking = streamed.tracker.summary()
    return video_result(
        source,
        target,
        container_format,
        probe,
        sink,
        sha256,
        streamed.recorder,
        options,
        tracks=tracking.tracks,
        frames_filled_by_tracking=tracking.frames_filled,
        candidates_not_masked=streamed.not_masked,
        faces_per_frame=streamed.faces_per_frame,
        boxes_per_frame=streamed.boxes_per_frame,
    )


def output_sink(
    out: BinaryIO, container_format: str, video: VideoSource, options: VideoOptions, **more: Any
) -> VideoSink:
    """The sink of a clip's output, with its sound and quality as `options` say."""
    return VideoSink(
        out,
        container_format,
        video.probe,
        video.audio_stream,
        options.audio,
        options.crf,
        options.bitrate_cap,
        **more,
    )


def video_result(
    source: Path,
    target: Path,
    container_format: str,
    probe: VideoProbe,
    sink: VideoSink,
    sha256: str,
    recorder: TrackRecorder,
    options: AnonymizeOptions,
    **counts: Any,
) -> tuple[FileReport, Plan]:
    """The report and plan of a clip written through `sink`, its masks from
    `recorder`; `counts`: the tracking and detection figures of VideoReport."""
    origin = Source(source.name, sha256, probe.width, probe.height, sink.frames, str(probe.time_base))
    plan = recorder.plan(origin, options.mask, veil_version())
    video = VideoReport(
        frames=sink.frames,
        duration_s=round(float(sink.duration), 6),
        time_base=str(probe.time_base),
        audio=sink.audio_outcome,
        rotation_baked=probe.rotation,
        **counts,
    )
    report = FileReport(
        input=str(source),
        status=FileStatus.ANONYMIZED,
        output=str(target),
        format=container_format,
        width=probe.width,
        height=probe.height,
        text=text_reports(plan),
        metadata_removed=probe.metadata,
        video=video,
    )
    return report, plan


@dataclass(frozen=True)
class Span:
    """Frames `start` to `stop` (exclusive) of a clip, of which those in
    `keep` are its output; decoded from the key frame `seek` on (at or
    before `start`), detected and tracked from `start`."""

    seek: int
    start: int
    stop: int
    keep: range


@dataclass
class _Streamed:
    """What streaming a clip's frames produced, besides the frames."""

    tracker: FaceTracker
    recorder: TrackRecorder = field(default_factory=TrackRecorder)
    faces_per_frame: list[int] = field(default_factory=list)
    boxes_per_frame: list[list[tuple[int, int, int, int]]] = field(default_factory=list)
    not_masked: int = 0  # candidates the choice dropped, over all frames


def stream_frames(
    video: VideoSource,
    sink: VideoSink,
    options: AnonymizeOptions,
    detector: ChoosingDetector,
    on_frame: FrameProgress | None,
    span: Span | None = None,
) -> _Streamed:
    """Frames are decoded ahead on one thread and masked and encoded behind on
    another, while this one detects, `detector.batch` frames at a time.
    On the CPU a frame is searched once the next key frame has been
    (`veil.detection.schedule`), and then waits in `pending` until tracking
    has seen enough later frames to know every box it needs; memory holds
    only that many frames.

    With `span`, only the frames it reads are streamed (a part of a long
    clip, `veil.pipeline.parts`): all are detected and tracked, those it keeps are
    recorded and encoded.

    Text is searched on every `options.text.every`-th frame of the clip
    (counted from its first, so that parts and the whole agree) and
    followed by a tracker of its own, which masks each line from as many
    frames before the frame it was found in to as many after, and between
    two frames it was found in."""
    streamed = _Streamed(FaceTracker(options.video.tracking))
    every = options.text.every
    text_tracker = (
        FaceTracker(replace(options.video.tracking, max_gap=every, extend=every))
        if options.text.hide
        else None
    )
    offset = span.start if span is not None else 0
    media = video.iter_media() if span is None else video.frames_between(span.seek, span.stop, span.start)
    tracker = streamed.tracker
    pending: deque[VideoFrameIn] = deque()
    batch: list[VideoFrameIn] = []
    previous = None
    schedule = detector.schedule()
    held: dict[int, tuple[VideoFrameIn, bool]] = {}  # frames the schedule holds, with their scene cuts
    encoder = Worker()

    expected = len(span.keep) if span is not None else video.probe.frames

    def encode(pixels: npt.NDArray[np.uint8], masks: list[Mask], pts: int) -> None:
        sink.write_frame(draw(pixels, masks, options.mask), pts)
        if on_frame is not None:
            on_frame(sink.frames, expected)

    def is_final(index: int) -> bool:
        return tracker.is_final(index) and (text_tracker is None or text_tracker.is_final(index))

    def emit(frame: VideoFrameIn) -> None:
        tracked = tracker.tracked_for(frame.index)
        text = text_tracker.tracked_for(frame.index) if text_tracker is not None else []
        if span is not None and frame.index + offset not in span.keep:
            return  # context only: another part masks this frame
        boxes = streamed.recorder.record(frame.index + offset, tracked)
        text_boxes = streamed.recorder.record(frame.index + offset, text, Kind.TEXT)
        streamed.faces_per_frame.append(sum(1 for t in tracked if t.score > 0))
        streamed.boxes_per_frame.append(
            [(round(x1), round(y1), round(x2), round(y2)) for x1, y1, x2, y2 in boxes]
        )
        masks = [Mask(Shape.ELLIPSE, box) for box in boxes] + [Mask(Shape.BOX, box) for box in text_boxes]
        encoder.submit(lambda: encode(frame.pixels, masks, frame.pts))

    def detect_batch() -> None:
        nonlocal previous
        cuts, views = [], []
        for frame in batch:
            current = thumbnail(frame.pixels)
            cuts.append(is_scene_cut(previous, current, options.video.tracking.cut_threshold))
            views.append(current)
            previous = current
        if schedule is None:
            take(batch, cuts)
        else:
            for frame, view, cut in zip(batch, views, cuts, strict=True):
                held[frame.index + offset] = (frame, cut)
                searched(schedule.push(frame.index + offset, frame.pixels, view, cut))
        batch.clear()

    def searched(found: list[tuple[int, Detections]]) -> None:
        """Frames the schedule has searched, in order, on to choice and tracking."""
        if found:
            frames, cuts = zip(*(held.pop(index) for index, _ in found), strict=True)
            take(list(frames), list(cuts), [candidates for _, candidates in found])

    def take(frames: list[VideoFrameIn], cuts: list[bool], found: list[Detections] | None = None) -> None:
        # The detector is told where each frame is in the clip: the search's schedule goes by it.
        pixels, indices = [f.pixels for f in frames], [f.index + offset for f in frames]
        if found is None:
            choices = detector.frame_choices(pixels, indices, cuts)
        else:
            choices = detector.choose_frames(pixels, indices, found, cuts)
        streamed.not_masked += sum(len(choice.dropped) for choice in choices)
        for frame, choice, cut in zip(frames, choices, cuts, strict=True):
            tracker.push(frame.index, choice.kept, scene_cut=cut)
            if text_tracker is not None:
                text_turn = (frame.index + offset) % every == 0
                text = frame_text(frame.pixels, choice, options) if text_turn else Detections.empty()
                text_tracker.push(frame.index, text, scene_cut=cut)
            pending.append(frame)
            while pending and is_final(pending[0].index):
                emit(pending.popleft())

    try:
        with closing(prefetched(media)) as items:
            for item in items:
                if not isinstance(item, VideoFrameIn):
                    encoder.submit(partial(sink.write_audio, item))
                    continue
                batch.append(replace(item, index=item.index - offset) if offset else item)
                if len(batch) >= detector.batch:
                    detect_batch()
        detect_batch()
        if schedule is not None:
            searched(schedule.finish())
        tracker.finish()
        if text_tracker is not None:
            text_tracker.finish()
        while pending:
            emit(pending.popleft())
    except BaseException:
        encoder.abandon()
        raise
    encoder.finish()
    return streamed
