"""A mask plan: what is hidden in one output, as typed objects and JSON.

A plan names its original (file name and sha256) and lists regions. Each
region is a face veil found (`kind` face) or a region a person drew
(`manual`), with a decision: `mask` it, `drop` it (not a face: draw
nothing) or `keep` it visible on purpose (with a reason). Its boxes are
one `box` in a photo, one box per frame in a video (`track`), or, for a
region drawn on video, `keyframes` between which the box is interpolated.

`Plan.masks_at(frame)` is everything rendering needs for one picture.
`to_dict` and `plan_from_dict` are the JSON round trip; `plan_from_dict`
refuses, with one line, anything it does not fully understand.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from typing import Any, TypeVar

from veil.errors import PlanError
from veil.options import MaskMethod, MaskOptions

SCHEMA = "veil-plan/1"
_E = TypeVar("_E", bound=StrEnum)
# A face is kept visible only for a reason a person wrote: this many letters or
# digits at least, so that a stray key (a shortcut typed into the reason) is no reason.
REASON_LETTERS = 3

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in upright pixels


class Kind(StrEnum):
    FACE = "face"  # found by veil
    MANUAL = "manual"  # drawn by a person


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
    (`veil.choose.Reason`). A person's edits leave it as it was, so the
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
    label: str | None = None  # what a drawn region hides: badge, plate, tattoo, text...
    reason: str | None = None  # why it is kept visible
    found: Found | None = None  # faces only
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

    def next_id(self, kind: Kind) -> str:
        prefix = "f" if kind is Kind.FACE else "m"
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


def plan_from_dict(data: Any) -> Plan:
    """A Plan from its JSON form; PlanError (one line) on anything wrong."""
    reader = _Reader("plan")
    top = reader.mapping(data)
    schema = top.get("schema")
    if schema != SCHEMA:
        raise PlanError(f"plan: unknown schema {schema!r}, this veil reads {SCHEMA!r}")
    source = _source(reader.at("source").mapping(top.get("source")))
    mask = _mask(reader.at("mask").mapping(top.get("mask")))
    regions_data = reader.at("regions").sequence(top.get("regions"))
    regions = tuple(_region(reader.at(f"regions[{i}]"), r, source) for i, r in enumerate(regions_data))
    ids = [r.id for r in regions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise PlanError(f"plan: region id {duplicates[0]!r} is used twice")
    version = top.get("veil_version")
    return Plan(source, regions, mask, version if isinstance(version, str) else None)


def _source(data: dict[str, Any]) -> Source:
    reader = _Reader("source")
    frames = data.get("frames")
    time_base = data.get("time_base")
    if frames is not None:
        reader.at("frames").integer(frames, minimum=1)
        try:
            Fraction(reader.at("time_base").text(time_base))
        except (ValueError, ZeroDivisionError):
            raise PlanError(
                f"plan: source.time_base {time_base!r} is not a fraction such as 1/90000"
            ) from None
    sha256 = reader.at("sha256").text(data.get("sha256"))
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise PlanError("plan: source.sha256 is not a sha256 in lowercase hex")
    return Source(
        name=reader.at("name").text(data.get("name")),
        sha256=sha256,
        width=reader.at("width").integer(data.get("width"), minimum=1),
        height=reader.at("height").integer(data.get("height"), minimum=1),
        frames=frames,
        time_base=time_base,
    )


def _mask(data: dict[str, Any]) -> MaskOptions:
    reader = _Reader("mask")
    method = reader.at("method").choice(data.get("method"), MaskMethod)
    color = reader.at("color").sequence(data.get("color"))
    try:
        return MaskOptions(
            method=method,
            head_scale=reader.at("head_scale").number(data.get("head_scale")),
            color=tuple(reader.at("color").integer(c) for c in color),  # type: ignore[arg-type]
        )
    except ValueError as e:
        raise PlanError(f"plan: mask: {e}") from None


def _region(reader: _Reader, value: Any, source: Source) -> Region:
    data = reader.mapping(value)
    region_id = reader.at("id").text(data.get("id"))
    reader = _Reader(f"region {region_id!r}")
    kind = reader.at("kind").choice(data.get("kind"), Kind)
    decision = reader.at("decision").choice(data.get("decision"), Decision)
    shape = reader.at("shape").choice(data.get("shape", Shape.ELLIPSE.value), Shape)
    reason = data.get("reason")
    if reason is not None:
        reason = reader.at("reason").text(reason)
    if decision is Decision.KEEP:
        check_reason(region_id, reason)
    label = data.get("label")
    if label is not None:
        label = reader.at("label").text(label)
    given = [key for key in ("box", "track", "keyframes") if key in data]
    if len(given) != 1:
        raise PlanError(f"plan: region {region_id!r} needs exactly one of box, track or keyframes")
    box: Box | None = None
    track: tuple[FrameBox, ...] = ()
    keyframes: tuple[FrameBox, ...] = ()
    if "box" in data:
        if source.frames is not None:
            raise PlanError(f"plan: region {region_id!r} has one box, but the source is a video")
        box = reader.at("box").box(data["box"])
    else:
        if source.frames is None:
            raise PlanError(f"plan: region {region_id!r} has frames, but the source is a photo")
        rows = reader.at(given[0]).sequence(data[given[0]])
        if not rows:
            raise PlanError(f"plan: region {region_id!r} has an empty {given[0]}")
        entries = tuple(
            reader.at(f"{given[0]}[{i}]").frame_box(row, source.frames) for i, row in enumerate(rows)
        )
        if any(b.frame <= a.frame for a, b in itertools.pairwise(entries)):
            raise PlanError(f"plan: region {region_id!r}: {given[0]} frames must increase")
        if given[0] == "track":
            track = entries
        else:
            keyframes = entries
    found = None
    if "found" in data:
        found = _found(_Reader(f"region {region_id!r}: found"), data["found"])
    set_frames = tuple(
        reader.at("set_frames").integer(f)
        for f in reader.at("set_frames").sequence(data.get("set_frames", []))
    )
    in_track = {e.frame for e in track}
    if any(f not in in_track for f in set_frames):
        raise PlanError(f"plan: region {region_id!r}: set_frames names a frame that is not in its track")
    return Region(region_id, kind, decision, shape, box, track, keyframes, label, reason, found, set_frames)


def _found(reader: _Reader, value: Any) -> Found:
    data = reader.mapping(value)
    why = data.get("why")
    detected, filled = data.get("frames_detected"), data.get("frames_filled")
    return Found(
        score=reader.at("score").number(data.get("score")),
        decision=reader.at("decision").choice(data.get("decision"), Decision),
        why=reader.at("why").text(why) if why is not None else None,
        frames_detected=reader.at("frames_detected").integer(detected) if detected is not None else None,
        frames_filled=reader.at("frames_filled").integer(filled) if filled is not None else None,
        found_by=tuple(
            reader.at("found_by").text(b) for b in reader.at("found_by").sequence(data.get("found_by", []))
        ),
    )


class _Reader:
    """Type checks that name where in the plan a value was wrong."""

    def __init__(self, where: str) -> None:
        self.where = where

    def at(self, name: str) -> _Reader:
        return _Reader(f"{self.where}.{name}" if self.where != "plan" else name)

    def fail(self, expected: str, value: Any) -> PlanError:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return PlanError(f"plan: {self.where} should be {expected}, not {shown}")

    def mapping(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail("an object", value)
        return value

    def sequence(self, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail("a list", value)
        return value

    def text(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail("a non-empty string", value)
        return value

    def number(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise self.fail("a number", value)
        return float(value)

    def integer(self, value: Any, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"a whole number of at least {minimum}", value)
        return value

    def choice(self, value: Any, enum: type[_E]) -> _E:
        try:
            return enum(value)
        except ValueError:
            names = ", ".join(e.value for e in enum)
            raise self.fail(f"one of {names}", value) from None

    def box(self, value: Any) -> Box:
        values = self.sequence(value)
        if len(values) != 4:
            raise self.fail("x1, y1, x2, y2", value)
        x1, y1, x2, y2 = (self.number(v) for v in values)
        if x2 <= x1 or y2 <= y1:
            raise self.fail("a box with x2 > x1 and y2 > y1", value)
        return x1, y1, x2, y2

    def frame_box(self, value: Any, frames: int) -> FrameBox:
        values = self.sequence(value)
        if len(values) not in (5, 6):
            raise self.fail("frame, x1, y1, x2, y2 (and a score)", value)
        frame = self.integer(values[0])
        if frame >= frames:
            raise PlanError(f"plan: {self.where}: frame {frame} is past the clip's {frames} frames")
        score = self.number(values[5]) if len(values) == 6 else 0.0
        return FrameBox(frame, self.box(values[1:5]), score)
