"""What a person's drops would uncover, told before Apply.

A track can be right in one span and wrong in another: it starts on a
bouquet and, ten frames later, is the only mask on a woman's face. Dropping
it because of its first frame uncovers her. Before a draft is applied, each
region the person dropped (veil masked it, or it is new from a split) is
looked at where it would leave a face bare:

- in a photo, a region veil called sure, or confirmed by its second look,
  when it chose (`veil.choose`, kept in the plan), or scored `sure_score`
  or more;
- in a clip, whose tracks keep a score per frame but no second look:
  frames where the search scored it `sure_score` or more; otherwise a few
  of the frames where the search found it are looked at again
  (`veil.second_look`, the look that confirms faces when veil chooses),
  `LOOKS` per track and `ALL_LOOKS` in all: a confirmed look is a face.

Verification after Apply would catch most of these too, but only after a
render; this tells the person which frames, before, so that they can split
the track there instead. Nothing here recognises anyone: the looks say
"a face", never whose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veil.choose import Reason
from veil.options import ChoiceOptions
from veil.plan.model import Box, Decision, Kind, Plan, Region
from veil.review.views import spans
from veil.second_look import SecondLook

Image = npt.NDArray[np.uint8]
LOOKS = 8  # frames of a dropped track looked at again, spread over the frames the search found it in
ALL_LOOKS = 96  # looks in one check, however many tracks were dropped (a second or two on 2 cores)
_CONFIRMED_WHY = {Reason.SURE.value, Reason.CONFIRMED.value}


@dataclass(frozen=True)
class Uncovered:
    """A dropped region that would leave a face bare in `frames`."""

    region: str
    frames: tuple[int, ...]  # sorted; empty for a photo
    why: str

    def to_dict(self) -> dict[str, object]:
        return {
            "region": self.region,
            "frames": list(self.frames),
            "spans": spans(list(self.frames)),
            "why": self.why,
        }


def dropped_by_person(plan: Plan, base: Plan) -> list[Region]:
    """veil's regions dropped in `plan` that `base` (what the output was
    rendered from) did not drop: the drops that Apply would make."""
    before = {r.id: r.decision for r in base.regions}
    return [
        r
        for r in plan.regions
        if r.kind is Kind.FACE and r.decision is Decision.DROP and before.get(r.id) is not Decision.DROP
    ]


def uncovered(
    plan: Plan,
    base: Plan,
    pixels: Callable[[int | None], Image],
    look: SecondLook,
    sure_score: float = ChoiceOptions().sure_score,
) -> list[Uncovered]:
    """The person's drops in `plan` that would uncover a face; `pixels(frame)`
    gives a clip's original frame."""
    found = []
    looks_left = ALL_LOOKS
    for region in dropped_by_person(plan, base):
        if region.box is not None:
            result = _photo(region, sure_score)
        else:
            result, looked = _clip(region, pixels, look, sure_score, looks_left)
            looks_left -= looked
        if result is not None:
            found.append(result)
    return found


def _photo(region: Region, sure_score: float) -> Uncovered | None:
    found = region.found
    if found is None:
        return None
    if found.why in _CONFIRMED_WHY:
        said = "sure" if found.why == Reason.SURE.value else "confirmed by a second look"
        return Uncovered(region.id, (), f"veil found a face here, {said}")
    if found.score >= sure_score:
        return Uncovered(region.id, (), f"the search scored a face here ({found.score:.2f})")
    return None


def _clip(
    region: Region,
    pixels: Callable[[int | None], Image],
    look: SecondLook,
    sure_score: float,
    looks_left: int,
) -> tuple[Uncovered | None, int]:
    """What dropping a track uncovers, and how many looks it took."""
    strong = [e for e in region.track if e.score >= sure_score]
    if strong:
        best = max(e.score for e in strong)
        frames = tuple(e.frame for e in strong)
        return Uncovered(region.id, frames, f"the search scored a face there (up to {best:.2f})"), 0
    detected = [e for e in region.track if e.score > 0]
    count = min(LOOKS, looks_left, len(detected))
    if count <= 0:
        return None, 0
    picks = np.linspace(0, len(detected) - 1, count).round().astype(int)
    looked = [detected[i] for i in sorted(set(picks.tolist()))]
    confirmed = tuple(e.frame for e in looked if _confirmed(look, pixels(e.frame), e.box))
    if confirmed:
        return Uncovered(region.id, confirmed, "a second look confirms a face there"), len(looked)
    return None, len(looked)


def _confirmed(look: SecondLook, image: Image, box: Box) -> bool:
    return look.look(image, np.array(box, np.float32)).confirmed
