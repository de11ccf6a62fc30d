"""What veil knew of each region of a plan, in a reviewer's words.

Regions fall into groups by the reason veil gave when it chose them
(`veil.detection.choose.Reason`, kept in `Found.why`): sure faces, faces a second look
confirmed, weak finds masked only because the picture shows people, finds
left unmasked... A photo is treated as showing people because of its sure
faces (the anchors of `veil.detection.choose`); when those are not faces, every weak
find that was masked because of them is not one either, and
`people_proof` names both, so a reviewer can drop them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from veil.detection.choose import Reason
from veil.options import ChoiceOptions
from veil.plan.model import Decision, Kind, Plan, Region


class Group(StrEnum):
    """Regions by what veil knows of them, in the order a reviewer should
    look at them: the most doubtful first."""

    OTHER = "other"  # a reason this veil does not know
    AMONG_PEOPLE = "among people"
    EVERY_CANDIDATE = "every candidate"
    NO_PERSON = "no person"
    OUT_OF_SCALE = "out of scale"
    ON_SIGN = "on a sign"
    WEAK = "weak"
    SIGN = "sign"  # large text veil left readable
    TRACK = "track"  # video: veil's tracks carry no reason
    CONFIRMED = "confirmed"
    SURE = "sure"
    TEXT = "text"  # small text veil masked: plates, badges, screens
    DRAWN = "drawn"

    @property
    def heading(self) -> str:
        return _TITLES[self]


_TITLES = {
    Group.OTHER: "other finds",
    Group.AMONG_PEOPLE: "weak, masked because the picture shows people",
    Group.EVERY_CANDIDATE: "every candidate masked (precision all)",
    Group.NO_PERSON: "not masked: no person in the picture",
    Group.OUT_OF_SCALE: "not masked: out of scale",
    Group.ON_SIGN: "not masked: weak, on a sign",
    Group.WEAK: "not masked: weak (precision high)",
    Group.TRACK: "tracks veil found",
    Group.CONFIRMED: "confirmed by a second look",
    Group.SURE: "sure faces",
    Group.TEXT: "text masked: plates, badges, screens",
    Group.SIGN: "signs left readable",
    Group.DRAWN: "drawn by a person",
}
_BY_REASON = {
    Reason.SURE: Group.SURE,
    Reason.CONFIRMED: Group.CONFIRMED,
    Reason.AMONG_PEOPLE: Group.AMONG_PEOPLE,
    Reason.EVERY_CANDIDATE: Group.EVERY_CANDIDATE,
    Reason.UNCONFIRMED: Group.NO_PERSON,
    Reason.OUT_OF_SCALE: Group.OUT_OF_SCALE,
    Reason.ON_SIGN: Group.ON_SIGN,
    Reason.WEAK: Group.WEAK,
}
_SAID = {
    Reason.SURE: "a face, sure",
    Reason.CONFIRMED: "a face, confirmed by a second look",
    Reason.AMONG_PEOPLE: "weak, masked because this picture shows people",
    Reason.EVERY_CANDIDATE: "masked because veil masks every candidate (precision all)",
    Reason.UNCONFIRMED: "not masked: no person in this picture and a second look did not confirm it",
    Reason.OUT_OF_SCALE: (
        "not masked: far larger than the faces around it, and a second look did not confirm it"
    ),
    Reason.WEAK: "not masked: weak, and a second look did not confirm it (precision high)",
    Reason.ON_SIGN: "not masked: a weak find on a sign, and a second look did not confirm it",
}
# Reasons that no second look backs: a reviewer may drop these in bulk.
_UNCONFIRMED = {
    Reason.AMONG_PEOPLE,
    Reason.EVERY_CANDIDATE,
    Reason.UNCONFIRMED,
    Reason.OUT_OF_SCALE,
    Reason.ON_SIGN,
    Reason.WEAK,
}


def _reason(region: Region) -> Reason | None:
    why = region.found.why if region.found else None
    try:
        return Reason(why) if why is not None else None
    except ValueError:
        return None


def group(region: Region) -> Group:
    if region.kind is Kind.MANUAL:
        return Group.DRAWN
    if region.kind is Kind.TEXT:
        return Group.SIGN if region.label == "sign" else Group.TEXT
    reason = _reason(region)
    if reason is not None:
        return _BY_REASON[reason]
    if region.found is not None and region.found.why is None and region.box is None:
        return Group.TRACK
    return Group.OTHER


def said(region: Region) -> str:
    """Why the region is there, in plain words (no detector's name, no score)."""
    if region.kind is Kind.MANUAL:
        return f"drawn by a person: {region.label}" if region.label else "drawn by a person"
    if region.kind is Kind.TEXT:
        why = region.found.why if region.found is not None else None
        return why or ("a sign, left readable" if region.label == "sign" else "small text, masked")
    reason = _reason(region)
    found = region.found
    if reason is Reason.SURE and found is not None and found.score < ChoiceOptions().sure_score:
        return "a face, sure: a weak find, but two looks at it agreed firmly"
    if reason is not None:
        return _SAID[reason]
    if found is not None and region.box is None and found.why is None:
        filled = f", filled in by tracking in {found.frames_filled}" if found.frames_filled else ""
        return f"a face veil followed: found in {found.frames_detected or 0} frames{filled}"
    return f"veil: {found.why}" if found and found.why else "found by veil"


def detail(region: Region) -> str:
    """The technical record behind `said`: scores and the search's passes."""
    found = region.found
    if found is None:
        return "drawn by a person"
    parts = [f"best score {found.score:.3f}", f"veil decided: {found.decision.value}"]
    if found.why:
        parts.append(f"reason: {found.why}")
    if found.found_by:
        parts.append(f"found by {', '.join(found.found_by)}")
    return "; ".join(parts)


def unconfirmed(region: Region) -> bool:
    """Found by veil and backed by no second look nor a sure score."""
    return region.kind is Kind.FACE and _reason(region) in _UNCONFIRMED


def grouped(plan: Plan) -> list[tuple[Group, list[Region]]]:
    """The plan's regions by group, in `Group` order, without empty groups;
    in a group, the least sure first (drawn regions in the order drawn)."""
    groups: dict[Group, list[Region]] = {g: [] for g in Group}
    for region in plan.regions:
        groups[group(region)].append(region)
    for key, regions in groups.items():
        if key is not Group.DRAWN:
            regions.sort(key=lambda r: (r.found.score if r.found else 0.0, r.id))
    return [(key, regions) for key, regions in groups.items() if regions]


@dataclass(frozen=True)
class PeopleProof:
    """Why veil treats a photo as showing people, and what stands on it."""

    anchors: tuple[str, ...]  # the faces veil was sure of: its proof of people
    standing: tuple[str, ...]  # those of them not dropped by a person
    dependants: tuple[str, ...]  # weak regions masked only because of people, still masked

    @property
    def to_drop(self) -> tuple[str, ...]:
        """Drop these and the picture is treated as one without people."""
        return self.standing + self.dependants


def people_proof(plan: Plan) -> PeopleProof | None:
    """The proof of people in a photo's plan, or None when veil found none
    (or this is a video: its tracks carry no reason)."""
    if plan.is_video:
        return None
    anchors = [r for r in plan.regions if r.kind is Kind.FACE and _reason(r) is Reason.SURE]
    dependants = [
        r.id
        for r in plan.regions
        if r.kind is Kind.FACE and _reason(r) is Reason.AMONG_PEOPLE and r.decision is Decision.MASK
    ]
    if not anchors and not dependants:
        return None
    anchors.sort(key=lambda r: -(r.found.score if r.found else 0.0))
    standing = tuple(r.id for r in anchors if r.decision is not Decision.DROP)
    return PeopleProof(tuple(r.id for r in anchors), standing, tuple(dependants))


def proof_words(proof: PeopleProof) -> tuple[str, str | None]:
    """What the page says of `proof`, and the label of the one action that
    drops what stands on it (None: nothing to drop)."""
    weak = len(proof.dependants)
    weak_words = f"the {weak} weak region{'s' if weak != 1 else ''}"
    if proof.standing:
        them = "it" if len(proof.standing) == 1 else "them"
        names = _names(proof.standing)
        text = f"veil treats this picture as showing people because of {names}"
        doubt = "not a face?" if len(proof.standing) == 1 else "not faces?"
        if weak:
            return text, f"{doubt} drop {names} and {weak_words} that depended on {them}"
        return text, f"{doubt} drop {names}"
    if proof.anchors:
        names = _names(proof.anchors)
        text = f"You dropped {names}, what made veil treat this picture as showing people"
        if weak:
            them = "it" if len(proof.anchors) == 1 else "them"
            still = f"{weak_words} masked only because of {them} are still masked"
            return f"{text}; {still}", f"drop {weak_words}"
        return text, None
    return "veil treats this picture as showing people: a second look confirmed several small faces", None


def _names(ids: tuple[str, ...]) -> str:
    if len(ids) == 1:
        return ids[0]
    if len(ids) <= 4:
        return ", ".join(ids[:-1]) + " and " + ids[-1]
    return f"{len(ids)} faces ({', '.join(ids[:3])} and {len(ids) - 3} more)"
