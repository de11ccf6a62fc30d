"""A long clip in parts, masked by workers side by side and joined into one
file without encoding anything again.

A worker first surveys the clip (`survey`): it is decoded whole once, in a
child process under the decoding limits, and its packets' timestamps and
key frames are read. The clip is then cut at key frames (`cut_parts`).
Each part's worker decodes from the key frame before its context, detects
and tracks from some way before its first frame to some way past its last
(`overlap`: enough that tracking, gap filling and the memory of people seen
reach over the cut as they would in one piece), and encodes only its own
frames, without sound, to a file of its own, beginning on a key frame
(`anonymize_part`).
One worker then joins the parts (`join_parts`): their packets go into the
output as they are, with the input's sound, and the output is verified
like any other. A clip whose frames cannot be found again from its key
frames is done in one piece.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av

from veil.detection.choose import ChoosingDetector
from veil.detection.detect import clip
from veil.errors import SeekError
from veil.jobs import Job
from veil.media.encode import VideoSink
from veil.media.files import atomic_output, check_input_file
from veil.media.video import MAX_VIDEO_BYTES, VIDEO_FORMATS, VideoSource
from veil.options import AnonymizeOptions, AudioMode
from veil.pipeline.clip import Span, output_sink, stream_frames, video_result
from veil.pipeline.output import FrameProgress, write_checked
from veil.plan.files import file_sha256
from veil.plan.make import TrackRecorder
from veil.plan.model import Plan
from veil.report import (
    FileReport,
)
from veil.verify import Attacked, Verifier


@dataclass(frozen=True)
class Survey:
    """A clip's frames as its packets give them: timestamps in presentation
    order, and the indices of its key frames."""

    stamps: tuple[int, ...]
    keys: tuple[int, ...]

    @property
    def frames(self) -> int:
        return len(self.stamps)


@dataclass(frozen=True)
class Part:
    number: int
    span: Span


@dataclass(frozen=True)
class PartResult:
    """What a part's worker made: its file and what it masked where."""

    number: int
    path: str
    recorder: TrackRecorder
    faces_per_frame: list[int]
    boxes_per_frame: list[list[tuple[int, int, int, int]]]
    not_masked: int
    tracks: int
    frames_filled: int
    attacked: Attacked | None  # its frames, attacked as verification does (None: not verified)


def overlap(options: AnonymizeOptions) -> int:
    """Frames decoded and tracked beyond a part's own on each side."""
    return 4 * options.video.tracking.delay + options.choice.people_memory + 8


def survey(source: Path) -> Survey:
    """Decode the whole clip once under the limits (`VideoSource` does, in a
    child process), then read its packets' timestamps. SeekError: not a
    clip to cut (timestamps missing, repeated, or not one a frame)."""
    with VideoSource(source) as video:
        stamps, keys = video.packet_index()
        declared = video.probe.frames
    if not stamps or len(set(stamps)) != len(stamps) or (declared and declared != len(stamps)):
        raise SeekError("the packets' timestamps do not name one frame each")
    if not keys or keys[0] != 0:
        raise SeekError("the clip does not begin on a key frame")
    return Survey(tuple(stamps), tuple(keys))


def cut_parts(clip: Survey, workers: int, options: AnonymizeOptions) -> list[Part]:
    """Cut `clip` at key frames into parts of about `segment_frames` frames
    or more, two a worker at most; no parts (an empty list) for a clip too
    short to cut, or without key frames where cuts could go."""
    length = options.video.segment_frames
    frames, margin = clip.frames, overlap(options)
    count = min(2 * workers, frames // length) if length > 0 else 0
    if count < 2:
        return []
    cuts = [0]
    for number in range(1, count):
        wanted = round(number * frames / count)
        at = bisect.bisect_left(clip.keys, wanted)
        near = [clip.keys[i] for i in (at - 1, at) if 0 <= i < len(clip.keys)]
        key = min(near, key=lambda k: abs(k - wanted))
        if key - cuts[-1] >= length // 2 and frames - key >= length // 2:
            cuts.append(key)
    if len(cuts) < 2:
        return []
    bounds = [*cuts, frames]
    parts = []
    for number, (first, end) in enumerate(itertools.pairwise(bounds)):
        start = max(0, first - margin)
        seek = clip.keys[max(0, bisect.bisect_right(clip.keys, start) - 1)]
        parts.append(Part(number, Span(seek, start, min(frames, end + margin), range(first, end))))
    return parts


def part_name(folder: Path, job: Job, number: int) -> Path:
    return folder / f"part{number:04d}{job.target.suffix.lower()}"


def anonymize_part(
    job: Job,
    part: Part,
    folder: Path,
    options: AnonymizeOptions,
    detector: ChoosingDetector,
    verifier: Verifier | None,
    on_frame: FrameProgress | None = None,
) -> PartResult:
    """Mask `part` of `job`'s clip into a file of its own in `folder`, and
    attack its frames with `verifier` (the worker's own cores verify it)."""
    path = part_name(folder, job, part.number)
    limits = replace(options.limits, isolate=False)  # the survey decoded it all under the limits
    with VideoSource(job.source, limits) as video:
        sink = VideoSink(
            path,
            VIDEO_FORMATS[job.target.suffix.lower()],
            video.probe,
            None,
            AudioMode.DROP,
            options.video.crf,
            options.video.bitrate_cap,
            exact_start=True,
        )
        with clip(part.span.stop - part.span.start, detector):
            try:
                streamed = stream_frames(video, sink, options, detector, on_frame, part.span)
                sink.close()
            except BaseException:
                sink.abort()
                raise
    if sink.frames != len(part.span.keep):
        raise SeekError(f"part {part.number} has {sink.frames} frames, not {len(part.span.keep)}")
    tracking = streamed.tracker.summary()
    attacked = None
    if options.verify:
        verifier = verifier or Verifier(options.verification, options.device)
        attacked = verifier.attack_part(job.source, path, part.span.keep)
    return PartResult(
        part.number,
        str(path),
        streamed.recorder,
        streamed.faces_per_frame,
        streamed.boxes_per_frame,
        streamed.not_masked,
        tracking.tracks,
        tracking.frames_filled,
        attacked,
    )


def join_parts(
    job: Job, parts: list[PartResult], options: AnonymizeOptions, verifier: Verifier | None
) -> FileReport:
    """The clip's output from its parts and the input's sound, its plan, and
    its verification; or a failure report, with no output."""
    ordered = sorted(parts, key=lambda p: p.number)

    def attacked() -> list[Attacked]:
        if not options.verify:
            return []  # not asked for
        found = [part.attacked for part in ordered]
        if any(a is None for a in found):
            raise SeekError("a part was not attacked: the clip is verified whole")
        return [a for a in found if a is not None]

    return write_checked(
        job.source,
        job.target,
        options,
        lambda: _joined(job.source, job.target, ordered, options),
        verifier,
        attacked,
    )


def _joined(
    source: Path, target: Path, parts: list[PartResult], options: AnonymizeOptions
) -> tuple[FileReport, Plan]:
    check_input_file(source, MAX_VIDEO_BYTES)
    container_format = VIDEO_FORMATS[target.suffix.lower()]
    sha256 = file_sha256(source)
    limits = replace(options.limits, isolate=False)
    with VideoSource(source, limits) as video, ExitStack() as stack, atomic_output(target) as temporary:
        probe = video.probe
        readers = [
            stack.enter_context(av.open(part.path, options={"protocol_whitelist": "file"})) for part in parts
        ]
        streams = [reader.streams.video[0] for reader in readers]
        first = streams[0]
        for stream in streams[1:]:
            if (
                stream.time_base != first.time_base
                or stream.codec_context.extradata != first.codec_context.extradata
            ):
                raise SeekError("the parts were not encoded alike")
        sink = output_sink(temporary, container_format, video, options.video, encoded=first)
        try:
            pictures = (p for reader, s in zip(readers, streams, strict=True) for p in _packets(reader, s))
            for packet in heapq.merge(_timed(pictures), _timed(video.iter_audio()), key=lambda t: t[0]):
                if packet[1].stream.type == "video":
                    sink.write_packet(packet[1])
                else:
                    sink.write_audio(packet[1])
            sink.close()
        except BaseException:
            sink.abort()
            raise
    expected = sum(len(part.faces_per_frame) for part in parts)
    if sink.frames != expected:
        raise SeekError(f"the parts joined hold {sink.frames} frames, not {expected}")
    return video_result(
        source,
        target,
        container_format,
        probe,
        sink,
        sha256,
        TrackRecorder.joined([part.recorder for part in parts]),
        options,
        tracks=sum(part.tracks for part in parts),
        frames_filled_by_tracking=sum(part.frames_filled for part in parts),
        candidates_not_masked=sum(part.not_masked for part in parts),
        parts=len(parts),
        faces_per_frame=[count for part in parts for count in part.faces_per_frame],
        boxes_per_frame=[boxes for part in parts for boxes in part.boxes_per_frame],
    )


def _packets(reader: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.Packet]:
    for packet in reader.demux(stream):
        if packet.size and packet.pts is not None:
            yield packet


def _timed(packets: Iterator[av.Packet]) -> Iterator[tuple[Fraction, av.Packet]]:
    """Packets with the time each is to be muxed at, for merging streams."""
    for packet in packets:
        stamp = packet.dts if packet.dts is not None else packet.pts
        yield Fraction(stamp or 0) * Fraction(packet.time_base), packet
