"""Verification's text check (`veil.verify`, its fifth): text readable
where a plan masks a box, and text a person's plan leaves readable.

A region masked as a box (text veil found, or a box a person drew) whose
inside did not all change is searched for text, closer: a correct render
leaves none to search, so the check costs a comparison of pixels. The
whole output is searched only when a person changed the plan: on veil's
own plan it would be the same detector over the same pixels.
"""

from __future__ import annotations

import numpy as np

from veil.changes import RGB, Changes, int_box, pixel_box
from veil.options import VerifyOptions
from veil.plan.model import Box, Decision, Kind, Plan, Shape
from veil.report import Check, Finding
from veil.text import centre_in, lines_within, text_detector

_ALL_CHANGED = 0.95  # a box masked solid changes all its inside, but where the original had its colour


def lists_text(plan: Plan) -> bool:
    """Whether the plan's picture was searched for text, or a person masked
    a region by hand: only then is text in the output held against it."""
    return any(
        r.kind is Kind.TEXT or (r.kind is Kind.MANUAL and r.decision is Decision.MASK) for r in plan.regions
    )


def text_under_masks(changes: Changes, plan: Plan, frame: int | None) -> list[Finding]:
    """Text readable in `frame` (None: a photo) of `changes.after` where the
    plan masks a box: each such box whose inside did not all change is
    searched, closer, with half its size around it."""
    failures: list[Finding] = []
    for region, box in plan.regions_at(frame, Decision.MASK):
        if region.kind is Kind.FACE or region.shape is not Shape.BOX:
            continue
        inside = _inside(box)
        if changes.masked(inside, _ALL_CHANGED) or _flat(changes.after, inside, changes.level):
            continue
        x1, y1, x2, y2 = box
        grow_x, grow_y = (x2 - x1) / 2, (y2 - y1) / 2
        around = (x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y)
        for line in lines_within(changes.after, around):
            if centre_in(line.box, box):
                failures.append(
                    Finding(
                        Check.TEXT,
                        f"text readable where the plan masks {region.label or 'text'} ({region.id})",
                        frame=frame,
                        box=int_box(line.box),
                        score=line.score,
                    )
                )
                break
    return failures


def text_findings(
    changes: Changes, plan: Plan, options: VerifyOptions
) -> tuple[list[Finding], list[Finding]]:
    """A photo's text failures and review items (module docstring)."""
    failures = text_under_masks(changes, plan, None)
    review: list[Finding] = []
    if not _edited(plan):
        return failures, review
    for line in text_detector(options.text_side).lines(changes.after):
        seen = list(line.box)
        under = [r for r in plan.regions if (b := r.box_at(None)) is not None and centre_in(seen, b)]
        if any(r.decision is Decision.MASK for r in under) or changes.masked(seen, options.masked_fraction):
            continue
        if not under:
            review.append(
                Finding(Check.TEXT, "text the plan does not list", box=int_box(seen), score=line.score)
            )
        elif any(
            r.kind is Kind.TEXT and r.label == "text" and r.decision is not Decision.MASK for r in under
        ):
            review.append(
                Finding(Check.TEXT, "small text a person left readable", box=int_box(seen), score=line.score)
            )
    return failures, review


def _inside(box: Box) -> list[float]:
    """`box` without a tenth of it on each side, and a pixel: what lossy
    encoding leaves of a solid box's edge is no sign of text."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) / 10 + 1, (y2 - y1) / 10 + 1
    return [x1 + dx, y1 + dy, max(x1 + dx, x2 - dx), max(y1 + dy, y2 - dy)]


def _flat(image: RGB, box: list[float], level: int) -> bool:
    """Whether `box` of `image` is one colour, all but `1 - _ALL_CHANGED` of
    it within `level` of its median: a solid mask the original happened
    to match in places. Text needs contrast; there is none to read."""
    pixels = pixel_box(box, image)
    if pixels is None:
        return True
    x1, y1, x2, y2 = pixels
    inside = image[y1:y2, x1:x2].reshape(-1, 3).astype(np.int16)
    apart = np.any(np.abs(inside - np.median(inside, axis=0)) > level, axis=1)
    return float(apart.mean()) <= 1 - _ALL_CHANGED


def _edited(plan: Plan) -> bool:
    """Whether a person changed the plan: a region drawn, or decided otherwise than veil did."""
    return any(
        region.found is None or region.found.decision is not region.decision for region in plan.regions
    )
