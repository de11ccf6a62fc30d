"""Which face candidates to mask: the picture decides how much proof one needs.

The search (`veil.detection.detect`) proposes every candidate CenterFace scores from
0.1. On people-free photos those are texture, and almost all are scored
below 0.5; in a crowd, real faces are scored that low too, by the hundred.
What separates the two is the rest of the picture, so the choice is made
per picture (per frame in video):

1. **Does it show people?** Yes when a candidate scored `sure_score` or more
   is confirmed by a second look (`veil.detection.second_look`), when two looks at
   one candidate agree firmly, or when at least `crowd` small candidates are
   confirmed (a crowd whose faces are all tiny).
2. **If not**, only confirmed candidates are masked: a face must be seen
   twice before it costs the picture a grey oval.
3. **If it does**, every candidate is masked, as protection requires where
   faces are known to be, but for weak boxes many times taller than the
   sure faces around them (hair and a hat around a face, a patch of wall, a
   banner), which are masked only when a look confirms them.

`Precision.ALL` masks every candidate, as veil did before it chose;
`Precision.HIGH` also drops weak unconfirmed candidates among people, and
loses faces (see the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from veil.detection.detect import CenterFaceDetector, Detector, RGBImage
from veil.detection.schedule import SearchSchedule
from veil.detection.second_look import SMALL_FACE, Look, SecondLook
from veil.detections import Detections
from veil.options import ChoiceOptions, Precision
from veil.text import centre_in


class Reason(StrEnum):
    """Why a candidate was masked, or not."""

    EVERY_CANDIDATE = "every candidate"  # Precision.ALL: no choice made
    SURE = "sure"  # in a picture with people: scored sure_score or more, or firmly confirmed
    CONFIRMED = "confirmed"  # a second look found it again
    AMONG_PEOPLE = "among people"  # the picture shows people: kept without proof
    # not masked:
    UNCONFIRMED = "unconfirmed, in a picture with no person"
    OUT_OF_SCALE = "far larger than the faces around it, unconfirmed"
    ON_SIGN = "on a sign, unconfirmed"
    WEAK = "weak and unconfirmed (precision high)"

    @property
    def masked(self) -> bool:
        return self in _MASKED


_MASKED = {Reason.EVERY_CANDIDATE, Reason.SURE, Reason.CONFIRMED, Reason.AMONG_PEOPLE}


@dataclass(frozen=True)
class Choice:
    """Every candidate of one picture, and what was decided for each."""

    candidates: Detections
    reasons: tuple[Reason, ...]
    shows_people: bool  # the picture itself gave proof of people
    looks: dict[int, Look] = field(default_factory=dict)  # the candidates that were looked at again
    people_nearby: bool = False  # treated as a picture with people: the frames before it showed some

    @property
    def masked(self) -> npt.NDArray[np.bool_]:
        return np.array([reason.masked for reason in self.reasons], dtype=bool)

    @property
    def kept(self) -> Detections:
        return self.candidates.select(np.flatnonzero(self.masked))

    @property
    def dropped(self) -> Detections:
        return self.candidates.select(np.flatnonzero(~self.masked))


def choose(
    image: RGBImage,
    candidates: Detections,
    second_look: SecondLook | None,
    options: ChoiceOptions | None = None,
    people_nearby: bool = False,
) -> Choice:
    """Decide which of `candidates` (found in `image`) to mask; see the module
    docstring. With `people_nearby` (a video frame shortly after one that
    showed people) the picture is treated as one with people even without
    proof of its own. `second_look` may be None only with `Precision.ALL`."""
    options = options or ChoiceOptions()
    count = len(candidates)
    if options.precision is Precision.ALL or count == 0:
        return Choice(candidates, (Reason.EVERY_CANDIDATE,) * count, shows_people=count > 0)
    if second_look is None:
        raise ValueError(f"choose: precision {options.precision} needs a SecondLook")
    looks: dict[int, Look] = {}

    def look(index: int, until_confirmed: bool = False) -> Look:
        seen = looks.get(index)
        if seen is None or not (seen.complete or until_confirmed):
            seen = looks[index] = second_look.look(image, candidates.boxes[index], until_confirmed)
        return seen

    heights = candidates.boxes[:, 3] - candidates.boxes[:, 1]
    order = [int(i) for i in np.argsort(-candidates.scores, kind="stable")]
    sure = (candidates.scores >= options.sure_score) & (heights >= SMALL_FACE)
    # A sure candidate confirmed shows people: the looks stop at the first that confirms.
    shows_people = any(look(i, until_confirmed=True).confirmed for i in order if sure[i])
    if not shows_people and not people_nearby:
        small_confirmed = 0
        for index in order:  # best first: a picture with people is usually known after a few looks
            seen = look(index)
            small_confirmed += seen.small and seen.confirmed
            if seen.firmly_confirmed or small_confirmed >= options.crowd:
                shows_people = True
                break
    if not shows_people and not people_nearby:
        reasons = tuple(Reason.CONFIRMED if look(i).confirmed else Reason.UNCONFIRMED for i in range(count))
        return Choice(candidates, reasons, shows_people=False, looks=looks)
    anchors = sure | np.array([i in looks and looks[i].firmly_confirmed for i in range(count)], dtype=bool)
    doubtful = _out_of_scale(candidates, anchors, options)
    reasons_list = []
    for index in range(count):
        if anchors[index]:
            reasons_list.append(Reason.SURE)
            continue
        doubt = doubtful[index]
        if doubt is None and options.precision is Precision.HIGH:
            doubt = Reason.WEAK if candidates.scores[index] < options.weak_score else None
        if doubt is None:
            confirmed = index in looks and looks[index].confirmed
            reasons_list.append(Reason.CONFIRMED if confirmed else Reason.AMONG_PEOPLE)
        else:
            reasons_list.append(Reason.CONFIRMED if look(index, until_confirmed=True).confirmed else doubt)
    return Choice(candidates, tuple(reasons_list), shows_people, looks, people_nearby=not shows_people)


def _out_of_scale(
    candidates: Detections, anchors: npt.NDArray[np.bool_], options: ChoiceOptions
) -> list[Reason | None]:
    """For each candidate: OUT_OF_SCALE when it is weak and more than
    `out_of_scale` times as tall as the anchor nearest to it (None: it
    needs no look to be masked among people)."""
    doubts: list[Reason | None] = [None] * len(candidates)
    if not anchors.any():
        return doubts
    sure_boxes = candidates.boxes[anchors]
    sure_heights = sure_boxes[:, 3] - sure_boxes[:, 1]
    sure_centres = (sure_boxes[:, :2] + sure_boxes[:, 2:]) / 2
    for index, (box, score) in enumerate(zip(candidates.boxes, candidates.scores, strict=True)):
        if anchors[index] or score >= options.out_of_scale_score:
            continue
        height = float(box[3] - box[1])
        centre = (box[:2] + box[2:]) / 2
        distances = np.linalg.norm(sure_centres - centre, axis=1) / np.maximum(sure_heights, height)
        if height > options.out_of_scale * float(sure_heights[int(np.argmin(distances))]):
            doubts[index] = Reason.OUT_OF_SCALE
    return doubts


def off_signs(
    image: RGBImage, choice: Choice, signs: Sequence[Sequence[float]], second_look: SecondLook | None
) -> Choice:
    """`choice` with each candidate masked only because the picture shows
    people (AMONG_PEOPLE) and centred on one of `signs` (x1, y1, x2, y2)
    masked only when a second look confirms it: a placard's letters are
    the texture weak candidates are made of, and what a protest photo is
    about. Sure and confirmed faces on a sign stay masked."""
    if second_look is None or not signs:
        return choice
    looks = dict(choice.looks)
    reasons = list(choice.reasons)
    for index, reason in enumerate(choice.reasons):
        if reason is not Reason.AMONG_PEOPLE:
            continue
        box = choice.candidates.boxes[index]
        if not any(centre_in(box.tolist(), sign) for sign in signs):
            continue
        seen = looks.get(index)
        if seen is None:
            seen = looks[index] = second_look.look(image, box, until_confirmed=True)
        reasons[index] = Reason.CONFIRMED if seen.confirmed else Reason.ON_SIGN
    return Choice(choice.candidates, tuple(reasons), choice.shows_people, looks, choice.people_nearby)


class ChoosingDetector:
    """A Detector that searches with `searcher` and keeps only the candidates
    `choose` masks. `choice` and `frame_choices` return the whole decision.

    In a clip, a frame within `ChoiceOptions.people_memory` frames after one
    that showed people counts as showing people too, until a scene cut:
    people do not vanish between two frames, though a turned head or motion
    blur can leave a frame without proof."""

    def __init__(self, searcher: Detector, options: ChoiceOptions | None = None) -> None:
        self.searcher = searcher
        self.options = options or ChoiceOptions()
        self.model = searcher.model
        self.batch = searcher.batch
        self._second_look = SecondLook() if self.options.precision is not Precision.ALL else None
        self._people_at: int | None = None  # the last frame of this clip that showed people

    def expect_clip(self, frames: int) -> None:
        self._people_at = None
        self.searcher.expect_clip(frames)

    def choice(self, image: RGBImage) -> Choice:
        return choose(image, self.searcher.detect(image), self._second_look, self.options)

    def detect(self, image: RGBImage) -> Detections:
        return self.choice(image).kept

    def off_signs(self, image: RGBImage, choice: Choice, signs: Sequence[Sequence[float]]) -> Choice:
        """`choice` with weak candidates on `signs` looked at again (`off_signs`)."""
        return off_signs(image, choice, signs, self._second_look)

    def frame_choices(
        self, images: Sequence[RGBImage], indices: Sequence[int], scene_cuts: Sequence[bool] | None = None
    ) -> list[Choice]:
        """The choices for consecutive frames of one clip; `scene_cuts` says
        which frames start a new scene (none, if not given)."""
        found = self.searcher.detect_frames(images, indices)
        return self.choose_frames(images, indices, found, scene_cuts)

    def schedule(self) -> SearchSchedule | None:
        """A search schedule for one clip (`veil.detection.schedule`), its
        candidates then given to `choose_frames`; None where the searcher
        searches every frame whole (`frame_choices`), as a GPU does."""
        if isinstance(self.searcher, CenterFaceDetector):
            return SearchSchedule(self.searcher)
        return None

    def choose_frames(
        self,
        images: Sequence[RGBImage],
        indices: Sequence[int],
        found: Sequence[Detections],
        scene_cuts: Sequence[bool] | None = None,
    ) -> list[Choice]:
        """The choices for consecutive frames of one clip, given what the
        search found in each (`frame_choices`)."""
        cuts = scene_cuts if scene_cuts is not None else [False] * len(images)
        choices = []
        for image, index, candidates, cut in zip(images, indices, found, cuts, strict=True):
            if cut:
                self._people_at = None
            nearby = self._people_at is not None and index - self._people_at <= self.options.people_memory
            choice = choose(image, candidates, self._second_look, self.options, nearby)
            if choice.shows_people:
                self._people_at = index
            choices.append(choice)
        return choices

    def detect_frames(self, images: Sequence[RGBImage], indices: Sequence[int]) -> list[Detections]:
        return [choice.kept for choice in self.frame_choices(images, indices)]


def choosing(detector: Detector) -> ChoosingDetector:
    """`detector` as one that returns its whole choice: a ChoosingDetector
    as it is, any other wrapped to mask every candidate it finds
    (`Precision.ALL`, each with the reason "every candidate")."""
    if isinstance(detector, ChoosingDetector):
        return detector
    return ChoosingDetector(detector, ChoiceOptions(precision=Precision.ALL))
