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
    """Where and how hard CenterFace looks for faces.

    The image is searched at several scales: a coarse pass for large faces
    and finer passes, up to `max_upscale`, for crowds of small faces. The
    finest pass is limited to `max_pixels` so huge photos stay tractable.
    With `mirror`, every pass but the finest also searches the mirrored
    image: CenterFace finds some faces in only one of the two.

    In video on the CPU, the finest pass runs on every `video_fine_every`-th
    frame and the mirrored passes on every `video_mirror_every`-th; the other
    passes run on every frame, and tracking masks a face between the frames
    that saw it. On a GPU every frame gets every pass.

    The finest pass, three quarters of the work, searches only where the
    plain pass at the next scale has a face-centre score of `focus_threshold`
    or more, within 64 of that pass's pixels (`veil.detection.detect.focus_windows`;
    0: the whole image). On widerface-dev at full size (benchmarks/passes.py)
    that lost no face at 0.02, 0.03 or 0.05; at 0.03 the finest pass took
    31% less time on the crowds and 53% less on the people-free photos.
    Its finds near a window's cut edge, or taller than two cells, are
    dropped: false faces appear there (`CenterFaceDetector.detect_in_windows`).

    With `int8_next` (off by default), the CPU runs the passes at half the
    finest scale, plain and mirrored, with 8-bit integer convolutions
    (`veil.detection.quantize`): 1.8x faster, and on widerface-dev at full size they
    found more of the faces float missed than they lost, in every size bin
    (benchmarks/passes.py), but proposed 11% more candidates, and among
    people those are masked without proof: one lands on the astronaut's
    flag. With `int8_finest` (off by default) the finest pass runs so; it
    was 1.9x faster but lost 35 faces under 16 px that float found (while
    finding 29 others) and one of 16-32 px.
    """

    threshold: float = 0.1
    max_upscale: float = 2.0
    max_pixels: int = 12_000_000
    coarse_side: int = 640
    tile_side: int = 2560  # 1080p at 2x in two tiles: 23% faster than 1536, 1.4 GB peak
    tile_overlap: int = 128
    mirror: bool = True
    video_fine_every: int = 3
    video_mirror_every: int = 2
    int8_finest: bool = False
    int8_next: bool = False
    focus_threshold: float = 0.03

    def __post_init__(self) -> None:
        if self.video_fine_every < 1 or self.video_mirror_every < 1:
            raise ValueError("video_fine_every and video_mirror_every must be at least 1")
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
    # At crf 20 alone outputs came out up to 2.6x their input's size; capped
    # at 1.2x the input's video bit rate they stay near it (benchmarks/video.py).
    bitrate_cap: float = 1.2
    # With worker processes, a clip of at least twice this many frames is
    # cut at key frames into parts that workers mask side by side (a
    # minute at 25 fps; 0: never). See veil.segments.
    segment_frames: int = 1500


@dataclass(frozen=True)
class VerifyOptions:
    """How hard outputs are attacked before they are published.

    A face that a detector finds in the output, over pixels that are the
    same as the original's (a pixel is changed when a channel moved by more
    than `changed_level`; a box is masked when `masked_fraction` of it
    changed), was left visible. RetinaFace, the independent detector, fails
    a file from `fail_score` and lists weaker finds from `review_score` for a
    person to look at; CenterFace, the detector that made the masks, takes a
    second look in one pass at a single scale, lists finds from
    `centerface_review_score` and fails the file from `centerface_fail_score`.
    Its weaker finds are left out of the review list: on widerface-dev, 4,684
    finds between 0.05 and 0.2 lay on a face left uncovered 3% of the time,
    while RetinaFace's finds from 0.5 did so 32% of the time.

    A find that would fail a file must also be confirmed by a second look
    at the original (`veil.detection.second_look`, the rule that decides what is
    masked); otherwise it goes to the review list. On widerface-dev, 99.4%
    of RetinaFace's finds from 0.8 on the originals were confirmed; none of
    the clock, cell, copper vase and flowers that failed people-free photos
    was.
    """

    fail_score: float = 0.8
    review_score: float = 0.5
    centerface_fail_score: float = 0.5
    centerface_review_score: float = 0.2
    changed_level: int = 12
    masked_fraction: float = 0.5
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
