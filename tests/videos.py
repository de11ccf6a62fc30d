"""Small clips made in the tests with PyAV: the astronaut's face moving across
frames, a tone on the audio track, optional variable frame rate, rotation tag,
location and date tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from conftest import ASTRONAUT_FACE

FRAME = (480, 320)  # width, height
SCALE = 0.5  # the astronaut at half size: a face about 50 x 63 px
STEP = 6  # pixels the face moves right per frame
TIME_BASE = Fraction(1, 90000)


@dataclass
class Clip:
    path: Path
    pts: list[int] = field(default_factory=list)  # in TIME_BASE
    faces: list[tuple[int, int, int, int]] = field(default_factory=list)  # upright, per frame
    audio_seconds: float = 0.0


def astronaut_frame(
    astronaut: npt.NDArray[np.uint8], index: int
) -> tuple[npt.NDArray[np.uint8], tuple[int, ...]]:
    width, height = FRAME
    small = cv2.resize(astronaut, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 90, np.uint8)
    x = 10 + STEP * index
    frame[20 : 20 + small.shape[0], x : x + small.shape[1]] = small[: height - 20, : width - x]
    x1, y1, x2, y2 = (round(v * SCALE) for v in ASTRONAUT_FACE)
    return frame, (x + x1, 20 + y1, x + x2, 20 + y2)


def make_clip(
    path: Path,
    astronaut: npt.NDArray[np.uint8],
    frames: int = 12,
    variable_rate: bool = False,
    audio: bool = True,
    rotation: int = 0,
    tags: dict[str, str] | None = None,
    key_every: int = 0,
    rate: int = 25,
    time_base: Fraction = TIME_BASE,
) -> Clip:
    """Write a clip; with `rotation`, pixels are stored turned and a display
    matrix says how to turn them back (as phones do); with `key_every`, a key
    frame every that many frames (else the encoder's choice: one here);
    `rate` and `time_base`, as a phone writes them, 30 and 1/15360 say."""
    clip = Clip(path)
    codec, audio_codec = ("libvpx-vp9", "libopus") if path.suffix == ".webm" else ("libx264", "aac")
    with av.open(str(path), "w") as out:
        out.metadata.update(tags or {})
        video = out.add_stream(codec, rate=rate)
        width, height = FRAME
        turns = rotation // 90
        video.width, video.height = (height, width) if turns % 2 else (width, height)
        video.pix_fmt = "yuv420p"
        video.time_base = time_base
        video.codec_context.time_base = time_base
        step = time_base.denominator // (rate * time_base.numerator)
        if rotation:
            video.set_display_rotation(rotation)
        if key_every:
            video.codec_context.gop_size = key_every
            if codec == "libx264":
                video.options = {"x264-params": f"keyint={key_every}:min-keyint={key_every}:scenecut=0"}
        for key, value in (tags or {}).items():
            video.metadata[key] = value
        sound = out.add_stream(audio_codec, rate=48000) if audio else None
        pts = 0
        for index in range(frames):
            upright, face = astronaut_frame(astronaut, index)
            stored = np.ascontiguousarray(np.rot90(upright, k=-turns))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            out.mux(video.encode(frame))
            clip.pts.append(pts)
            clip.faces.append(face)  # type: ignore[arg-type]
            pts += (3 * step // 4 if index % 3 else 3 * step // 2) if variable_rate else step
        out.mux(video.encode(None))
        if sound is not None:
            seconds = pts * time_base
            samples = int(seconds * 48000)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            size = sound.codec_context.frame_size or 960
            for start in range(0, samples, size):
                chunk = tone[start : start + size][None, :]
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
            clip.audio_seconds = samples / 48000
    return clip


def read_clip(path: Path) -> tuple[list[npt.NDArray[np.uint8]], list[Fraction], av.container.InputContainer]:
    """Decoded frames (as stored) and their times in seconds."""
    container = av.open(str(path))
    frames, times = [], []
    for frame in container.decode(video=0):
        frames.append(frame.to_ndarray(format="rgb24"))
        times.append(frame.pts * frame.time_base)
    return frames, times, container


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0.0
        return sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].rate


def make_crowd(
    path: Path, astronaut: npt.NDArray[np.uint8], frames: int = 151, people: int = 12, seed: int = 23
) -> None:
    """A crowd seen from afar, without sound: `people` small heads (about 12
    to 30 px faces) drifting each its own way over grainy ground, bouncing
    off the edges, with people passing in front of one another."""
    rng = np.random.default_rng(seed)
    width, height = 384, 256
    head = astronaut[20:230, 140:310]  # the face with the hair around it
    ground = (rng.random((height, width, 3)) * 40 + 20).astype(np.uint8)
    walkers = []
    for _ in range(people):
        small = cv2.resize(
            head, None, fx=rng.uniform(0.11, 0.25), fy=rng.uniform(0.11, 0.25), interpolation=cv2.INTER_AREA
        )
        room = np.array([width - small.shape[1], height - small.shape[0]], float)
        walkers.append((small, rng.random(2) * room, rng.uniform(-2.5, 2.5, 2), room))
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            picture = ground.copy()
            for small, start, speed, room in walkers:
                x, y = np.abs((start + speed * index + room) % (2 * room) - room)  # bounced off the edges
                picture[round(y) : round(y) + small.shape[0], round(x) : round(x) + small.shape[1]] = small
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
