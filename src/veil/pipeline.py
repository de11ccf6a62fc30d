"""The photo pipeline: decode -> detect -> mask -> encode, one file or many.

Every function returns a finished report; nothing here prints or exits.
A file that fails leaves no output and a one-line error in its report, and
the rest of a batch goes on.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from veil import devices
from veil.background import Worker, prefetched
from veil.choose import Choice, ChoosingDetector
from veil.detect import Detector
from veil.detections import Detections
from veil.errors import OutputExistsError, VeilError
from veil.jobs import default_target, failure_report, is_video, plan_jobs
from veil.media.encode import VideoSink
from veil.media.files import atomic_output, check_input_file, remove_output
from veil.media.image import read_image, write_image
from veil.media.video import VIDEO_FORMATS, VideoFrameIn, VideoProbe, VideoSource
from veil.models import TEXT_DETECTOR, ModelSpec
from veil.options import AnonymizeOptions
from veil.photo import frame_text, photo_decisions
from veil.plan.files import file_sha256, plan_path, save_plan
from veil.plan.make import TrackRecorder, photo_plan
from veil.plan.model import Decision, Kind, Mask, Plan, Shape, Source
from veil.plan.render import draw, opaque_where_changed
from veil.report import (
    FaceReport,
    FileReport,
    FileStatus,
    ModelInfo,
    RunReport,
    TextReport,
    VideoReport,
)
from veil.track import FaceTracker, is_scene_cut, thumbnail
from veil.verify import Attacked, Verifier

log = logging.getLogger(__name__)


Progress = Callable[[FileReport], None]
FrameProgress = Callable[[int, int], None]  # frames done, frames expected (0: unknown)
MAX_VIDEO_BYTES = 1 << 40


def veil_version() -> str:
    try:
        return version("veil")
    except PackageNotFoundError:
        return "0+unknown"


def anonymize_file(
    source: Path | str,
    target: Path | str | None = None,
    options: AnonymizeOptions | None = None,
    detector: Detector | None = None,
    on_frame: FrameProgress | None = None,
    verifier: Verifier | None = None,
) -> FileReport:
    """Anonymize one photo or video into `target` (default NAME.veil.EXT beside it),
    then, unless `options.verify` is off, attack the output (`veil.verify`).
    A failed verification keeps the output and says so in the report."""
    source = Path(source)
    target = Path(target) if target is not None else default_target(source)
    options = options or AnonymizeOptions()

    def make() -> tuple[FileReport, Plan]:
        found = detector or devices.face_detector(options)
        if is_video(source):
            return _anonymize_video(source, target, options, found, on_frame)
        return _anonymize_photo(source, target, options, found)

    return write_checked(source, target, options, make, verifier)


def write_checked(
    source: Path,
    target: Path,
    options: AnonymizeOptions,
    make: Callable[[], tuple[FileReport, Plan]],
    verifier: Verifier | None,
    attacked: Callable[[], Sequence[Attacked]] | None = None,
) -> FileReport:
    """Write `target` from `source` with `make` (which lands the output and
    returns its report and plan) when the names are free, then its plan,
    then verify it; fail closed, as one report, on any error."""
    try:
        if target.resolve() == source.resolve():
            raise VeilError("output path is the input itself")
        if target.exists() or target.is_symlink():
            raise OutputExistsError(f"output exists, not overwriting: {target}")
        plan_file = plan_path(target)
        if plan_file.exists() or plan_file.is_symlink():
            raise OutputExistsError(f"plan exists, not overwriting: {plan_file}")
        report, plan = make()
        save_beside(plan, plan_file, target)
        try:
            return verified_report(
                replace(report, plan=str(plan_file)),
                source,
                target,
                plan,
                options,
                verifier,
                attacked() if attacked is not None else None,
            )
        except BaseException:  # an output that could not be checked is not left behind
            remove_output(plan_file)
            remove_output(target)
            raise
    except VeilError as e:
        return failure_report(source, e)
    except Exception as e:  # fail closed on anything unforeseen, keep the batch going
        log.debug("unexpected error on %s", source, exc_info=True)
        return failure_report(source, e, prefix="internal error: ")


def save_beside(plan: Plan, path: Path, output: Path) -> None:
    try:
        save_plan(plan, path)
    except BaseException:
        with contextlib.suppress(OSError, VeilError):
            remove_output(output)  # no output without its plan
        raise


def verified_report(
    report: FileReport,
    original: Path,
    output: Path,
    plan: Plan,
    options: AnonymizeOptions,
    verifier: Verifier | None,
    attacked: Sequence[Attacked] | None = None,
    on_frame: FrameProgress | None = None,
) -> FileReport:
    """`report` with the verification of `output`, unless `options.verify` is
    off (`attacked`: its frames were attacked already, part by part;
    `on_frame`: hears the frames attacked)."""
    if not options.verify:
        return report
    verifier = verifier or Verifier(options.verification, options.device)
    verdict = verifier.verify(original, output, options.video.audio, plan, attacked, on_frame)
    return replace(report, verification=verdict)


def _anonymize_photo(
    source: Path, target: Path, options: AnonymizeOptions, detector: Detector
) -> tuple[FileReport, Plan]:
    """Detect, make the plan, render the output from it."""
    decoded = read_image(source, options.limits)
    height, width = decoded.pixels.shape[:2]
    found, text = photo_decisions(decoded.pixels, options, detector)
    origin = Source(source.name, file_sha256(source), width, height)
    plan = photo_plan(origin, found, options.mask, veil_version(), text)
    image = draw(decoded.pixels, plan.masks_at(None), plan.mask)
    alpha = decoded.alpha
    if alpha is not None:
        alpha = opaque_where_changed(alpha, decoded.pixels, image)
    write_image(target, image, alpha, decoded.encoding)
    report = FileReport(
        input=str(source),
        status=FileStatus.ANONYMIZED,
        output=str(target),
        format=decoded.encoding.format,
        width=width,
        height=height,
        orientation_applied=decoded.orientation,
        faces=region_reports(plan, Decision.MASK),
        not_masked=region_reports(plan, Decision.DROP),
        text=text_reports(plan),
        metadata_removed=decoded.metadata,
    )
    return report, plan


def region_reports(plan: Plan, decision: Decision) -> list[FaceReport]:
    """A photo's regions with `decision`, as the report lists faces (found
    text is listed apart, `text_reports`)."""
    return [
        FaceReport(
            box,
            region.found.score if region.found else 0.0,
            region.found.why if region.found else region.label or region.kind.value,
            region.id,
        )
        for region, box in plan.regions_at(None, decision)
        if region.kind is not Kind.TEXT
    ]


def text_reports(plan: Plan) -> list[TextReport]:
    """The lines of text veil found, as the report lists them (in a clip,
    each with its box in the first frame it is masked in)."""
    return [
        TextReport(
            region.box if region.box is not None else region.track[0].box,
            region.label or "text",
            region.decision.value,
            region.reason or (region.found.why if region.found else None),
            region.id,
        )
        for region in plan.regions
        if region.kind is Kind.TEXT and (region.box is not None or region.track)
    ]


def _anonymize_video(
    source: Path,
    target: Path,
    options: AnonymizeOptions,
    detector: Detector,
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
        sink = output_sink(temporary, container_format, video, options)
        detector.expect_clip(probe.frames)
        try:
            streamed = stream_frames(video, sink, options, detector, on_frame)
            sink.close()
        except BaseException:
            sink.abort()
            raise
        finally:
            detector.expect_clip(0)
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
    out: BinaryIO, container_format: str, video: VideoSource, options: AnonymizeOptions, **more: Any
) -> VideoSink:
    """The sink of a clip's output, with its sound as `options` say."""
    return VideoSink(
        out,
        container_format,
        video.probe,
        video.audio_stream,
        options.video.audio,
        options.video.crf,
        options.video.bitrate_cap,
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
    detector: Detector,
    on_frame: FrameProgress | None,
    span: Span | None = None,
) -> _Streamed:
    """Frames are decoded ahead on one thread and masked and encoded behind on
    another, while this one detects, `detector.batch` frames at a time.
    Frames wait in `pending` until tracking has seen enough later frames to
    know every box they need; memory holds only that many frames.

    With `span`, only the frames it reads are streamed (a part of a long
    clip, `veil.segments`): all are detected and tracked, those it keeps are
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
        # The detector is told where each frame is in the clip: passes take turns by it.
        pixels, indices = [f.pixels for f in batch], [f.index + offset for f in batch]
        cuts = []
        for frame in batch:
            current = thumbnail(frame.pixels)
            cuts.append(is_scene_cut(previous, current, options.video.tracking.cut_threshold))
            previous = current
        decided: list[Choice | Detections]
        if isinstance(detector, ChoosingDetector):
            choices = detector.frame_choices(pixels, indices, cuts)
            streamed.not_masked += sum(len(choice.dropped) for choice in choices)
            found = [choice.kept for choice in choices]
            decided = list(choices)
        else:
            found = detector.detect_frames(pixels, indices)
            decided = list(found)
        for frame, detections, made, cut in zip(batch, found, decided, cuts, strict=True):
            tracker.push(frame.index, detections, scene_cut=cut)
            if text_tracker is not None:
                searched = (frame.index + offset) % every == 0
                text = frame_text(frame.pixels, made, options) if searched else Detections.empty()
                text_tracker.push(frame.index, text, scene_cut=cut)
            pending.append(frame)
            while pending and is_final(pending[0].index):
                emit(pending.popleft())
        batch.clear()

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


def anonymize_paths(
    paths: Iterable[Path | str],
    out_dir: Path | str | None = None,
    options: AnonymizeOptions | None = None,
    progress: Progress | None = None,
    detector: Detector | None = None,
    on_frame: FrameProgress | None = None,
) -> RunReport:
    """Anonymize files and folders (walked recursively) and return the run's report.

    With `out_dir`, each output keeps its path relative to the folder it was
    found in (a file given directly lands at the top of `out_dir`); without,
    it is written beside its input as NAME.veil.EXT.
    """
    from veil.batch.run import run_batch  # here: the batch builds on this module

    out = Path(out_dir) if out_dir is not None else None
    planned = plan_jobs([Path(p) for p in paths], out)
    return run_batch(planned, options or AnonymizeOptions(), None, 1, progress, on_frame, detector)


def new_run_report(options: AnonymizeOptions, detector: Detector, verifier: Verifier | None) -> RunReport:
    return RunReport(
        veil_version=veil_version(),
        model=model_info(detector.model),
        options=asdict(options),
        text_model=model_info(TEXT_DETECTOR) if options.text.hide else None,
        verifier_models=[model_info(m) for m in verifier.models] if verifier else [],
    )


def model_info(model: ModelSpec) -> ModelInfo:
    return ModelInfo(model.name, model.sha256, model.package, model.licence)
