"""Write a new video file from masked frames.

Each output frame carries its input frame's PTS in the input stream's time
base, so timing is kept exactly. The output container is new: no container
or stream tags, chapters, subtitles or data streams (GPS tracks) are copied.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.error
import numpy as np
import numpy.typing as npt

from veil.errors import OutputError
from veil.media.video import VideoProbe
from veil.options import AudioMode

# Video codec by container.
_VP9_CONTAINERS = {"webm"}
# Audio codecs each container takes as they are; others are re-encoded.
_AUDIO_COPY = {
    "mp4": {"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"},
    "webm": {"opus", "vorbis"},
}
_STANDARD_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# Encoders decide by their thread count: a fixed one makes the same output
# bytes on every machine and with any --jobs (x264 would take 1.5 per core).
_ENCODER_THREADS = "4"
# x264 holding a rate cap (its VBV) on more than one thread reads how far its
# other threads have got, and that depends on timing: the same frames came
# out different from one run to the next (201 frames with 16 moving faces:
# three runs, three outputs, on slice and on frame threads alike). On one
# thread it is exact. It costs no CPU time (1080p: 7.8 s for 90 frames
# against 8.2 s on 4 threads), only speed when the encoder is the slowest
# stage (11.5 against 15-18 frames a second at 1080p on 2 cores), and
# detection is far slower than that.
_CAPPED_THREADS = "1"
# Muxers that would write random identifiers (Matroska's segment and track
# UIDs) or their own version write fixed ones.
_MUXING = {"fflags": "+bitexact"}


class VideoSink:
    """A new video file: H.264 (VP9 for WebM) frames at the input's PTS, and
    the audio kept, muted or dropped."""

    def __init__(
        self,
        path: Path | BinaryIO,
        container_format: str,
        probe: VideoProbe,
        audio_in: av.AudioStream | None,
        audio: AudioMode,
        crf: int,
        bitrate_cap: float = 0.0,
        encoded: av.VideoStream | None = None,
        exact_start: bool = False,
    ) -> None:
        """`bitrate_cap`: the H.264 stream's bit rate is held under this
        multiple of the input's (0: no cap), so a clip keeps about its size.
        `path` may be an open file (`atomic_output`'s): PyAV then writes to it.
        With `encoded`, a stream encoded already (the first of a clip's parts,
        `veil.segments`) says what the video is, and its packets and those of
        the other parts are given to `write_packet`, not encoded again.
        `exact_start`: an MP4 or MOV file says where its first frame starts in
        the stream's own time base, not in milliseconds (its edit list would
        round a part's start by up to half of one)."""
        target = str(path) if isinstance(path, Path) else path
        settings = dict(_MUXING)
        if exact_start and container_format in ("mp4", "mov"):
            settings["movie_timescale"] = str(probe.time_base.denominator)
        self._container = av.open(target, mode="w", format=container_format, options=settings)
        self._time_base = probe.time_base
        self._encoding = encoded is None
        self._last_dts: int | None = None
        if encoded is not None:
            self._video = self._container.add_stream_from_template(encoded)
            self._video.metadata.clear()
            self._add_sound(container_format, probe, audio_in, audio)
            return
        vp9 = container_format in _VP9_CONTAINERS
        stream = self._container.add_stream("libvpx-vp9" if vp9 else "libx264", rate=probe.rate)
        stream.width, stream.height = probe.width, probe.height
        even = probe.width % 2 == 0 and probe.height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.time_base = probe.time_base
        stream.codec_context.time_base = probe.time_base
        if vp9:
            stream.options = {
                "crf": str(crf + 12),
                "b": "0",
                "row-mt": "1",
                "cpu-used": "4",
                "deadline": "good",
                "threads": _ENCODER_THREADS,
            }
        else:
            stream.options = {"crf": str(crf), "preset": "fast", "threads": _ENCODER_THREADS}
            if bitrate_cap and probe.bit_rate:
                # Constant quality until the rate would pass the cap: x264's
                # VBV buffer then holds it, over about a second.
                cap = round(probe.bit_rate * bitrate_cap)
                stream.options |= {"maxrate": str(cap), "bufsize": str(cap), "threads": _CAPPED_THREADS}
        self._video = stream
        self._add_sound(container_format, probe, audio_in, audio)

    def _add_sound(
        self, container_format: str, probe: VideoProbe, audio_in: av.AudioStream | None, audio: AudioMode
    ) -> None:
        self.audio_mode = audio if audio_in is not None else None
        self._audio_in = audio_in
        self._audio_out: av.AudioStream | None = None
        self._audio_span: list[int] = []  # first pts, end pts, in the input's audio time base
        self._copy_audio = False
        if audio_in is not None and audio is not AudioMode.DROP:
            self._add_audio(container_format, audio_in, audio)
        self.frames = 0
        self._rate = probe.rate
        self._first_pts: int | None = None
        self._last_pts: int | None = None

    @property
    def audio_outcome(self) -> str:
        """For the report: what became of the input's sound."""
        if self._audio_in is None:
            return "none"
        if self.audio_mode is AudioMode.DROP:
            return "dropped"
        if self.audio_mode is AudioMode.MUTE:
            return "muted"
        return "kept" if self._copy_audio else "re-encoded"

    def _add_audio(self, container_format: str, audio_in: av.AudioStream, audio: AudioMode) -> None:
        name = audio_in.codec_context.name
        allowed = _AUDIO_COPY.get(container_format)
        if audio is AudioMode.KEEP and (allowed is None or name in allowed):
            self._audio_out = self._container.add_stream_from_template(audio_in)
            self._audio_out.metadata.clear()
            self._copy_audio = True
            return
        codec = "libopus" if container_format == "webm" else "aac"
        rate = 48000 if codec == "libopus" else audio_in.codec_context.sample_rate or 48000
        out = self._container.add_stream(codec, rate=rate)
        out.layout = _named_layout(audio_in)
        self._audio_out = out
        self._resampler = av.AudioResampler(format=out.codec_context.format, layout=out.layout, rate=rate)

    @property
    def duration(self) -> Fraction:
        """Seconds from the first frame's start to the last frame's end."""
        if self._first_pts is None or self._last_pts is None:
            return Fraction(0)
        return (self._last_pts - self._first_pts) * self._time_base + 1 / self._rate

    def write_frame(self, pixels: npt.NDArray[np.uint8], pts: int) -> None:
        if self._first_pts is None:
            self._first_pts = pts
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = pts
        frame.time_base = self._time_base
        self._mux(self._video.encode(frame))
        self.frames += 1

    def write_packet(self, packet: av.Packet) -> None:
        """A packet of an encoded part of this clip (frames in PTS order across
        parts, each part starting on a key frame). A decoding timestamp that
        would not follow the last, where one part's reordering delay meets
        the next part's start, is moved just after it."""
        assert not self._encoding
        if packet.pts is not None:
            pts = round(packet.pts * packet.time_base / self._time_base)
            self._first_pts = pts if self._first_pts is None else min(self._first_pts, pts)
            self._last_pts = pts if self._last_pts is None else max(self._last_pts, pts)
            self.frames += 1
        if packet.dts is not None and self._last_dts is not None and packet.dts <= self._last_dts:
            packet.dts = self._last_dts + 1
        if packet.dts is not None:
            self._last_dts = int(packet.dts)
        packet.stream = self._video
        self._mux([packet])

    def write_audio(self, packet: av.Packet) -> None:
        if self._audio_out is None or self._audio_in is None:
            return
        if packet.pts is not None:
            end = packet.pts + (packet.duration or 0)
            if not self._audio_span:
                self._audio_span = [packet.pts, end]
            self._audio_span[1] = max(self._audio_span[1], end)
        if self._copy_audio:
            packet.stream = self._audio_out
            self._mux([packet])
        elif self.audio_mode is AudioMode.KEEP:
            for frame in packet.decode():
                self._encode_audio(frame)

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        if self._encoding:
            self._mux(self._video.encode(None))
        if self._audio_out is not None and not self._copy_audio:
            if self.audio_mode is AudioMode.MUTE:
                self._write_silence()
            else:
                self._encode_audio(None)
            self._mux(self._audio_out.encode(None))
        self._container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()

    def _encode_audio(self, frame: av.AudioFrame | None) -> None:
        assert self._audio_out is not None
        for resampled in self._resampler.resample(frame):
            self._mux(self._audio_out.encode(resampled))

    def _write_silence(self) -> None:
        """Silence as long as the input's sound, from the same start time."""
        assert self._audio_out is not None and self._audio_in is not None
        if not self._audio_span:
            return
        rate = self._audio_out.codec_context.sample_rate
        start, end = self._audio_span
        seconds = (end - start) * self._audio_in.time_base
        total = round(seconds * rate)
        begin = round(start * self._audio_in.time_base * rate)
        size = self._audio_out.codec_context.frame_size or 1024
        layout = self._audio_out.layout.name
        channels = self._audio_out.layout.nb_channels
        written = 0
        while written < total:
            count = min(size, total - written)
            silence = np.zeros((channels, count), np.float32)
            frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = begin + written
            frame.time_base = Fraction(1, rate)
            self._encode_audio(frame)
            written += count
        self._encode_audio(None)

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except av.FFmpegError as e:
            raise OutputError(f"cannot write video: {e}") from e


def _named_layout(stream: av.AudioStream) -> str:
    """The input's channel layout, or the standard one for its channel count:
    encoders refuse unnamed layouts such as "1 channels"."""
    layout = stream.codec_context.layout
    if layout is not None and not layout.name.endswith("channels"):
        return str(layout.name)
    count = layout.nb_channels if layout is not None else 2
    return _STANDARD_LAYOUTS.get(count, "stereo")
