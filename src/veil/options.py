"""Option dataclasses: the one place where veil's defaults are written.

Every default protects: changing one to weaken protection is an explicit
choice that the CLI warns about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MaskMethod(StrEnum):
    """How a head region is hidden. Only SOLID is irreversible."""

    SOLID = "solid"
    BLUR = "blur"
    PIXELATE = "pixelate"

    @property
    def reversible(self) -> bool:
        return self is not MaskMethod.SOLID


class Device(StrEnum):
    """Where the detectors run: AUTO takes an NVIDIA GPU when PyTorch with
    CUDA is installed (veil[gpu]) and finds one, else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class DetectionOptions:
    """Where and how hard CenterFace looks for faces (`veil.detection.detect`).
    Why each default is what it is: benchmarks/HISTORY.md."""

    threshold: float = 0.1  # the least score a candidate is kept with
    max_upscale: float = 2.0  # the finest pass's enlargement, for crowds of small faces
    max_pixels: int = 12_000_000  # the finest pass's size at most: huge photos stay tractable
    coarse_side: int = 640  # the coarse pass's longer side, for faces filling the picture
    tile_side: int = 2560  # passes larger than this run in tiles
    tile_overlap: int = 128  # pixels shared by neighbouring tiles
    mirror: bool = True  # every pass but the finest also searches the mirrored image
    # Video on the CPU: every pass on every n-th frame (veil.detection.schedule). 12, tracking's
    # max_gap: a face found on two key frames is masked on the frames between them.
    video_key_every: int = 12
    video_key_change: float = 20.0  # ... and on a frame whose thumbnail moved this far (0-255) since the last
    video_change_level: int = 24  # between key frames: costly passes where grey changed, no face (0: off)
    int8_finest: bool = False  # the finest pass with 8-bit convolutions (loses small faces)
    int8_next: bool = False  # the passes at half the finest scale in 8 bits
    focus_threshold: float = 0.03  # the finest pass searches only where the next one scores this (0: all)

    def __post_init__(self) -> None:
        if self.video_key_every < 1:
            raise ValueError("video_key_every must be at least 1")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.max_upscale < 1.0:
            raise ValueError(f"max_upscale must be at least 1, got {self.max_upscale}")
        if not 0.0 <= self.focus_threshold < 1.0:
            raise ValueError(f"focus_threshold must be in [0, 1), got {self.focus_threshold}")
        if self.tile_overlap * 2 >= self.tile_side:
            raise ValueError("tile_overlap must be less than half of tile_side")


class Precision(StrEnum):
    """How much proof a face candidate needs before it is masked (`veil.detection.choose`).

    ALL masks every candidate the search finds (the most masks, many of
    them on texture); NORMAL, the default, asks for a second look where the
    picture shows no person and at candidates that are seldom faces; HIGH
    also drops weak unconfirmed candidates among people, and so loses faces.
    """

    ALL = "all"
    NORMAL = "normal"
    HIGH = "high"


@dataclass(frozen=True)
class ChoiceOptions:
    """Which candidates are masked (`veil.detection.choose`).

    A candidate scored `sure_score` or more and confirmed by a second look
    shows that the picture has people, and so do `crowd` confirmed small
    candidates. Among people, a candidate scored under `out_of_scale_score`
    and more than `out_of_scale` times as tall as the sure face nearest to
    it needs a look to be masked; with HIGH precision, so does every
    candidate under `weak_score`. In video, a frame up to `people_memory`
    frames after one that showed people counts as showing people too, until
    a scene cut.
    """

    precision: Precision = Precision.NORMAL
    sure_score: float = 0.5
    crowd: int = 3
    people_memory: int = 12
    out_of_scale: float = 3.0
    out_of_scale_score: float = 0.3
    weak_score: float = 0.2

    def __post_init__(self) -> None:
        for name in ("sure_score", "out_of_scale_score", "weak_score"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1]")
        if self.crowd < 1 or self.out_of_scale <= 1.0 or self.people_memory < 0:
            raise ValueError("crowd must be at least 1, out_of_scale above 1, people_memory not negative")


@dataclass(frozen=True)
class MaskOptions:
    """What covers each detected face.

    The head, not only the face: the face box is grown by `head_scale` to take
    in hair, ears, jaw and neck, and filled with a colour that does not depend
    on the original pixels.
    """

    method: MaskMethod = MaskMethod.SOLID
    head_scale: float = 1.8
    color: tuple[int, int, int] = (96, 96, 96)

    def __post_init__(self) -> None:
        if self.head_scale < 1.0:
            raise ValueError(f"head_scale must be at least 1, got {self.head_scale}")
        if len(self.color) != 3 or not all(0 <= c <= 255 for c in self.color):
            raise ValueError(f"color must be three values in 0..255, got {self.color}")


@dataclass(frozen=True)
class InputLimits:
    """Inputs veil refuses to decode, and the limits a decoder runs under.

    Sizes are checked from headers, before anything is decoded: a photo's
    pixels (Pillow's own decompression-bomb threshold: a 17 KB PNG can
    declare 12000x12000), a video's frame size, declared frame count and
    duration. With `isolate`, every file is decoded first in a child
    process (`veil.media.isolate`) that may use at most `decode_memory`
    bytes of address space, and must finish a photo, or advance a video by
    one frame, within `decode_seconds`: a file that makes a decoder loop,
    allocate without bound or crash fails alone, with one line.
    """

    max_pixels: int = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS: 1024 * 1024 * 1024 // 4 // 3
    max_file_bytes: int = 1_000_000_000
    max_video_pixels: int = 8192 * 4320  # 8K UHD frames
    max_video_frames: int = 10_000_000  # a day at 120 fps
    max_video_seconds: float = 48 * 3600.0
    isolate: bool = True
    decode_seconds: float = 60.0
    decode_memory: int = 6 << 30

    def __post_init__(self) -> None:
        if self.decode_seconds <= 0 or self.decode_memory <= 0:
            raise ValueError("decode_seconds and decode_memory must be positive")


class AudioMode(StrEnum):
    """What happens to a video's sound: kept (copied where the container
    allows), muted (a silent track of the same length), or dropped."""

    KEEP = "keep"
    MUTE = "mute"
    DROP = "drop"


@dataclass(frozen=True)
class TrackingOptions:
    """How faces are followed across video frames, in frames.

    A track that loses its face for up to `max_gap` frames is masked at the
    interpolated position in between; every track is also masked `extend`
    frames before its first and after its last detection. A scene cut (mean
    change of a small grey thumbnail above `cut_threshold`, 0-255) ends
    every track, so nothing is interpolated or extended across it.
    """

    max_gap: int = 12
    extend: int = 6
    match_distance: float = 1.0
    cut_threshold: float = 40.0

    def __post_init__(self) -> None:
        if self.max_gap < 0 or self.extend < 0:
            raise ValueError("max_gap and extend must not be negative")

    @property
    def delay(self) -> int:
        """Frames a frame must wait before its masks are final."""
        return max(self.max_gap, self.extend)


@dataclass(frozen=True)
class VideoOptions:
    audio: AudioMode = AudioMode.KEEP
    tracking: TrackingOptions = field(default_factory=TrackingOptions)
    crf: int = 20  # x264 constant rate factor: visually close to typical camera output
    bitrate_cap: float = 1.2  # the output's video bit rate at most this times the input's
    segment_frames: int = 1500  # --jobs: clips of twice this cut into parts (veil.pipeline.parts; 0: never)


@dataclass(frozen=True)
class VerifyOptions:
    """How hard outputs are attacked before they are published (`veil.verify`).
    A find over pixels the output left as they were fails the file, or goes
    to review, by the scores below; one that would fail must also be
    confirmed by a second look at the original. Why: benchmarks/HISTORY.md."""

    fail_score: float = 0.8  # RetinaFace, the independent detector: fails the file from this
    review_score: float = 0.5  # RetinaFace: listed for a person to look at from this
    centerface_fail_score: float = 0.5  # CenterFace, one pass at one scale: fails from this
    centerface_review_score: float = 0.2  # CenterFace: listed from this
    changed_level: int = 12  # a pixel is changed when a channel moved by more than this
    masked_fraction: float = 0.5  # a box is masked when this share of it changed
    recognition: bool = True
    recognition_every_s: float = 1.0  # video: faces compared in one frame per second
    # photos with a plan: text searched in the output as it was in the
    # original (at `text_side`), `veil.verify`'s fifth check
    text: bool = True
    text_side: int = 960
    audio: AudioMode = AudioMode.KEEP  # what the output's sound should be

    def __post_init__(self) -> None:
        for name in (
            "fail_score",
            "review_score",
            "centerface_fail_score",
            "centerface_review_score",
        ):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1)")
        if self.review_score > self.fail_score or self.centerface_review_score > self.centerface_fail_score:
            raise ValueError("review scores must not exceed fail scores")


@dataclass(frozen=True)
class TextOptions:
    """Text that names or locates someone (`veil.text`): `hide` masks small
    text (plates, badges, screens) and leaves signs readable; off, every
    text stays as it was (warned). The picture is searched at `side`
    pixels on its longer side; a video on every `every`-th frame."""

    hide: bool = True
    side: int = 960
    every: int = 12

    def __post_init__(self) -> None:
        if self.side < 32 or self.every < 1:
            raise ValueError("text: side must be at least 32 and every at least 1")


@dataclass(frozen=True)
class AnonymizeOptions:
    detection: DetectionOptions = field(default_factory=DetectionOptions)
    choice: ChoiceOptions = field(default_factory=ChoiceOptions)
    mask: MaskOptions = field(default_factory=MaskOptions)
    text: TextOptions = field(default_factory=TextOptions)
    limits: InputLimits = field(default_factory=InputLimits)
    video: VideoOptions = field(default_factory=VideoOptions)
    verify: bool = True  # attack every output after writing it (veil verify)
    verification: VerifyOptions = field(default_factory=VerifyOptions)
    device: Device = Device.AUTO
