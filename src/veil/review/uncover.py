"""What a person's drops in a clip would uncover, told before Apply.

A track can be right in one span and wrong in another: it starts on a
bouquet and, ten frames later, is the only mask on a woman's face. Dropping
it because of its first frame uncovers her. Before a clip's draft is
applied, each track the person dropped (veil masked it, or it is new from
a split) is looked at where it would leave a face bare:

- frames where the search scored it `sure_score` or more (a face, sure, by
  the rule that decides what veil masks, `veil.detection.choose`);
- otherwise a few of the frames where the search found it are looked at
  again (`veil.detection.second_look`, the look that confirms faces when veil
  chooses), `LOOKS` per track and `ALL_LOOKS` in all, in frame order: a
  confirmed look is a face.

Verification after Apply catches these too, but only after rendering and
attacking every frame (a minute for a short clip on 2 cores); this names
the frames first, so the person can split the track there instead. A
photo needs no such warning: its Apply is verified in a second or two, and
a refused render shows what the verifier found. Nothing here recognises
anyone: a look says "a face", never whose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veil.detection.second_look import SecondLook
from veil.options import ChoiceOptions
from veil.plan.model import Decision, FrameBox, Kind, Plan, Region
from veil.review.views import spans

Image = npt.NDArray[np.uint8]
LOOKS = 8  # frames of a dropped track looked at again, spread over the frames the search found it in
ALL_LOOKS = 96  # looks in one check, however many tracks were dropped


@dataclass(frozen=True)
class Uncovered:
    """A dropped region that would leave a face bare in `frames`."""

    region: str
    frames: tuple[int, ...]  # sorted
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
    pixels: Callable[[int], Image],
    look: SecondLook,
    sure_score: float = ChoiceOptions().sure_score,
) -> list[Uncovered]:
    """The person's drops of tracks in `plan` that would uncover a face;
    `pixels(frame)` gives the original's frame. Empty for a photo."""
    if not plan.is_video:
        return []
    told: dict[str, Uncovered] = {}
    to_look: list[tuple[int, Region, FrameBox]] = []
    for region in dropped_by_person(plan, base):
        strong = [e for e in region.track if e.score >= sure_score]
        if strong:
            best = max(e.score for e in strong)
            frames = tuple(e.frame for e in strong)
            told[region.id] = Uncovered(
                region.id, frames, f"the search scored a face there (up to {best:.2f})"
            )
            continue
        detected = [e for e in region.track if e.score > 0]
        count = min(LOOKS, ALL_LOOKS - len(to_look), len(detected))
        if count > 0:
            picks = sorted(set(np.linspace(0, len(detected) - 1, count).round().astype(int).tolist()))
            to_look.extend((detected[i].frame, region, detected[i]) for i in picks)
    confirmed: dict[str, list[int]] = {}
    for frame, region, entry in sorted(to_look, key=lambda t: t[0]):  # in frame order: decoding runs forwards
        if look.look(pixels(frame), np.array(entry.box, np.float32)).confirmed:
            confirmed.setdefault(region.id, []).append(frame)
    for region_id, seen in confirmed.items():
        told[region_id] = Uncovered(region_id, tuple(seen), "a second look confirms a face there")
    return [told[r.id] for r in plan.regions if r.id in told]
