"""What a person's drops would uncover, told before Apply.

A track can be right in one span and wrong in another: it starts on a
bouquet and, ten frames later, is the only mask on a woman's face. Dropping
it because of its first frame uncovers her. Before a draft is applied, each
region the person dropped (veil masked it, or it is new from a split) is
looked at where it would leave a face bare:

- frames where the search scored it `sure_score` or more (a face, sure, by
  the rule that decides what veil masks, `veil.choose`);
- otherwise, a few of the frames where the search found it are looked at
  again (`veil.second_look`, the same look that confirms faces when veil
  chooses): a confirmed look is a face.

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

from veil.options import ChoiceOptions
from veil.plan.model import Box, Decision, Kind, Plan, Region
from veil.review.views import spans
from veil.second_look import SecondLook

Image = npt.NDArray[np.uint8]
LOOKS = 8  # frames of a dropped track looked at again, spread over the frames the search found it in


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
    gives the original's picture (frame None: a photo)."""
    found = []
    for region in dropped_by_person(plan, base):
        result = (
            _photo(region, pixels, look, sure_score)
            if region.box
            else _clip(region, pixels, look, sure_score)
        )
        if result is not None:
            found.append(result)
    return found


def _confirmed(look: SecondLook, image: Image, box: Box) -> bool:
    return look.look(image, np.array(box, np.float32)).confirmed


def _photo(
    region: Region, pixels: Callable[[int | None], Image], look: SecondLook, sure_score: float
) -> Uncovered | None:
    assert region.box is not None
    score = region.found.score if region.found else 0.0
    if score >= sure_score:
        return Uncovered(region.id, (), f"the search scored a face here ({score:.2f})")
    if _confirmed(look, pixels(None), region.box):
        return Uncovered(region.id, (), "a second look confirms a face here")
    return None


def _clip(
    region: Region, pixels: Callable[[int | None], Image], look: SecondLook, sure_score: float
) -> Uncovered | None:
    strong = [e for e in region.track if e.score >= sure_score]
    if strong:
        best = max(e.score for e in strong)
        frames = tuple(e.frame for e in strong)
        return Uncovered(region.id, frames, f"the search scored a face there (up to {best:.2f})")
    detected = [e for e in region.track if e.score > 0]
    if len(detected) > LOOKS:
        picks = np.linspace(0, len(detected) - 1, LOOKS).round().astype(int)
        detected = [detected[i] for i in sorted(set(picks.tolist()))]
    confirmed = tuple(e.frame for e in detected if _confirmed(look, pixels(e.frame), e.box))
    if confirmed:
        return Uncovered(region.id, confirmed, "a second look confirms a face there")
    return None
