"""The photo pipeline: decode -> detect -> mask -> encode, one file or many.

Every function returns a finished report; nothing here prints or exits.
A file that fails leaves no output and a one-line error in its report, and
the rest of a batch goes on.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil import devices
from veil.background import Worker, prefetched
from veil.choose import Choice, ChoosingDetector, Reason
from veil.detect import Detector
from veil.detections import Detections
from veil.errors import VeilError
from veil.masks import apply_masks
from veil.media.files import atomic_output, check_input_file
from veil.media.image import PHOTO_SUFFIXES, read_image, write_image
from veil.media.video import VIDEO_FORMATS, VideoFrameIn, VideoSink, VideoSource
from veil.models import ModelSpec
from veil.options import AnonymizeOptions
from veil.report import FaceReport, FileReport, FileStatus, ModelInfo, RunReport, VideoReport
from veil.track import FaceTracker, is_scene_cut, thumbnail
from veil.verify import Verifier

log = logging.getLogger(__name__)

OUTPUT_INFIX = ".veil"

Progress = Callable[[FileReport], None]
FrameProgress = Callable[[int, int], None]  # frames done, frames expected (0: unknown)
MAX_VIDEO_BYTES = 1 << 40


@dataclass(frozen=True)
class ImageResult:
    """An anonymized array, the faces that were masked in it and, when the
    detector chose among candidates, the whole choice."""

    image: npt.NDArray[np.uint8]
    detections: Detections
    choice: Choice | None = None

    @property
    def faces(self) -> list[FaceReport]:
        if self.choice is None:
            return _face_reports(self.detections)
        return _face_reports(self.choice.kept, [r for r in self.choice.reasons if r.masked])

    @property
    def not_masked(self) -> list[FaceReport]:
        if self.choice is None:
            return []
        return _face_reports(self.choice.dropped, [r for r in self.choice.reasons if not r.masked])


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    source: Path
    target: Path


def veil_version() -> str:
    try:
        return version("veil")
    except PackageNotFoundError:
        return "0+unknown"


def anonymize_image(
    image: npt.NDArray[np.uint8],
    options: AnonymizeOptions | None = None,
    detector: Detector | None = None,
) -> ImageResult:
    """Mask every face in an upright HxWx3 uint8 RGB array; returns a new array."""
    options = options or AnonymizeOptions()
    detector = detector or devices.face_detector(options)
    if isinstance(detector, ChoosingDetector):
        choice = detector.choice(image)
        return ImageResult(apply_masks(image, choice.kept, options.mask), choice.kept, choice)
    detections = detector.detect(image)
    return ImageResult(apply_masks(image, detections, options.mask), detections)


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
    try:
        detector = detector or devices.face_detector(options)
        if target.resolve() == source.resolve():
            raise VeilError("output path is the input itself")
        if is_video(source):
            report = _anonymize_video(source, target, options, detector, on_frame)
        else:
            report = _anonymize_photo(source, target, options, detector)
        if options.verify:
            verifier = verifier or Verifier(options.verification, options.device)
            report = replace(report, verification=verifier.verify(source, target, options.video.audio))
        return report
    except VeilError as e:
        return _failure(source, e)
    except Exception as e:  # fail closed on anything unforeseen, keep the batch going
        log.debug("unexpected error on %s", source, exc_info=True)
        return _failure(source, e, prefix="internal error: ")


def _anonymize_photo(source: Path, target: Path, options: AnonymizeOptions, detector: Detector) -> FileReport:
    decoded = read_image(source, options.limits)
    result = anonymize_image(decoded.pixels, options, detector)
    alpha = decoded.alpha
    if alpha is not None and len(result.detections):
        alpha = _opaque_where_changed(alpha, decoded.pixels, result.image)
    write_image(target, result.image, alpha, decoded.encoding)
    height, width = result.image.shape[:2]
    return FileReport(
        input=str(source),
        status=FileStatus.ANONYMIZED,
        output=str(target),
        format=decoded.encoding.format,
        width=width,
        height=height,
        orientation_applied=decoded.orientation,
        faces=result.faces,
        not_masked=result.not_masked,
        metadata_removed=decoded.metadata,
    )


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_FORMATS


def _anonymize_video(
    source: Path,
    target: Path,
    options: AnonymizeOptions,
    detector: Detector,
    on_frame: FrameProgress | None,
) -> FileReport:
    """Stream a clip through detect -> track -> mask -> encode; fail closed."""
    check_input_file(source, MAX_VIDEO_BYTES)
    container_format = VIDEO_FORMATS[target.suffix.lower()]
    with VideoSource(source) as video, atomic_output(target) as temporary:
        probe = video.probe
        sink = VideoSink(
            temporary, container_format, probe, video.audio_stream, options.video.audio, options.video.crf
        )
        detector.expect_clip(probe.frames)
        try:
            streamed = _stream_frames(video, sink, options, detector, on_frame)
            sink.close()
        except BaseException:
            sink.abort()
            raise
        finally:
            detector.expect_clip(0)
        frames, audio, duration = sink.frames, sink.audio_outcome, sink.duration
    tracking = streamed.tracker.summary()
    return FileReport(
        input=str(source),
        status=FileStatus.ANONYMIZED,
        output=str(target),
        format=container_format,
        width=probe.width,
        height=probe.height,
        metadata_removed=probe.metadata,
        video=VideoReport(
            frames=frames,
            duration_s=round(float(duration), 6),
            time_base=str(probe.time_base),
            audio=audio,
            rotation_baked=probe.rotation,
            tracks=tracking.tracks,
            frames_filled_by_tracking=tracking.frames_filled,
            candidates_not_masked=streamed.not_masked,
            faces_per_frame=streamed.faces_per_frame,
            boxes_per_frame=streamed.boxes_per_frame,
        ),
    )


@dataclass
class _Streamed:
    """What streaming a clip's frames produced, besides the frames."""

    tracker: FaceTracker
    faces_per_frame: list[int] = field(default_factory=list)
    boxes_per_frame: list[list[tuple[int, int, int, int]]] = field(default_factory=list)
    not_masked: int = 0  # candidates the choice dropped, over all frames


def _stream_frames(
    video: VideoSource,
    sink: VideoSink,
    options: AnonymizeOptions,
    detector: Detector,
    on_frame: FrameProgress | None,
) -> _Streamed:
    """Frames are decoded ahead on one thread and masked and encoded behind on
    another, while this one detects, `detector.batch` frames at a time.
    Frames wait in `pending` until tracking has seen enough later frames to
    know every box they need; memory holds only that many frames."""
    streamed = _Streamed(FaceTracker(options.video.tracking))
    tracker = streamed.tracker
    pending: deque[VideoFrameIn] = deque()
    batch: list[VideoFrameIn] = []
    previous = None
    encoder = Worker()

    def encode(pixels: npt.NDArray[np.uint8], boxes: Detections, pts: int) -> None:
        sink.write_frame(apply_masks(pixels, boxes, options.mask), pts)
        if on_frame is not None:
            on_frame(sink.frames, video.probe.frames)

    def emit(frame: VideoFrameIn) -> None:
        boxes = tracker.boxes_for(frame.index)
        streamed.faces_per_frame.append(int(np.count_nonzero(boxes.scores > 0)))
        streamed.boxes_per_frame.append(
            [(round(x1), round(y1), round(x2), round(y2)) for x1, y1, x2, y2 in boxes.boxes.tolist()]
        )
        encoder.submit(lambda: encode(frame.pixels, boxes, frame.pts))

    def detect_batch() -> None:
        nonlocal previous
        pixels, indices = [f.pixels for f in batch], [f.index for f in batch]
        cuts = []
        for frame in batch:
            current = thumbnail(frame.pixels)
            cuts.append(is_scene_cut(previous, current, options.video.tracking.cut_threshold))
            previous = current
        if isinstance(detector, ChoosingDetector):
            choices = detector.frame_choices(pixels, indices, cuts)
            streamed.not_masked += sum(len(choice.dropped) for choice in choices)
            found = [choice.kept for choice in choices]
        else:
            found = detector.detect_frames(pixels, indices)
        for frame, detections, cut in zip(batch, found, cuts, strict=True):
            tracker.push(frame.index, detections, scene_cut=cut)
            pending.append(frame)
            while pending and tracker.is_final(pending[0].index):
                emit(pending.popleft())
        batch.clear()

    try:
        with closing(prefetched(video.iter_media())) as media:
            for item in media:
                if not isinstance(item, VideoFrameIn):
                    encoder.submit(partial(sink.write_audio, item))
                    continue
                batch.append(item)
                if len(batch) >= detector.batch:
                    detect_batch()
        detect_batch()
        tracker.finish()
        while pending:
            emit(pending.popleft())
    except BaseException:
        encoder.abandon()
        raise
    encoder.finish()
    return streamed


def _opaque_where_changed(
    alpha: npt.NDArray[np.uint8], before: npt.NDArray[np.uint8], after: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """Masks must be seen: make them opaque even where the input was transparent."""
    changed = np.any(before != after, axis=2)
    out = alpha.copy()
    out[changed] = 255
    return out


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
    out = Path(out_dir) if out_dir is not None else None
    return run_jobs(plan_jobs([Path(p) for p in paths], out), options, progress, detector, on_frame)


def run_jobs(
    planned: list[Job | FileReport],
    options: AnonymizeOptions | None = None,
    progress: Progress | None = None,
    detector: Detector | None = None,
    on_frame: FrameProgress | None = None,
) -> RunReport:
    """Carry out planned jobs in order; planned reports (skips) pass straight through."""
    options = options or AnonymizeOptions()
    detector = detector or devices.face_detector(options)
    verifier = Verifier(options.verification, options.device) if options.verify else None
    report = new_run_report(options, detector, verifier)
    for entry in planned:
        if isinstance(entry, FileReport):
            file_report = entry
        else:
            file_report = anonymize_file(entry.source, entry.target, options, detector, on_frame, verifier)
        report.files.append(file_report)
        if progress is not None:
            progress(file_report)
    return report


def new_run_report(options: AnonymizeOptions, detector: Detector, verifier: Verifier | None) -> RunReport:
    return RunReport(
        veil_version=veil_version(),
        model=model_info(detector.model),
        options=asdict(options),
        verifier_models=[model_info(m) for m in verifier.models] if verifier else [],
    )


def model_info(model: ModelSpec) -> ModelInfo:
    return ModelInfo(model.name, model.sha256, model.package, model.licence)


def plan_jobs(paths: list[Path], out_dir: Path | None) -> list[Job | FileReport]:
    """Jobs for every photo under `paths`, in a stable order; files found in
    folders that are not photos come back as skipped or failed reports."""
    planned: list[Job | FileReport] = []
    targets: set[Path] = set()
    for path in paths:
        for source, relative in _walk(path, skip=out_dir):
            entry = _plan_one(source, relative, path.is_dir(), out_dir)
            if isinstance(entry, Job):
                key = entry.target.resolve()
                if key in targets:
                    clash = VeilError(f"two inputs would write the same output {entry.target}")
                    entry = _failure(source, clash)
                targets.add(key)
            planned.append(entry)
    return planned


def _walk(path: Path, skip: Path | None) -> Iterator[tuple[Path, Path]]:
    """Files under `path` (itself, if a file) with their paths relative to it,
    sorted, without following links to folders or entering `skip` (an output
    folder inside an input folder: earlier results are not inputs)."""
    if not path.is_dir():
        yield path, Path(path.name)
        return
    skipped = skip.resolve() if skip is not None else None
    found: list[Path] = []
    for folder, subfolders, files in os.walk(path):
        if folder != str(path) and Path(folder).resolve() == skipped:
            subfolders.clear()
            continue
        found.extend(Path(folder) / name for name in files)
    for source in sorted(found):
        yield source, source.relative_to(path)


def _plan_one(source: Path, relative: Path, from_folder: bool, out_dir: Path | None) -> Job | FileReport:
    suffix = source.suffix.lower()
    if from_folder:
        if any(part.startswith(".") for part in relative.parts):
            return FileReport(input=str(source), status=FileStatus.SKIPPED, error="hidden file")
        if out_dir is None and is_veil_output(source):
            return FileReport(input=str(source), status=FileStatus.SKIPPED, error="a veil output")
        if suffix not in PHOTO_SUFFIXES and suffix not in VIDEO_FORMATS:
            return FileReport(input=str(source), status=FileStatus.SKIPPED, error="not a photo")
    target = out_dir / relative if out_dir is not None else default_target(source)
    return Job(source, target)


def default_target(source: Path) -> Path:
    return source.with_name(f"{source.stem}{OUTPUT_INFIX}{source.suffix}")


def is_veil_output(path: Path) -> bool:
    return path.stem.endswith(OUTPUT_INFIX)


def _failure(source: Path, error: Exception, prefix: str = "") -> FileReport:
    message = str(error) or type(error).__name__
    return FileReport(
        input=str(source),
        status=FileStatus.FAILED,
        error=prefix + message.splitlines()[0],
        error_type=type(error).__name__,
    )


def _face_reports(detections: Detections, reasons: list[Reason] | None = None) -> list[FaceReport]:
    why: list[str | None] = [r.value for r in reasons] if reasons is not None else [None] * len(detections)
    return [
        FaceReport(
            box=(round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)), score=round(score, 3), reason=reason
        )
        for (x1, y1, x2, y2), score, reason in zip(
            detections.boxes.tolist(), detections.scores.tolist(), why, strict=True
        )
    ]


def plan_pairs(original: Path, anonymized: Path) -> list[tuple[Path, Path]]:
    """(original, output) pairs for `veil verify`: two files, or every photo
    and video under a folder with its output at the same relative path in the
    other folder (a file and a folder: the output of that name inside it)."""
    if not original.is_dir():
        target = anonymized / original.name if anonymized.is_dir() else anonymized
        return [(original, target)]
    return [
        (entry.source, entry.target)
        for entry in plan_jobs([original], anonymized)
        if isinstance(entry, Job) and not is_veil_output(entry.source)
    ]
