"""A mask plan: what is hidden in one output, as typed objects and JSON.

A plan names its original (file name and sha256) and lists regions. Each
region is a face veil found (`kind` face), a line of text veil found
(`text`, labelled `text` when it is masked or `sign` when it is left
readable, `veil.text`) or a region a person drew (`manual`), with a
decision: `mask` it, `drop` it (not a face, or a sign: draw nothing) or
`keep` it visible on purpose (with a reason). Its boxes are
one `box` in a photo, one box per frame in a video (`track`), or, for a
region drawn on video, `keyframes` between which the box is interpolated.

`Plan.masks_at(frame)` is everything rendering needs for one picture.
`Plan.to_dict` and `veil.plan.read.plan_from_dict` are the JSON round trip.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from veil.errors import PlanError
from veil.options import MaskOptions

SCHEMA = "veil-plan/1"
# A face is kept visible only for a reason a person wrote: this many letters or
# digits at least, so that a stray key (a shortcut typed into the reason) is no reason.
REASON_LETTERS = 3

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in upright pixels


class Kind(StrEnum):
    FACE = "face"  # found by veil
    MANUAL = "manual"  # drawn by a person
    TEXT = "text"  # a line of text found by veil (`veil.text`)


class Decision(StrEnum):
    MASK = "mask"
    DROP = "drop"  # not a face: nothing is drawn
    KEEP = "keep"  # a face left visible on purpose; needs a reason


class Shape(StrEnum):
    ELLIPSE = "ellipse"  # the head around a face box (the box grown by the plan's head_scale)
    BOX = "box"  # exactly the box


@dataclass(frozen=True)
class FrameBox:
    """A region's box in one video frame. `score`: the search's score, 0 when
    tracking filled the frame in (or for a person's key frame)."""

    frame: int
    box: Box
    score: float = 0.0


@dataclass(frozen=True)
class Found:
    """How veil came to a face region, fixed when the plan was made: the
    search's best score and what veil itself decided, and why
    (`veil.detection.choose.Reason`). A person's edits leave it as it was, so the
    difference is theirs."""

    score: float
    decision: Decision
    why: str | None = None
    frames_detected: int | None = None  # video: frames the search found it in
    frames_filled: int | None = None  # video: frames tracking filled in
    # the search's passes that found it ("centerface x2", "... mirrored"), and "tracking"
    found_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mask:
    """One thing to draw in one picture."""

    shape: Shape
    box: Box


@dataclass(frozen=True)
class Region:
    id: str
    kind: Kind
    decision: Decision
    shape: Shape = Shape.ELLIPSE
    box: Box | None = None  # photo
    track: tuple[FrameBox, ...] = ()  # video, one box per frame it is in
    keyframes: tuple[FrameBox, ...] = ()  # video, drawn: interpolated between key frames
    label: str | None = None  # what it hides: "text" or "sign" (found text), or badge, plate... (drawn)
    reason: str | None = None  # why it is kept visible
    found: Found | None = None  # what veil found (faces and text)
    # video, track: frames where a person placed the box by hand (`veil.plan.edit.moved`)
    set_frames: tuple[int, ...] = ()

    def box_at(self, frame: int | None) -> Box | None:
        """The region's box in `frame` (None for a photo), or None where it is absent."""
        if frame is None or self.box is not None:
            return self.box
        if self.track:
            return self._track_index.get(frame)
        return _interpolated(self.keyframes, frame)

    @cached_property
    def _track_index(self) -> dict[int, Box]:
        return {entry.frame: entry.box for entry in self.track}

    def with_decision(self, decision: Decision, reason: str | None = None) -> Region:
        return replace(self, decision=decision, reason=reason)


@dataclass(frozen=True)
class Source:
    """The original a plan was made for."""

    name: str
    sha256: str
    width: int  # upright
    height: int
    frames: int | None = None  # video only
    time_base: str | None = None  # video only, e.g. "1/15360"


@dataclass(frozen=True)
class Plan:
    source: Source
    regions: tuple[Region, ...] = ()
    mask: MaskOptions = field(default_factory=MaskOptions)
    veil_version: str | None = None

    @property
    def is_video(self) -> bool:
        return self.source.frames is not None

    def masks_at(self, frame: int | None = None) -> list[Mask]:
        """What to draw in `frame` (None: the photo): every `mask` region there."""
        masks = []
        for region in self.regions:
            if region.decision is not Decision.MASK:
                continue
            box = region.box_at(frame)
            if box is not None:
                masks.append(Mask(region.shape, box))
        return masks

    def regions_at(self, frame: int | None, decision: Decision) -> Iterator[tuple[Region, Box]]:
        """The regions with `decision` present in `frame`, with their box there."""
        for region in self.regions:
            if region.decision is decision:
                box = region.box_at(frame)
                if box is not None:
                    yield region, box

    def region_under(
        self, frame: int | None, box: Sequence[float], decision: Decision | None = None
    ) -> Region | None:
        """The first region (with `decision`, when given) that `box`, something
        found in `frame`, lies on: their boxes, in whole pixels, overlap by an
        IoU over 0.3, or the found box's centre is inside the region's box.
        The verifier ties its finds to a plan by this rule, and the review
        page its findings."""
        found = tuple(round(v) for v in box)
        centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        for region in self.regions:
            if decision is not None and region.decision is not decision:
                continue
            region_box = region.box_at(frame)
            if region_box is None:
                continue
            x1, y1, x2, y2 = region_box
            if box_iou(tuple(round(v) for v in region_box), found) > 0.3 or (  # type: ignore[arg-type]
                x1 <= centre_x <= x2 and y1 <= centre_y <= y2
            ):
                return region
        return None

    def region(self, region_id: str) -> Region:
        for region in self.regions:
            if region.id == region_id:
                return region
        raise KeyError(region_id)

    def with_region(self, region: Region) -> Plan:
        """This plan with `region` replacing the one of its id, or added."""
        regions = [region if r.id == region.id else r for r in self.regions]
        if not any(r.id == region.id for r in self.regions):
            regions.append(region)
        return replace(self, regions=tuple(regions))

    def decide(self, region_id: str, decision: Decision, reason: str | None = None) -> Plan:
        """This plan with one region's decision changed (`keep` needs a
        written reason, `check_reason`)."""
        if decision is Decision.KEEP:
            reason = check_reason(region_id, reason)
        return self.with_region(self.region(region_id).with_decision(decision, reason))

    def drawn(
        self,
        box: Box | None = None,
        keyframes: Sequence[tuple[int, Box]] = (),
        label: str | None = None,
        shape: Shape = Shape.BOX,
    ) -> Plan:
        """This plan with a region drawn by hand and masked: one `box` in a
        photo, or `keyframes` (frame, box) in a video."""
        if (box is None) == (not keyframes):
            raise PlanError("plan: a drawn region needs a box (photo) or key frames (video)")
        if (box is None) != self.is_video:
            raise PlanError("plan: a photo's region takes a box, a video's takes key frames")
        keys = tuple(FrameBox(frame, tuple(map(float, b))) for frame, b in sorted(keyframes))  # type: ignore[arg-type]
        region = Region(self.next_id(Kind.MANUAL), Kind.MANUAL, Decision.MASK, shape, box, (), keys, label)
        return replace(self, regions=(*self.regions, region))

    def decide_many(self, region_ids: Sequence[str], decision: Decision, reason: str | None = None) -> Plan:
        """This plan with the decision of every region in `region_ids` changed
        at once, as one edit; every id must name a region of this plan."""
        ids = list(dict.fromkeys(region_ids))
        if not ids:
            raise PlanError("plan: no region to decide")
        known = {r.id for r in self.regions}
        unknown = [i for i in ids if i not in known]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise PlanError(f"plan: no region {unknown[0]!r} in this plan{more}")
        plan = self
        for region_id in ids:  # one rule for one region and for many: Plan.decide's
            plan = plan.decide(region_id, decision, reason)
        return plan

    def next_id(self, kind: Kind) -> str:
        prefix = {Kind.FACE: "f", Kind.TEXT: "t", Kind.MANUAL: "m"}[kind]
        used = {r.id for r in self.regions}
        number = 1
        while f"{prefix}{number}" in used:
            number += 1
        return f"{prefix}{number}"

    def to_dict(self) -> dict[str, Any]:
        source: dict[str, Any] = {
            "name": self.source.name,
            "sha256": self.source.sha256,
            "width": self.source.width,
            "height": self.source.height,
        }
        if self.source.frames is not None:
            source |= {"frames": self.source.frames, "time_base": self.source.time_base}
        return {
            "schema": SCHEMA,
            "veil_version": self.veil_version,
            "source": source,
            "mask": {
                "method": self.mask.method.value,
                "head_scale": self.mask.head_scale,
                "color": list(self.mask.color),
            },
            "regions": [_region_dict(r) for r in self.regions],
        }


def check_reason(region_id: str, reason: str | None) -> str:
    """`reason`, stripped, for keeping region `region_id` visible; PlanError
    unless a person wrote it out: at least REASON_LETTERS letters or digits
    (empty, blank, or a single key pressed by mistake is refused)."""
    text = (reason or "").strip()
    if not text:
        raise PlanError(f"plan: region {region_id!r} is kept visible without a reason")
    if sum(c.isalnum() for c in text) < REASON_LETTERS:
        raise PlanError(
            f"plan: region {region_id!r} is kept visible for the reason {text!r}: "
            f"write the reason out (at least {REASON_LETTERS} letters)"
        )
    return text


def rounded_box(values: Sequence[float]) -> Box:
    """x1, y1, x2, y2 to a tenth of a pixel, at least a tenth wide and high."""
    x1, y1, x2, y2 = (round(float(v), 1) for v in values)
    return x1, y1, max(x2, round(x1 + 0.1, 1)), max(y2, round(y1 + 0.1, 1))


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, x1, y1, x2, y2."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _region_dict(region: Region) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": region.id,
        "kind": region.kind.value,
        "decision": region.decision.value,
        "shape": region.shape.value,
    }
    if region.label is not None:
        data["label"] = region.label
    if region.reason is not None:
        data["reason"] = region.reason
    if region.box is not None:
        data["box"] = list(region.box)
    if region.track:
        data["track"] = [[e.frame, *e.box, e.score] for e in region.track]
    if region.keyframes:
        data["keyframes"] = [[e.frame, *e.box] for e in region.keyframes]
    if region.set_frames:
        data["set_frames"] = list(region.set_frames)
    if region.found is not None:
        found = region.found
        data["found"] = {"score": found.score, "decision": found.decision.value, "why": found.why}
        if found.found_by:
            data["found"]["found_by"] = list(found.found_by)
        if found.frames_detected is not None:
            data["found"] |= {"frames_detected": found.frames_detected, "frames_filled": found.frames_filled}
    return data


def _interpolated(keys: tuple[FrameBox, ...], frame: int) -> Box | None:
    """The box at `frame` on the straight line between the key frames around
    it; absent before the first key frame and after the last."""
    if not keys or frame < keys[0].frame or frame > keys[-1].frame:
        return None
    for before, after in itertools.pairwise(keys):
        if before.frame <= frame <= after.frame:
            if after.frame == before.frame:
                return before.box
            t = (frame - before.frame) / (after.frame - before.frame)
            x1, y1, x2, y2 = (a + (b - a) * t for a, b in zip(before.box, after.box, strict=True))
            return x1, y1, x2, y2
    return keys[-1].box  # a single key frame
