"""Decode video frame by frame (the writing side is `encode.py`).

Memory stays bounded: frames stream through. Timing is kept exactly: each
frame carries its PTS in the input stream's time base (variable frame rate
included), and the frame count is checked. Display rotation is baked into
the pixels, so the frames come out upright.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import numpy.typing as npt

from veil.errors import (
    CorruptInputError,
    ImageTooLargeError,
    SeekError,
    UnreadableInputError,
    UnsupportedFormatError,
)
from veil.media.isolate import Beat, isolated
from veil.options import InputLimits

# Output container by file suffix.
VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
MAX_VIDEO_BYTES = 1 << 40  # a clip larger than this is refused before decoding
# Stream tags that describe structure, not the recording.
_NEUTRAL_TAGS = {
    "language", "handler_name", "vendor_id", "major_brand", "minor_version", "compatible_brands", "duration",
}  # fmt: skip


# FFmpeg's options for opening an input: local files only, and only the
# demuxers of veil's formats (mov covers MP4, M4V and MOV; matroska covers
# WebM), so neither HLS, DASH, concat nor any other list can name a source.
_DEMUXING = {"protocol_whitelist": "file", "format_whitelist": "mov,matroska"}
_NO_PIXELS = np.zeros((0, 0, 3), np.uint8)


@dataclass(frozen=True)
class VideoFrameIn:
    index: int
    pts: int
    pixels: npt.NDArray[np.uint8]  # upright RGB


@dataclass(frozen=True)
class VideoProbe:
    width: int  # upright
    height: int
    frames: int  # as declared by the container; 0 when it does not say
    time_base: Fraction
    rate: Fraction
    rotation: int  # degrees turned to make it upright
    video_codec: str
    audio_codec: str | None
    metadata: list[str]
    bit_rate: int = 0  # of the video stream, bits per second (0: not known)


class VideoSource:
    """An opened input video: probe it, then iterate frames and audio packets.

    FFmpeg may read only local files (its `file` protocol) through the
    demuxers of the formats veil handles: a playlist, a concat list or a
    reference inside a crafted file can never make it fetch a URL or open
    another file. Sizes, frame counts and durations beyond `limits` are
    refused from the headers; with `limits.isolate` the whole video is first
    decoded once in a child process under the limits' clock and memory
    ceiling (`veil.media.isolate`).
    """

    def __init__(self, path: Path, limits: InputLimits | None = None) -> None:
        self.limits = limits or InputLimits()
        if self.limits.isolate:
            isolated(_scan_in_child, path, self.limits, limits=self.limits)
        try:
            self._container = av.open(str(path), mode="r", metadata_errors="ignore", options=dict(_DEMUXING))
        except av.error.FileNotFoundError as e:
            raise UnreadableInputError("no such file") from e
        except (av.error.InvalidDataError, av.error.EOFError) as e:
            raise CorruptInputError(f"not a readable video (truncated or damaged?): {e}") from e
        except av.FFmpegError as e:
            raise UnsupportedFormatError(f"cannot open as video: {e}") from e
        if not self._container.streams.video:
            self._container.close()
            raise UnsupportedFormatError("no video stream")
        self._video = self._container.streams.video[0]
        # One decoding thread: with frame threads FFmpeg flagged a damaged
        # frame in some runs and not in others (benchmarks/fuzz.py), so one
        # file could be refused once and anonymized the next time. Decoding
        # costs a few milliseconds a 1080p frame more this way (105 frames:
        # 0.87 s against 0.50 s), against about a second for detection.
        self._video.thread_type = "NONE"
        audio = self._container.streams.audio
        self.audio_stream = audio[0] if audio else None
        try:
            self.probe = self._probe()
            self._check_limits()
        except BaseException:
            self._container.close()
            raise

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._container.close()

    def _probe(self) -> VideoProbe:
        video = self._video
        codec = video.codec_context
        if codec is None:
            raise UnsupportedFormatError("the video stream's codec is unknown or damaged")
        if self.audio_stream is not None and self.audio_stream.codec_context is None:
            raise UnsupportedFormatError("the audio stream's codec is unknown or damaged")
        if codec.width <= 0 or codec.height <= 0:
            raise CorruptInputError("video stream has no frame size")
        if codec.width * codec.height > self.limits.max_video_pixels:
            raise ImageTooLargeError(
                f"video frames are {codec.width}x{codec.height}, more than the limit of "
                f"{self.limits.max_video_pixels} pixels"
            )
        # FFmpeg's own cap too, for frames that grow after the header (a new
        # sequence header mid-stream): the decoder refuses them.
        codec.options = {"max_pixels": str(self.limits.max_video_pixels)}
        rotation = _first_rotation(self._container, video)
        turns = round((rotation or 0) / 90) % 4
        width, height = (codec.height, codec.width) if turns % 2 else (codec.width, codec.height)
        return VideoProbe(
            width=width,
            height=height,
            frames=video.frames or 0,
            time_base=video.time_base or Fraction(1, 90000),
            rate=Fraction(video.average_rate or video.guessed_rate or 30),
            rotation=turns * 90,
            video_codec=codec.name,
            audio_codec=self.audio_stream.codec_context.name if self.audio_stream else None,
            metadata=self._metadata_names(),
            bit_rate=self._video_bit_rate(),
        )

    def _check_limits(self) -> None:
        """Refuse, from the headers, sizes no camera makes (a crafted file can
        declare anything, and decoders allocate for what is declared)."""
        probe, limits = self.probe, self.limits
        if probe.frames > limits.max_video_frames:
            raise ImageTooLargeError(
                f"video declares {probe.frames} frames, more than the limit of {limits.max_video_frames}"
            )
        declared = self._declared_seconds()
        if declared is not None and declared > limits.max_video_seconds:
            raise ImageTooLargeError(
                f"video declares {float(declared):.0f} s, "
                f"more than the limit of {limits.max_video_seconds:.0f} s"
            )

    def scan(self, beat: Beat) -> int:
        """Decode every frame, with the checks of `iter_media` but no pixels
        made, calling `beat` as frames come; the number of frames."""
        count = 0
        for item in self.iter_media(pixels=False):
            if not isinstance(item, av.Packet):
                count += 1
                if count > self.limits.max_video_frames:
                    raise ImageTooLargeError(f"video has more than {self.limits.max_video_frames} frames")
                beat()
        return count

    def _video_bit_rate(self) -> int:
        """The video stream's bits per second: declared, or the file's less its sound's."""
        if self._video.bit_rate:
            return int(self._video.bit_rate)
        total = self._container.bit_rate or 0
        sound = (self.audio_stream.bit_rate or 0) if self.audio_stream else 0
        return max(0, int(total) - int(sound))

    def _metadata_names(self) -> list[str]:
        names = {f"container:{key}" for key in self._container.metadata if key.lower() not in _NEUTRAL_TAGS}
        for stream in self._container.streams:
            names.update(
                f"{stream.type}:{key}" for key in stream.metadata if key.lower() not in _NEUTRAL_TAGS
            )
            if stream is not self._video and stream is not self.audio_stream:
                names.add(f"{stream.type} stream {stream.index} (not copied)")
        if getattr(self._container, "chapters", None) and self._container.chapters():
            names.add("chapters (not copied)")
        return sorted(names)

    def iter_media(self, pixels: bool = True) -> Iterator[VideoFrameIn | av.Packet]:
        """Upright frames of the first video stream, and packets of the first
        audio stream, in file order. Damaged data raises CorruptInputError.
        Without `pixels`, frames come with an empty array (for `scan`)."""
        streams = [self._video] + ([self.audio_stream] if self.audio_stream else [])
        index = 0
        first_pts = last_pts = None
        try:
            for packet in self._container.demux(streams):
                if packet.stream is not self._video:
                    if packet.dts is not None:
                        yield packet
                    continue
                for frame in _decode(packet):
                    if getattr(frame, "is_corrupt", False):
                        raise CorruptInputError(f"damaged video data at frame {index}")
                    pts = _frame_pts(frame.pts, last_pts, self.probe)
                    yield VideoFrameIn(index, pts, self._upright(frame) if pixels else _NO_PIXELS)
                    index += 1
                    last_pts = pts
                    first_pts = pts if first_pts is None else first_pts
        except av.FFmpegError as e:
            raise CorruptInputError(f"damaged or truncated video at frame {index}: {e}") from e
        if index == 0:
            raise CorruptInputError("no video frames could be decoded")
        if self.probe.frames and index != self.probe.frames:
            raise CorruptInputError(f"truncated or damaged: decoded {index} of {self.probe.frames} frames")
        self._check_length(first_pts, last_pts)

    def iter_audio(self) -> Iterator[av.Packet]:
        """The packets of the first audio stream, in file order (none without one)."""
        if self.audio_stream is None:
            return
        try:
            self._container.seek(0)
            for packet in self._container.demux(self.audio_stream):
                if packet.dts is not None:
                    yield packet
        except av.FFmpegError as e:
            raise CorruptInputError(f"damaged or truncated sound: {e}") from e

    def packet_index(self) -> tuple[list[int], list[int]]:
        """The video packets' timestamps in presentation order (one a frame,
        read without decoding), and the indices among them of key frames."""
        try:
            packets = [
                (int(p.pts), p.is_keyframe)
                for p in self._container.demux(self._video)
                if p.pts is not None and p.size
            ]
            self._container.seek(0)
        except av.FFmpegError as e:
            raise CorruptInputError(f"damaged video: {e}") from e
        packets.sort()
        stamps = [pts for pts, _ in packets]
        return stamps, [index for index, (_, key) in enumerate(packets) if key]

    def frames_between(self, seek: int, stop: int, start: int | None = None) -> Iterator[VideoFrameIn]:
        """Frames `start` (default: `seek`) to `stop` (exclusive), decoded
        from a seek to frame `seek`, which must be a key frame of
        `packet_index`. A frame whose timestamp is not the one the index
        gives its place raises SeekError: the file cannot be read in pieces."""
        stamps = self.packet_index()[0]
        index: int | None = None
        first = seek if start is None else start
        try:
            # A demuxer may land on an earlier key frame (MOV seeks by decoding
            # time): frames before the one asked for are decoded and passed.
            self._container.seek(stamps[seek], stream=self._video, backward=True, any_frame=False)
            for frame in self._container.decode(self._video):
                if index is None:
                    index = bisect.bisect_left(stamps, frame.pts) if frame.pts is not None else len(stamps)
                    if index > seek or index == len(stamps):
                        raise SeekError(f"a seek to frame {seek} landed after it")
                if getattr(frame, "is_corrupt", False):
                    raise CorruptInputError(f"damaged video data at frame {index}")
                if frame.pts != stamps[index]:
                    raise SeekError(f"frame {index} has timestamp {frame.pts}, not {stamps[index]}")
                if index >= first:
                    yield VideoFrameIn(index, stamps[index], self._upright(frame))
                index += 1
                if index == stop:
                    return
        except av.FFmpegError as e:
            raise CorruptInputError(f"damaged or truncated video at frame {index}: {e}") from e
        raise SeekError(f"frames end at {index}, before {stop}")

    def _upright(self, frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
        """A decoded frame's RGB pixels, turned as the display matrix says."""
        pixels = frame.to_ndarray(format="rgb24")
        turns = self.probe.rotation // 90
        return np.ascontiguousarray(np.rot90(pixels, k=turns)) if turns else pixels

    def _check_length(self, first_pts: int | None, last_pts: int | None) -> None:
        """Containers that do not count frames (Matroska, WebM) still declare a
        duration: a clip whose frames stop well short of it was cut off."""
        declared = self._declared_seconds()
        if declared is None or first_pts is None or last_pts is None:
            return
        interval = 1 / self.probe.rate if self.probe.rate else Fraction(1, 25)
        decoded = (last_pts - first_pts) * self.probe.time_base + interval
        if declared - decoded > max(3 * interval, declared / 50):
            raise CorruptInputError(
                f"truncated: frames stop at {float(decoded):.2f} s of a declared {float(declared):.2f} s"
            )

    def _declared_seconds(self) -> Fraction | None:
        if self._video.duration and self._video.time_base:
            return Fraction(self._video.duration) * Fraction(self._video.time_base)
        if self._container.duration:
            return Fraction(self._container.duration, av.time_base)
        return None


def _scan_in_child(path: Path, limits: InputLimits, beat: Beat) -> int:
    with VideoSource(path, replace(limits, isolate=False)) as video:
        return video.scan(beat)


def _decode(packet: av.Packet) -> list[av.VideoFrame]:
    """A packet's frames; the empty packet that ends a stream may meet a decoder
    that has already been drained (a stream with no frames at all)."""
    try:
        return list(packet.decode())
    except av.error.EOFError:
        if packet.size:
            raise
        return []


def _first_rotation(container: av.container.InputContainer, video: av.VideoStream) -> int | None:
    """Display rotation from the first frame's display matrix (None: no frame)."""
    try:
        for frame in container.decode(video):
            return round(getattr(frame, "rotation", 0) or 0)
        return None
    except av.FFmpegError as e:
        raise CorruptInputError(f"damaged video: {e}") from e
    finally:
        with contextlib.suppress(av.FFmpegError):
            container.seek(0)  # rewinds and resets the decoders for iter_media


def _frame_pts(pts: int | None, last: int | None, probe: VideoProbe) -> int:
    """The frame's PTS; when missing or not increasing, one frame after the last."""
    if pts is not None and (last is None or pts > last):
        return int(pts)
    step = max(1, round(1 / (probe.rate * probe.time_base))) if probe.rate else 1
    return (last if last is not None else -step) + step


class FrameReader(VideoSource):
    """Frames by index, for looking at a clip frame by frame (`veil review`).

    Index i is the i-th frame `iter_media` yields. The packets' timestamps,
    read once without decoding, say which timestamp each index has; a frame
    is then reached by seeking to the key frame before it and decoding
    forward, or by decoding on from the last one when it lies just ahead.
    A file whose timestamps do not give one frame per packet is read from
    its start instead: slow, but never the wrong frame.
    """

    _AHEAD = 90  # decode on rather than seek when the frame is this close ahead

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self._pts = self._scan()
        except BaseException:
            self._container.close()
            raise
        self._decoded: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._next = 0

    @property
    def frames(self) -> int:
        return len(self._pts)

    def seconds(self) -> list[Fraction]:
        """When each frame is shown, in seconds from the first: PTS x time base."""
        first = self._pts[0]
        return [(pts - first) * self.probe.time_base for pts in self._pts]

    def _scan(self) -> list[int]:
        stamps, _ = self.packet_index()
        if not stamps:
            raise CorruptInputError("no video frames")
        return stamps

    def frame(self, index: int) -> npt.NDArray[np.uint8]:
        """The upright RGB pixels of frame `index`."""
        if not 0 <= index < len(self._pts):
            raise IndexError(f"frame {index} is not one of the clip's {len(self._pts)} frames")
        try:
            if self._decoded is None or not self._next <= index <= self._next + self._AHEAD:
                self._decoded = self._seek(index)
            for found, frame in self._decoded:
                self._next = found + 1
                if found == index:
                    return self._upright(frame)
                if found > index:
                    break
        except av.FFmpegError as e:
            raise CorruptInputError(f"damaged video data near frame {index}: {e}") from e
        self._decoded = None
        raise CorruptInputError(f"frame {index} could not be decoded")

    def _seek(self, index: int) -> Iterator[tuple[int, av.VideoFrame]]:
        self._container.seek(self._pts[index], stream=self._video, backward=True, any_frame=False)
        return self._indexed(self._container.decode(self._video))

    def _indexed(self, frames: Iterator[av.VideoFrame]) -> Iterator[tuple[int, av.VideoFrame]]:
        for frame in frames:
            at = bisect.bisect_left(self._pts, frame.pts) if frame.pts is not None else len(self._pts)
            if at >= len(self._pts) or self._pts[at] != frame.pts:
                yield from self._counted()  # timestamps do not name frames here: count from the start
                return
            yield at, frame

    def _counted(self) -> Iterator[tuple[int, av.VideoFrame]]:
        self._container.seek(0)
        yield from enumerate(self._container.decode(self._video))
