"""The library under the review page: geometry edits of plans, frames by
index, drafts with undo, and applying a draft without ever losing the
output that was there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from veil import Decision, Kind, Plan, PlanError, Region, load_plan
from veil.detection.second_look import SecondLook
from veil.errors import RejectedError, ReviewError
from veil.media.video import FrameReader, VideoSource
from veil.plan.edit import SPREAD, inside_picture, moved, removed, spanned, split, whole_clip
from veil.plan.model import Found, FrameBox, Source
from veil.plan.read import plan_from_dict
from veil.review.draft import Draft, draft_path
from veil.review.follow import followed
from veil.review.run import ReviewedRun
from veil.review.uncover import dropped_by_person, uncovered
from veil.review.views import file_summary, review_order, spans

from review_batch import run
from videos import make_clip

SHA = "0" * 64


def clip_plan(frames: int = 40) -> Plan:
    track = tuple(FrameBox(f, (10.0 + f, 10.0, 30.0 + f, 30.0), 0.9) for f in range(5, 30))
    face = Region("f1", Kind.FACE, Decision.MASK, track=track)
    return Plan(Source("c.mp4", SHA, 200, 100, frames, "1/90000"), (face,))


def test_a_box_moved_at_a_frame_fades_into_its_neighbours() -> None:
    plan = moved(clip_plan(), "f1", (30.0, 20.0, 50.0, 40.0), frame=15)
    region = plan.region("f1")
    assert region.set_frames == (15,)
    assert region.box_at(15) == (30.0, 20.0, 50.0, 40.0)
    shift = [region.box_at(f)[0] - (10.0 + f) for f in range(5, 30)]  # type: ignore[index]
    at = {f: round(s, 3) for f, s in zip(range(5, 30), shift, strict=True)}
    assert at[15] == 5.0 and 0 < at[14] < 5.0 and 0 < at[16] < 5.0
    assert at[15 + SPREAD + 1] == at[29] == 0.0  # beyond the spread: untouched
    again = moved(plan, "f1", (10.0 + 20, 10.0, 30.0 + 20, 30.0), frame=20)
    assert again.region("f1").box_at(15) == (30.0, 20.0, 50.0, 40.0)  # a set frame holds
    assert again.region("f1").set_frames == (15, 20)
    assert plan_from_dict(again.to_dict()) == again  # set frames survive the file


def test_spans_trim_and_extend_tracks_and_key_frames() -> None:
    plan = clip_plan()
    trimmed = spanned(plan, "f1", 10, 20).region("f1")
    assert (trimmed.track[0].frame, trimmed.track[-1].frame) == (10, 20)
    extended = spanned(plan, "f1", 0, 39).region("f1")
    assert extended.box_at(0) == plan.region("f1").box_at(5)
    assert extended.box_at(39) == plan.region("f1").box_at(29)
    with pytest.raises(PlanError):
        spanned(plan, "f1", 20, 10)
    with pytest.raises(PlanError):
        spanned(plan, "f1", 0, 40)
    drawn = plan.drawn(keyframes=whole_clip(plan, (1.0, 1.0, 9.0, 9.0)), label="badge")
    manual = drawn.regions[-1]
    assert manual.box_at(0) == manual.box_at(39) == (1.0, 1.0, 9.0, 9.0)
    moving = moved(drawn, manual.id, (11.0, 1.0, 19.0, 9.0), frame=20).region(manual.id)
    assert moving.box_at(10) == (6.0, 1.0, 14.0, 9.0)  # interpolated between key frames
    short = spanned(drawn, manual.id, 5, 10).region(manual.id)
    assert short.box_at(4) is None and short.box_at(11) is None and short.box_at(7) is not None


def test_only_drawn_regions_are_removed() -> None:
    plan = clip_plan().drawn(keyframes=[(3, (1.0, 1.0, 5.0, 5.0))])
    assert [r.id for r in removed(plan, "m1").regions] == ["f1"]
    with pytest.raises(PlanError, match="drop it"):
        removed(plan, "f1")
    with pytest.raises(PlanError):
        moved(plan, "f1", (0.0, 0.0, 10.0, 10.0), frame=2)  # not in that frame


def test_doubt_order_and_spans() -> None:
    plan = clip_plan()
    assert [r.id for r in review_order(plan)] == ["f1"]
    assert spans([1, 2, 3, 7, 8, 10]) == [[1, 3], [7, 8], [10, 10]]


def test_frames_by_index_are_the_frames_iteration_gives(
    tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    path = tmp_path / "c.mp4"
    make_clip(path, astronaut, frames=30, variable_rate=True)
    with VideoSource(path) as source:
        frames = [item.pixels for item in source.iter_media() if not hasattr(item, "stream")]
    with FrameReader(path) as reader:
        assert reader.frames == len(frames) == 30
        for index in (0, 29, 3, 4, 17, 2, 28, 0):  # forwards, backwards, far and near
            assert np.array_equal(reader.frame(index), frames[index]), index
        with pytest.raises(IndexError):
            reader.frame(30)


def test_a_draft_is_saved_at_every_change_and_undone(tmp_path: Path) -> None:
    plan = clip_plan()
    path = tmp_path / "c.mp4.plan.draft.json"
    draft = Draft(plan, path)
    draft.change(plan.decide("f1", Decision.DROP))
    assert load_plan(path).region("f1").decision is Decision.DROP
    assert Draft(plan, path).plan.region("f1").decision is Decision.DROP  # what a crash leaves
    draft.undo()
    assert not draft.edited and not path.exists() and draft.can_redo
    draft.redo()
    assert draft.edited and path.exists()


@pytest.fixture
def reviewed(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> Path:
    (tmp_path / "in").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "in" / "one.png")
    assert run("anonymize", tmp_path / "in", "-o", tmp_path / "out", "-q", "--no-verify") == 0
    return tmp_path / "out"


def test_a_failed_apply_leaves_the_output_and_its_plan(reviewed: Path, tmp_path: Path) -> None:
    batch = ReviewedRun(reviewed)
    (item,) = batch.items.values()
    output, plan_file = reviewed / "one.png", reviewed / "one.png.plan.json"
    before = output.read_bytes(), plan_file.read_bytes()
    batch.change(item, lambda plan: plan.decide("f1", Decision.DROP))
    Image.new("RGB", (512, 512)).save(tmp_path / "in" / "one.png")  # the original is not the one planned
    with pytest.raises(ReviewError, match="not rendered"):
        batch.apply(item)
    assert (output.read_bytes(), plan_file.read_bytes()) == before
    assert draft_path(output).exists()  # the person's work is kept
    assert not (reviewed / ".veil-review").exists()
    report = json.loads((reviewed / "veil-report.json").read_text())
    assert report["files"][0]["review"] is None


def files_under(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_copied_folder_is_reviewed_where_it_is_not_where_its_report_points(
    reviewed: Path, tmp_path: Path
) -> None:
    """The report names the outputs where anonymize wrote them; a copy of
    the folder is applied in the copy, and the first folder is not touched."""
    copy = shutil.copytree(reviewed, tmp_path / "copy")
    before = files_under(reviewed)
    batch = ReviewedRun(copy)
    (item,) = batch.items.values()
    assert item.output == (copy / "one.png").resolve()
    batch.change(item, lambda plan: plan.drawn(box=(10.0, 10.0, 60.0, 60.0), label="sign"))
    batch.apply(item)
    assert files_under(reviewed) == before
    assert (copy / "one.png").read_bytes() != before[reviewed / "one.png"]
    assert load_plan(copy / "one.png.plan.json").region("m1").label == "sign"


def test_an_apply_whose_render_fails_verification_changes_nothing(reviewed: Path) -> None:
    batch = ReviewedRun(reviewed)
    (item,) = batch.items.values()
    output, plan_file, report_file = (
        reviewed / "one.png",
        reviewed / "one.png.plan.json",
        reviewed / "veil-report.json",
    )
    before = output.read_bytes(), plan_file.read_bytes(), report_file.read_bytes()
    batch.change(item, lambda plan: plan.decide("f1", Decision.DROP))  # the astronaut's face, uncovered
    with pytest.raises(RejectedError, match="not applied: the new render failed verification") as refused:
        batch.apply(item)
    assert (output.read_bytes(), plan_file.read_bytes(), report_file.read_bytes()) == before  # byte for byte
    assert refused.value.report.verification is not None and refused.value.report.verification.failures
    assert item.rejected is refused.value.report  # kept for the page, with the findings
    assert draft_path(output).exists()  # the person's work is kept
    assert not (reviewed / ".veil-review").exists()  # the refused render is gone from OUTDIR


def test_unapplied_edits_are_shown_after_a_restart(reviewed: Path) -> None:
    batch = ReviewedRun(reviewed)
    (item,) = batch.items.values()
    assert not file_summary(batch, item)["unapplied"]
    batch.change(item, lambda plan: plan.decide("f1", Decision.DROP))
    again = ReviewedRun(reviewed)  # veil review started again: no draft opened yet
    (item,) = again.items.values()
    summary = file_summary(again, item)
    assert summary["unapplied"] and summary["edited"]


def test_a_track_is_split_in_two_regions_decided_apart() -> None:
    plan = clip_plan()
    track = tuple(
        FrameBox(f, (10.0 + f, 10.0, 30.0 + f, 30.0), 0.2 if f < 12 else 0.9 if f % 2 else 0.0)
        for f in range(5, 30)
    )
    plan = plan.with_region(Region("f1", Kind.FACE, Decision.MASK, track=track, set_frames=(8, 20)))
    cut = split(plan, "f1", 12)
    before, after = cut.region("f1"), cut.region("f2")
    assert [e.frame for e in before.track] == list(range(5, 12))
    assert [e.frame for e in after.track] == list(range(12, 30))
    assert before.set_frames == (8,) and after.set_frames == (20,)
    assert [r.id for r in cut.regions] == ["f1", "f2"]
    dropped = cut.decide("f1", Decision.DROP)
    assert dropped.masks_at(6) == [] and len(dropped.masks_at(13)) == 1  # masked from the cut on only
    assert plan_from_dict(dropped.to_dict()) == dropped
    for frame in (5, 30, 40):  # at its first frame, past its end, past the clip
        with pytest.raises(PlanError):
            split(plan, "f1", frame)


def test_a_split_part_is_described_by_its_own_frames() -> None:
    found = Found(0.9, Decision.MASK, frames_detected=25, frames_filled=0)
    track = tuple(FrameBox(f, (10.0, 10.0, 30.0, 30.0), 0.15 if f < 10 else 0.9) for f in range(5, 20))
    plan = clip_plan().with_region(Region("f1", Kind.FACE, Decision.MASK, track=track, found=found))
    cut = split(plan, "f1", 10)
    assert cut.region("f1").found == Found(0.15, Decision.MASK, frames_detected=5, frames_filled=0)
    assert cut.region("f2").found == Found(0.9, Decision.MASK, frames_detected=10, frames_filled=0)


def test_a_drawn_region_is_split_where_its_key_frames_put_it() -> None:
    plan = clip_plan().drawn(
        keyframes=[(0, (0.0, 0.0, 10.0, 10.0)), (20, (20.0, 0.0, 30.0, 10.0))], label="plate"
    )
    cut = split(plan, "m1", 10)
    assert cut.region("m1").box_at(9) == plan.region("m1").box_at(9)
    assert cut.region("m1").box_at(10) is None
    assert cut.region("m2").box_at(10) == plan.region("m1").box_at(10)
    assert cut.region("m2").box_at(20) == (20.0, 0.0, 30.0, 10.0) and cut.region("m2").label == "plate"


def test_a_box_dragged_past_the_edge_keeps_the_part_inside() -> None:
    plan = clip_plan()  # 200 x 100
    assert inside_picture(plan, (-20.0, 50.0, 30.0, 130.0)) == (0.0, 50.0, 30.0, 100.0)
    with pytest.raises(PlanError):
        inside_picture(plan, (210.0, 10.0, 260.0, 40.0))


def test_a_reason_is_written_out(reviewed: Path) -> None:
    plan = load_plan(reviewed / "one.png.plan.json")
    for stray in ("", "  ", "v", " v\n", "x."):
        with pytest.raises(PlanError, match="reason"):
            plan.decide("f1", Decision.KEEP, stray)
    kept = plan.decide("f1", Decision.KEEP, "  she asked to be shown ")
    assert kept.region("f1").reason == "she asked to be shown"
    data = kept.to_dict()
    data["regions"][0]["reason"] = "v"  # a plan file with a stray key as its reason is refused too
    with pytest.raises(PlanError, match="write the reason out"):
        plan_from_dict(data)


def test_drops_that_would_uncover_a_face_are_told(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    clip = make_clip(tmp_path / "c.mp4", astronaut, frames=12, audio=False)
    wrong = (380.0, 280.0, 430.0, 315.0)  # grey background: no face
    track = tuple(
        FrameBox(f, wrong if f < 6 else tuple(map(float, clip.faces[f])), 0.15 if f < 6 else 0.9)  # type: ignore[arg-type]
        for f in range(12)
    )
    weak = tuple(FrameBox(f, tuple(map(float, clip.faces[f])), 0.3) for f in range(6))  # type: ignore[arg-type]
    base = Plan(
        Source("c.mp4", SHA, 480, 320, 12, "1/90000"),
        (
            Region("f1", Kind.FACE, Decision.MASK, track=track),
            Region("f2", Kind.FACE, Decision.MASK, track=weak),
        ),
    )
    look = SecondLook()
    with FrameReader(clip.path) as reader:
        frames = {f: reader.frame(f) for f in range(12)}

    def told(plan: Plan) -> list[tuple[str, tuple[int, ...]]]:
        return [(u.region, u.frames) for u in uncovered(plan, base, lambda f: frames[f or 0], look)]

    assert told(base) == []
    assert told(base.decide("f1", Decision.DROP)) == [("f1", tuple(range(6, 12)))]  # scored sure there
    cut = split(base, "f1", 6)
    assert told(cut.decide("f1", Decision.DROP)) == []  # only the part on the background is dropped
    assert [r.id for r in dropped_by_person(cut.decide("f3", Decision.DROP), base)] == ["f3"]  # a new part
    second = told(base.decide("f2", Decision.DROP))  # weak scores: a second look confirms the face
    assert second and second[0][0] == "f2" and set(second[0][1]) <= set(range(6))


def test_a_folder_without_a_report_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReviewError, match=r"veil-report\.json"):
        ReviewedRun(tmp_path)
    assert run("review", tmp_path, "--no-browser") == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("veil: no veil-report.json") and "\n" not in error and "Traceback" not in error


def test_a_drawn_box_follows_the_content_both_ways(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    clip = make_clip(tmp_path / "c.mp4", astronaut, frames=16, audio=False)
    with FrameReader(clip.path) as reader:
        start = 8
        path = followed(reader.frame, reader.frames, start, tuple(map(float, clip.faces[start])))  # type: ignore[arg-type]
    assert [frame for frame, _ in path] == list(range(16))  # forwards to the end, backwards to the start
    for frame, box in path:
        assert np.abs(np.array(box) - np.array(clip.faces[frame])).max() <= 6, (
            frame
        )  # the face moves 6 px a frame
