"""Rendering: an original and its plan in, an output file out. No detector.

`draw` hides a plan's masks in one picture; `veil anonymize` uses it while
detecting, and `render_photo` and `render_video` use it on a saved plan, so
the two give the same output from the same plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.background import Worker, prefetched
from veil.detections import Detections
from veil.errors import PlanError
from veil.masks import cover, head_ellipses
from veil.media.encode import VideoSink
from veil.media.files import atomic_output, check_input_file
from veil.media.image import read_image, write_image
from veil.media.video import VIDEO_FORMATS, VideoFrameIn, VideoSource
from veil.options import InputLimits, MaskOptions, VideoOptions
from veil.plan.model import Mask, Plan, Shape

Image = npt.NDArray[np.uint8]
FrameProgress = Callable[[int, int], None]
MAX_VIDEO_BYTES = 1 << 40


def draw(image: Image, masks: Sequence[Mask], options: MaskOptions) -> Image:
    """A copy of `image` with `masks` hidden: ellipses as heads around their
    face box, boxes exactly. The order of `masks` does not matter."""
    ordered = sorted(masks, key=lambda m: (m.shape.value, m.box))
    faces = [m.box for m in ordered if m.shape is Shape.ELLIPSE]
    heads = head_ellipses(
        Detections(np.array(faces, np.float32), np.zeros(len(faces), np.float32)), options.head_scale
    )
    boxes = [
        (math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2))
        for x1, y1, x2, y2 in (m.box for m in ordered if m.shape is Shape.BOX)
    ]
    return cover(image, heads, boxes, options)


def opaque_where_changed(alpha: Image, before: Image, after: Image) -> Image:
    """Masks must be seen: make them opaque even where the input was transparent."""
    changed = np.any(before != after, axis=2)
    out = alpha.copy()
    out[changed] = 255
    return out


@dataclass(frozen=True)
class Rendered:
    """What rendering wrote."""

    format: str
    width: int
    height: int
    metadata_removed: list[str]
    orientation_applied: int | None = None
    frames: int | None = None
    duration_s: float | None = None
    time_base: str | None = None
    audio: str | None = None
    rotation_baked: int | None = None


def check_size(plan: Plan, width: int, height: int) -> None:
    if (plan.source.width, plan.source.height) != (width, height):
        raise PlanError(
            f"plan: made for a {plan.source.width}x{plan.source.height} picture, "
            f"the original is {width}x{height} upright"
        )


def render_photo(original: Path, plan: Plan, target: Path, limits: InputLimits | None = None) -> Rendered:
    if plan.is_video:
        raise PlanError("plan: made for a video, the original is a photo")
    decoded = read_image(original, limits)
    height, width = decoded.pixels.shape[:2]
    check_size(plan, width, height)
    image = draw(decoded.pixels, plan.masks_at(None), plan.mask)
    alpha = decoded.alpha
    if alpha is not None:
        alpha = opaque_where_changed(alpha, decoded.pixels, image)
    write_image(target, image, alpha, decoded.encoding)
    return Rendered(
        decoded.encoding.format, width, height, decoded.metadata, orientation_applied=decoded.orientation
    )


def render_video(
    original: Path,
    plan: Plan,
    target: Path,
    options: VideoOptions | None = None,
    on_frame: FrameProgress | None = None,
) -> Rendered:
    """Decode `original`, hide each frame's masks, encode; nothing is detected."""
    options = options or VideoOptions()
    if not plan.is_video:
        raise PlanError("plan: made for a photo, the original is a video")
    check_input_file(original, MAX_VIDEO_BYTES)
    container_format = VIDEO_FORMATS[target.suffix.lower()]
    with VideoSource(original) as video:
        probe = video.probe
        check_size(plan, probe.width, probe.height)
        with atomic_output(target) as temporary:
            sink = VideoSink(
                temporary,
                container_format,
                probe,
                video.audio_stream,
                options.audio,
                options.crf,
                options.bitrate_cap,
            )
            encoder = Worker()

            def encode(frame: VideoFrameIn) -> None:
                sink.write_frame(draw(frame.pixels, plan.masks_at(frame.index), plan.mask), frame.pts)
                if on_frame is not None:
                    on_frame(sink.frames, probe.frames)

            try:
                with closing(prefetched(video.iter_media())) as media:
                    for item in media:
                        if isinstance(item, VideoFrameIn):
                            if item.index >= (plan.source.frames or 0):
                                raise PlanError(
                                    f"plan: made for {plan.source.frames} frames, the original has more"
                                )
                            encoder.submit(partial(encode, item))
                        else:
                            encoder.submit(partial(sink.write_audio, item))
                encoder.finish()
                if sink.frames != plan.source.frames:
                    raise PlanError(
                        f"plan: made for {plan.source.frames} frames, the original has {sink.frames}"
                    )
                sink.close()
            except BaseException:
                encoder.abandon()
                sink.abort()
                raise
    return Rendered(
        container_format,
        probe.width,
        probe.height,
        probe.metadata,
        frames=sink.frames,
        duration_s=round(float(sink.duration), 6),
        time_base=str(probe.time_base),
        audio=sink.audio_outcome,
        rotation_baked=probe.rotation,
    )
