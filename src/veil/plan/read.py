"""A plan from its JSON form: `plan_from_dict` checks every value and
refuses, with one line naming where, anything it does not fully
understand (`veil.plan.model.Plan.to_dict` writes the form)."""

from __future__ import annotations

import itertools
from enum import StrEnum
from fractions import Fraction
from typing import Any, TypeVar

from veil.errors import PlanError
from veil.options import MaskMethod, MaskOptions
from veil.plan.model import (
    SCHEMA,
    Box,
    Decision,
    Found,
    FrameBox,
    Kind,
    Plan,
    Region,
    Shape,
    Source,
    check_reason,
)

_E = TypeVar("_E", bound=StrEnum)


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
