"""A person's edits to a plan, as functions from a plan to a new plan.

Deciding (mask, drop, keep) and drawing are `Plan.decide` and `Plan.drawn`;
here are the edits of a region's geometry: move or resize its box (at a
frame, in video), set the frames it spans, remove a region drawn by hand.
`veil review` offers exactly these; a script can apply them too.

In a video, a face region follows veil's track, one box per frame. A box a
person moves at one frame becomes a set frame of the track: the correction
is applied there in full and fades out linearly towards the neighbouring
set frames, or over `SPREAD` frames, whichever is nearer, so a one-frame
fix also mends the frames around it without bending the rest of the track.
A region drawn by hand follows its key frames: moving it at a frame adds
or replaces the key frame there.

A track can be split at a frame into two regions, each decided on its
own: a track that starts on a bouquet and later covers a face is dropped
where it is wrong and stays masked where it is right.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import replace

from veil.errors import PlanError
from veil.plan.model import Box, FrameBox, Kind, Plan, Region

SPREAD = 12  # frames each way over which a correction to a track fades out
LABELS = ("face", "badge", "plate", "tattoo", "text", "other")


def moved(plan: Plan, region_id: str, box: Box, frame: int | None = None) -> Plan:
    """`plan` with the region's box at `frame` (None: a photo) set to `box`."""
    box = inside_picture(plan, box)
    region = plan.region(region_id)
    if not plan.is_video:
        if frame is not None:
            raise PlanError("plan: a photo has no frames")
        return plan.with_region(replace(region, box=box))
    frame = _checked_frame(plan, frame)
    if region.track:
        return plan.with_region(_moved_in_track(region, box, frame))
    keys = [k for k in region.keyframes if k.frame != frame]
    bisect.insort(keys, FrameBox(frame, box), key=lambda k: k.frame)
    return plan.with_region(replace(region, keyframes=tuple(keys)))


def _moved_in_track(region: Region, box: Box, frame: int) -> Region:
    entries = {e.frame: e for e in region.track}
    old = entries.get(frame)
    if old is None:
        raise PlanError(f"plan: region {region.id!r} is not in frame {frame}: extend it there first")
    delta = [new - was for new, was in zip(box, old.box, strict=True)]
    fixed = sorted(set(region.set_frames) - {frame})
    at = bisect.bisect_left(fixed, frame)
    before = fixed[at - 1] if at > 0 else None
    after = fixed[at] if at < len(fixed) else None
    for other, entry in entries.items():
        if other == frame:
            weight = 1.0
        elif other < frame:
            reach = min(SPREAD + 1, frame - before if before is not None else SPREAD + 1)
            weight = max(0.0, 1 - (frame - other) / reach)
        else:
            reach = min(SPREAD + 1, after - frame if after is not None else SPREAD + 1)
            weight = max(0.0, 1 - (other - frame) / reach)
        if weight > 0:
            x1, y1, x2, y2 = (v + d * weight for v, d in zip(entry.box, delta, strict=True))
            entries[other] = FrameBox(other, (x1, y1, x2, y2), entry.score if other != frame else 0.0)
    track = tuple(entries[f] for f in sorted(entries))
    return replace(region, track=track, set_frames=tuple(sorted({*region.set_frames, frame})))


def spanned(plan: Plan, region_id: str, first: int, last: int) -> Plan:
    """`plan` with a video region present from frame `first` to `last`:
    trimmed where it went beyond, extended (holding its end boxes) where it
    fell short."""
    if not plan.is_video:
        raise PlanError("plan: only a video's regions span frames")
    first, last = _checked_frame(plan, first), _checked_frame(plan, last)
    if last < first:
        raise PlanError(f"plan: a region cannot end (frame {last}) before it starts (frame {first})")
    region = plan.region(region_id)
    if region.track:
        kept = [e for e in region.track if first <= e.frame <= last]
        if not kept:  # the new span lies beside the old one: hold the nearer end
            nearest = region.track[0] if last < region.track[0].frame else region.track[-1]
            kept = [FrameBox(first, nearest.box)]
        head = [FrameBox(f, kept[0].box) for f in range(first, kept[0].frame)]
        tail = [FrameBox(f, kept[-1].box) for f in range(kept[-1].frame + 1, last + 1)]
        track = (*head, *kept, *tail)
        present = {e.frame for e in track}
        set_frames = tuple(f for f in region.set_frames if f in present)
        return plan.with_region(replace(region, track=track, set_frames=set_frames))
    ends = (FrameBox(first, _held(region, first)), FrameBox(last, _held(region, last)))
    inside = [k for k in region.keyframes if first < k.frame < last]
    keys = (ends[0], *inside, ends[1]) if last > first else ends[:1]
    return plan.with_region(replace(region, keyframes=keys))


def split(plan: Plan, region_id: str, frame: int) -> Plan:
    """`plan` with a video region cut in two at `frame`: the region keeps its
    frames before `frame`, and a new region (same kind, decision, shape and
    label; the next id) takes `frame` and those after. Each part's `found`
    describes that part: its best score and its frames detected and filled."""
    if not plan.is_video:
        raise PlanError("plan: only a video's regions can be split at a frame")
    frame = _checked_frame(plan, frame)
    region = plan.region(region_id)
    frames = [e.frame for e in region.track or region.keyframes]
    if not frames[0] < frame <= frames[-1]:
        raise PlanError(
            f"plan: region {region_id!r} spans frames {frames[0]}-{frames[-1]}: "
            f"split it at a frame after its first, not at {frame}"
        )
    if region.track:
        before = replace(region, track=tuple(e for e in region.track if e.frame < frame))
        after = replace(region, track=tuple(e for e in region.track if e.frame >= frame))
    else:
        last_before, at = region.box_at(frame - 1), region.box_at(frame)
        assert last_before is not None and at is not None
        keys_before = [k for k in region.keyframes if k.frame < frame - 1] + [
            FrameBox(frame - 1, last_before)
        ]
        keys_after = [FrameBox(frame, at)] + [k for k in region.keyframes if k.frame > frame]
        before, after = (
            replace(region, keyframes=tuple(keys_before)),
            replace(region, keyframes=tuple(keys_after)),
        )
    new_id = plan.next_id(region.kind)
    parts = [_part(before, region.id, lambda f: f < frame), _part(after, new_id, lambda f: f >= frame)]
    regions: list[Region] = []
    for existing in plan.regions:
        regions.extend(parts if existing.id == region_id else [existing])
    return replace(plan, regions=tuple(regions))


def _part(region: Region, region_id: str, keeps: Callable[[int], bool]) -> Region:
    set_frames = tuple(f for f in region.set_frames if keeps(f))
    found = region.found
    if found is not None and region.track:
        detected = [e.score for e in region.track if e.score > 0]
        found = replace(
            found,
            score=round(max(detected, default=0.0), 3),
            frames_detected=len(detected),
            frames_filled=len(region.track) - len(detected),
        )
    return replace(region, id=region_id, set_frames=set_frames, found=found)


def _held(region: Region, frame: int) -> Box:
    """A key-framed region's box at `frame`, holding its end boxes outside its span."""
    keys = region.keyframes
    if frame <= keys[0].frame:
        return keys[0].box
    if frame >= keys[-1].frame:
        return keys[-1].box
    box = region.box_at(frame)
    assert box is not None
    return box


def removed(plan: Plan, region_id: str) -> Plan:
    """`plan` without a region a person drew. veil's own finds are dropped
    instead (`Plan.decide`), so the record of what veil found stays."""
    region = plan.region(region_id)
    if region.kind is not Kind.MANUAL:
        raise PlanError(f"plan: region {region_id!r} was found by veil: drop it instead of removing it")
    return replace(plan, regions=tuple(r for r in plan.regions if r.id != region_id))


def whole_clip(plan: Plan, box: Box) -> list[tuple[int, Box]]:
    """Key frames for a region fixed in place from a video's first frame to its last."""
    frames = plan.source.frames or 1
    return [(0, box), (frames - 1, box)] if frames > 1 else [(0, box)]


def inside_picture(plan: Plan, box: Box) -> Box:
    """`box` cut to the picture (a box dragged past its edge keeps the part
    inside), to a tenth of a pixel; PlanError if nothing of it is inside."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise PlanError("plan: a box needs x2 > x1 and y2 > y1")
    width, height = plan.source.width, plan.source.height
    x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
    y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise PlanError("plan: the box lies outside the picture")
    return round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)


def _checked_frame(plan: Plan, frame: int | None) -> int:
    frames = plan.source.frames or 0
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < frames:
        raise PlanError(f"plan: frame {frame!r} is not one of the clip's {frames} frames")
    return frame
