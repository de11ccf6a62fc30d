"""What verification checks of an output's form, apart from faces: its
size, its sound, and a clip's frames and their timing against the
original's. Each check returns the findings it makes (none: it passed).
Frames are read with `frames` and walked in pairs with `paired`."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

from veil.errors import VeilError
from veil.media.video import VideoFrameIn, VideoSource
from veil.options import AudioMode
from veil.report import Check, Finding


def size(made: tuple[int, int], expected: tuple[int, int]) -> list[Finding]:
    """The output is `made` (width, height); the original upright is `expected`."""
    if made == expected:
        return []
    message = f"the output is {made[0]}x{made[1]}, the original upright {expected[0]}x{expected[1]}"
    return [Finding(Check.INTEGRITY, message)]


def sound(had: bool, has: bool, audio: AudioMode) -> list[Finding]:
    """Whether the output has sound where it should (`had`: the original has)."""
    wanted = had and audio is not AudioMode.DROP
    if has and not wanted:
        return [Finding(Check.INTEGRITY, "the output has sound that should have been dropped")]
    if wanted and not has:
        return [Finding(Check.INTEGRITY, "the output lost the original's sound")]
    return []


def span(before_s: Fraction, after_s: Fraction, time_base: Fraction) -> list[Finding]:
    """The output's frames span `after_s` seconds, the original's `before_s`:
    the same to a millisecond, or to one tick of the output's `time_base`."""
    if abs(before_s - after_s) <= max(Fraction(1, 1000), time_base):
        return []
    message = f"the output's frames span {float(after_s):.3f} s, the original's {float(before_s):.3f} s"
    return [Finding(Check.INTEGRITY, message)]


def packets(source: VideoSource, result: VideoSource, attacked: int) -> list[Finding]:
    """The output's frames against the original's, by their packets (no
    decoding): as many, `attacked` of them, spanning as long."""
    try:
        before, after = source.packet_index()[0], result.packet_index()[0]
    except VeilError as e:
        return [Finding(Check.INTEGRITY, f"the output does not decode: {e}")]
    if len(after) != len(before) or attacked != len(before):
        message = f"the output has {len(after)} frames ({attacked} attacked), the original {len(before)}"
        return [Finding(Check.INTEGRITY, message)]
    before_s = (before[-1] - before[0]) * source.probe.time_base
    after_s = (after[-1] - after[0]) * result.probe.time_base
    return span(before_s, after_s, result.probe.time_base)


def frames(video: VideoSource) -> Iterator[VideoFrameIn]:
    return (item for item in video.iter_media() if isinstance(item, VideoFrameIn))


def paired(
    first: Iterator[VideoFrameIn], second: Iterator[VideoFrameIn]
) -> Iterator[tuple[VideoFrameIn | None, VideoFrameIn | None]]:
    """Frames of two clips side by side, until both end (None past one's end)."""
    while True:
        a, b = next(first, None), next(second, None)
        if a is None and b is None:
            return
        yield a, b
