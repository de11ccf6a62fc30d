"""People, not rows: what the review page's gallery of a clip's tracks
shows of each one. A track's surest frame is where the search scored it
highest (where it was placed, for one a person drew), and its picture is
the original around its box there, with a little of what surrounds it: a
reviewer must see what the mask hides to decide about it."""

from __future__ import annotations

from veil.plan.model import Box, Region

CONTEXT = 2.2  # the crop's side, in face-box sides: the head and a little around it


def surest_frame(region: Region) -> int | None:
    """The frame of a video region to show it by: the search's best score
    in its track; for a region drawn by hand, the first frame it was placed
    at; None for a photo's region."""
    if region.track:
        best = max(region.track, key=lambda entry: entry.score)
        if best.score > 0:
            return best.frame
        present = {entry.frame for entry in region.track}
        placed = [frame for frame in region.set_frames if frame in present]
        return placed[0] if placed else region.track[len(region.track) // 2].frame
    if region.keyframes:
        return region.keyframes[0].frame
    return None


def frames_in(region: Region) -> int:
    """How many frames a video region is present in."""
    if region.track:
        return len(region.track)
    if region.keyframes:
        return region.keyframes[-1].frame - region.keyframes[0].frame + 1
    return 0


def crop_around(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """A square about `box`, `CONTEXT` times its longer side, moved inside a
    `width` x `height` picture (and cut to it when larger): x1, y1, x2, y2."""
    x1, y1, x2, y2 = box
    side = round(max(x2 - x1, y2 - y1, 8.0) * CONTEXT)
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(0, round(centre_x - side / 2)), max(0, width - side))
    top = min(max(0, round(centre_y - side / 2)), max(0, height - side))
    return left, top, min(width, left + side), min(height, top + side)
