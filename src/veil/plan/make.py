"""Making plans from what detection found: a photo's choice, a clip's tracks.

Boxes are rounded here to a tenth of a pixel, the precision a plan keeps,
so that an output rendered while detecting and one rendered later from the
saved plan are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from veil.detection.choose import Choice
from veil.detections import Detections
from veil.options import MaskOptions
from veil.plan.model import Box, Decision, Found, FrameBox, Kind, Plan, Region, Shape, Source, rounded_box
from veil.text import FoundText, TextWhy
from veil.track import TrackedBox

TEXT_WHY = TextWhy.SMALL.value  # a clip's text: only small text is followed (signs are not listed)


def photo_plan(
    source: Source,
    found: Choice | Detections,
    mask: MaskOptions,
    veil_version: str | None = None,
    text: Sequence[FoundText] = (),
) -> Plan:
    """Every candidate of a photo as a region: those veil masks (`mask`) and,
    when it chose among candidates, those it did not (`drop`); then every
    line of `text`, masked as a box or, a sign, dropped."""
    if isinstance(found, Detections):
        candidates = found
        why: list[str | None] = [None] * len(found)
        decisions = [Decision.MASK] * len(found)
    else:
        candidates = found.candidates
        why = [reason.value for reason in found.reasons]
        decisions = [Decision.MASK if reason.masked else Decision.DROP for reason in found.reasons]
    boxes = candidates.boxes.tolist()
    scores = candidates.scores.tolist()
    regions = []
    for number, index in enumerate(reading_order(boxes), start=1):
        by = candidates.by(index)
        how = Found(round(scores[index], 3), decisions[index], why[index], found_by=(by,) if by else ())
        box = rounded_box(boxes[index])
        regions.append(Region(f"f{number}", Kind.FACE, decisions[index], box=box, found=how))
    regions.extend(text_regions(text))
    return Plan(source, tuple(regions), mask, veil_version)


def text_regions(text: Sequence[FoundText]) -> list[Region]:
    """A photo's lines of text as regions t1, t2... in reading order."""
    boxes = [list(found.line.box) for found in text]
    regions = []
    for number, index in enumerate(reading_order(boxes), start=1):
        found = text[index]
        decision = Decision.MASK if found.masked else Decision.DROP
        how = Found(found.line.score, decision, found.why.value)
        box = rounded_box(boxes[index])
        regions.append(
            Region(f"t{number}", Kind.TEXT, decision, Shape.BOX, box, label=found.label.value, found=how)
        )
    return regions


def reading_order(boxes: list[list[float]]) -> list[int]:
    """Indexes of `boxes` as a person reads them: in rows from the top, each
    row from the left. A box joins a row when its centre lies within the
    height of the row's first box. Regions are numbered this way rather than
    in the order the search found them, so a photo's ids do not change with
    the search's passes and windows."""
    rows: list[list[int]] = []
    for index in sorted(range(len(boxes)), key=lambda i: boxes[i][1] + boxes[i][3]):
        _, y1, _, y2 = boxes[index]
        if rows and boxes[rows[-1][0]][3] > (y1 + y2) / 2:
            rows[-1].append(index)
        else:
            rows.append([index])
    return [index for row in rows for index in sorted(row, key=lambda i: boxes[i][0])]


@dataclass
class _Track:
    kind: Kind = Kind.FACE
    rows: list[FrameBox] = field(default_factory=list)
    best: float = 0.0
    detected: int = 0
    found_by: set[str] = field(default_factory=set)


class TrackRecorder:
    """A clip's plan, built frame by frame from the trackers' final boxes:
    one region per track, of faces and of small text."""

    def __init__(self) -> None:
        self._tracks: dict[str, _Track] = {}

    def record(self, frame: int, boxes: Sequence[TrackedBox], kind: Kind = Kind.FACE) -> list[Box]:
        """Add frame `frame`'s boxes of `kind` (faces, or text masked as
        boxes); returns them as the plan holds them."""
        held = []
        for tracked in boxes:
            key = str(tracked.track) if kind is Kind.FACE else f"{kind.value}{tracked.track}"
            while key in self._tracks and self._tracks[key].rows[-1].frame == frame:
                key += "+"  # a second box of one track in one frame: a region of its own
            track = self._tracks.setdefault(key, _Track(kind))
            box = rounded_box(tracked.box.tolist())
            score = round(tracked.score, 3)
            track.rows.append(FrameBox(frame, box, score))
            track.best = max(track.best, score)
            track.detected += score > 0
            if tracked.found_by:
                track.found_by.add(tracked.found_by)
            held.append(box)
        return held

    @classmethod
    def joined(cls, parts: Sequence[TrackRecorder]) -> TrackRecorder:
        """The recorders of a clip's consecutive parts as one: a track of
        each part is a region of its own."""
        whole = cls()
        for number, part in enumerate(parts):
            for key, track in part._tracks.items():
                whole._tracks[f"{number}:{key}"] = track
        return whole

    def plan(self, source: Source, mask: MaskOptions, veil_version: str | None = None) -> Plan:
        regions = []
        for kind in (Kind.FACE, Kind.TEXT):
            tracks = [track for track in self._tracks.values() if track.kind is kind]
            for number, track in enumerate(tracks, start=1):
                found = Found(
                    track.best,
                    Decision.MASK,
                    TEXT_WHY if kind is Kind.TEXT else None,
                    frames_detected=track.detected,
                    frames_filled=len(track.rows) - track.detected,
                    found_by=tuple(sorted(track.found_by)),
                )
                prefix, shape, label = (
                    ("f", Shape.ELLIPSE, None) if kind is Kind.FACE else ("t", Shape.BOX, "text")
                )
                regions.append(
                    Region(
                        f"{prefix}{number}",
                        kind,
                        Decision.MASK,
                        shape,
                        track=tuple(track.rows),
                        label=label,
                        found=found,
                    )
                )
        return Plan(source, tuple(regions), mask, veil_version)
