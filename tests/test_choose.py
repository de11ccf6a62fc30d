"""The choice of what to mask: the picture decides how much proof a candidate needs."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data

from veil import (
    CenterFaceDetector,
    ChoiceOptions,
    ChoosingDetector,
    DetectionOptions,
    Detections,
    Precision,
    Reason,
)
from veil.detection.choose import choose
from veil.detection.second_look import SecondLook

from conftest import ASTRONAUT_FACE

# The finest pass over the whole picture: it proposes the cat, which the
# default search does not look at.
WHOLE = DetectionOptions(focus_threshold=0, video_key_every=1)  # every pass, on every frame too


@pytest.fixture(scope="module")
def second_look() -> SecondLook:
    return SecondLook()


def candidates(*found: tuple[tuple[float, float, float, float], float]) -> Detections:
    return Detections(np.array([box for box, _ in found], np.float32), np.array([s for _, s in found]))


def test_in_a_picture_with_no_person_only_confirmed_candidates_are_masked(second_look: SecondLook) -> None:
    """Scikit-image's cat: CenterFace's finest pass over the whole picture
    scores its whole head 0.13, and nothing else. (The default search does not
    look there at all: nothing at the next scale points the finest pass to it.)"""
    cat = np.ascontiguousarray(skimage.data.chelsea())
    found = CenterFaceDetector(DetectionOptions(focus_threshold=0)).detect(cat)
    assert len(found) >= 1 and found.scores.max() < 0.5
    choice = choose(cat, found, second_look)
    assert not choice.shows_people
    assert len(choice.kept) == 0
    assert set(choice.reasons) == {Reason.UNCONFIRMED}
    assert len(choice.dropped) == len(found)


def test_among_people_weak_candidates_are_kept_without_proof(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    """The astronaut's face makes the picture one with people: a weak box on
    her flag, of a face's size, stays masked (protection first)."""
    found = candidates((ASTRONAUT_FACE, 0.94), ((20, 300, 120, 420), 0.12))
    choice = choose(astronaut, found, second_look)
    assert choice.shows_people
    assert choice.reasons == (Reason.SURE, Reason.AMONG_PEOPLE)
    assert len(choice.kept) == 2


def test_among_people_a_weak_box_far_out_of_scale_needs_a_look(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    hair = (190, 40, 240, 90)  # weak, inside her head: kept, the mask covers it anyway
    wall = (0, 0, 511, 511)  # weak, and four times as tall as her face
    found = candidates((ASTRONAUT_FACE, 0.94), (hair, 0.15), (wall, 0.11))
    choice = choose(astronaut, found, second_look)
    assert choice.reasons == (Reason.SURE, Reason.AMONG_PEOPLE, Reason.OUT_OF_SCALE)
    assert 2 in choice.looks  # looked at before being dropped
    sure_wall = candidates((ASTRONAUT_FACE, 0.94), (wall, 0.35))
    assert choose(astronaut, sure_wall, second_look).reasons == (Reason.SURE, Reason.AMONG_PEOPLE)


def test_a_confirmed_candidate_is_masked_wherever_it_is(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    """Her face scored weak (as a blurred face may be), in a picture with nothing else."""
    choice = choose(astronaut, candidates((ASTRONAUT_FACE, 0.2)), second_look)
    assert choice.shows_people  # two looks agree firmly
    assert choice.reasons == (Reason.SURE,)


def test_a_crowd_of_small_faces_shows_people(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    """Twenty-four astronauts with 12 px faces, every candidate scored weak:
    no sure face, but the small confirmed ones make a crowd, and all stay."""
    small = cv2.resize(astronaut, (58, 58), interpolation=cv2.INTER_AREA)
    grid = np.ascontiguousarray(np.tile(small, (4, 6, 1)))
    found = CenterFaceDetector().detect(grid)
    weak = Detections(found.boxes, np.minimum(found.scores, 0.3))
    choice = choose(grid, weak, second_look)
    assert choice.shows_people
    assert len(choice.kept) == len(found)


def test_precision_all_masks_every_candidate_and_high_drops_weak_ones(
    second_look: SecondLook, astronaut: npt.NDArray[np.uint8]
) -> None:
    found = candidates((ASTRONAUT_FACE, 0.94), ((20, 300, 120, 420), 0.12))
    everything = choose(astronaut, found, None, ChoiceOptions(precision=Precision.ALL))
    assert everything.reasons == (Reason.EVERY_CANDIDATE,) * 2
    strict = choose(astronaut, found, second_look, ChoiceOptions(precision=Precision.HIGH))
    assert strict.reasons == (Reason.SURE, Reason.WEAK)
    with pytest.raises(ValueError, match="needs a SecondLook"):
        choose(astronaut, found, None)


def test_the_choosing_detector_keeps_what_the_choice_masks(astronaut: npt.NDArray[np.uint8]) -> None:
    detector = ChoosingDetector(CenterFaceDetector(WHOLE))
    cat = np.ascontiguousarray(skimage.data.chelsea())
    assert len(detector.detect(cat)) == 0
    assert len(detector.detect(astronaut)) == 1
    frames = detector.frame_choices([cat, astronaut], [0, 1])
    assert [len(c.kept) for c in frames] == [0, 1]
    assert len(frames[0].dropped) >= 1


def test_in_a_clip_frames_after_people_count_as_showing_people(astronaut: npt.NDArray[np.uint8]) -> None:
    """The cat's weak candidate is masked in a frame shortly after one with
    the astronaut, but not after a scene cut, nor once the memory ran out.
    (Only the finest pass proposes the cat: every frame gets it here.)"""
    detector = ChoosingDetector(CenterFaceDetector(WHOLE))
    cat = np.ascontiguousarray(skimage.data.chelsea())
    last = detector.options.people_memory  # the last frame the memory reaches
    detector.expect_clip(40)
    first = detector.frame_choices([astronaut, cat], [0, 3])
    assert [len(c.kept) for c in first] == [1, 1]
    assert first[1].people_nearby and not first[1].shows_people
    later = detector.frame_choices([cat, cat], [last, last + 1])
    assert [len(c.kept) for c in later] == [1, 0]
    detector.expect_clip(40)
    cut = detector.frame_choices([astronaut, cat], [0, 3], scene_cuts=[False, True])
    assert [len(c.kept) for c in cut] == [1, 0]
