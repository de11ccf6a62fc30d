"""Mask plans from Python: typed objects, the JSON round trip, and what a
malformed plan is told."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

import veil
from veil import Decision, Kind, Plan, Region, Shape, load_plan, save_plan
from veil.plan import FrameBox, Source
from veil.plan.make import reading_order
from veil.plan.read import plan_from_dict

from conftest import ASTRONAUT_FACE

VIDEO = Source("clip.mp4", "a" * 64, 640, 360, frames=30, time_base="1/15360")


def test_a_plan_round_trips_through_json(tmp_path: Path) -> None:
    track = tuple(FrameBox(i, (10.0 + i, 20.0, 50.0 + i, 70.0), 0.8 if i % 2 else 0.0) for i in range(5))
    plan = Plan(VIDEO, (Region("f1", Kind.FACE, Decision.MASK, track=track),)).drawn(
        keyframes=[(3, (0, 0, 10, 10)), (9, (60, 0, 70, 10))], label="plate"
    )
    save_plan(plan, tmp_path / "p.json")
    again = load_plan(tmp_path / "p.json")
    assert again == plan
    assert again.region("m1").label == "plate" and again.region("m1").kind is Kind.MANUAL


def test_key_frames_are_interpolated_and_absent_outside_them() -> None:
    plan = Plan(VIDEO).drawn(keyframes=[(10, (0, 0, 10, 10)), (20, (100, 50, 110, 60))])
    assert plan.masks_at(15)[0].box == (50, 25, 60, 35)
    assert plan.masks_at(10)[0].box == (0, 0, 10, 10) and plan.masks_at(20)[0].box == (100, 50, 110, 60)
    assert plan.masks_at(9) == [] and plan.masks_at(21) == []


def test_only_masked_regions_are_drawn() -> None:
    photo = Source("a.jpg", "b" * 64, 100, 100)
    regions = (
        Region("f1", Kind.FACE, Decision.MASK, box=(1, 1, 5, 5)),
        Region("f2", Kind.FACE, Decision.DROP, box=(10, 10, 20, 20)),
        Region("f3", Kind.FACE, Decision.KEEP, box=(30, 30, 40, 40), reason="consented"),
    )
    assert [m.box for m in Plan(photo, regions).masks_at()] == [(1, 1, 5, 5)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "veil-plan/2"}, "unknown schema"),
        ({"regions": {}}, "regions should be a list"),
        ({"regions": [{"id": "x", "kind": "face", "decision": "hide", "box": [0, 0, 1, 1]}]}, "decision"),
        ({"regions": [{"id": "x", "kind": "face", "decision": "mask"}]}, "exactly one of box"),
        ({"regions": [{"id": "x", "kind": "face", "decision": "mask", "box": [0, 0, "1", 1]}]}, "a number"),
        (
            {"regions": [{"id": "x", "kind": "face", "decision": "mask", "track": [[0, 0, 0, 1, 1]]}]},
            "a photo",
        ),
        ({"mask": {"method": "solid", "head_scale": 0.5, "color": [0, 0, 0]}}, "head_scale"),
    ],
)
def test_malformed_plans_say_what_is_wrong_in_one_line(change: dict[str, object], message: str) -> None:
    data = Plan(Source("a.jpg", "b" * 64, 100, 100)).to_dict() | change
    with pytest.raises(veil.PlanError, match=message) as raised:
        plan_from_dict(json.loads(json.dumps(data)))
    assert "\n" not in str(raised.value)


def test_edit_and_render_from_python(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    original = tmp_path / "a.png"
    Image.fromarray(astronaut).save(original)
    report = veil.anonymize_file(original, tmp_path / "out.png")
    assert report.plan is not None
    plan = veil.load_plan(report.plan)
    (face,) = [r for r in plan.regions if r.decision is Decision.MASK and r.kind is Kind.FACE]
    edited = plan.decide(face.id, Decision.KEEP, "she asked to be shown").drawn(
        box=(0, 0, 40, 30), label="logo"
    )
    with pytest.raises(veil.PlanError, match="without a reason"):
        plan.decide(face.id, Decision.KEEP)
    result = veil.render_file(original, edited, tmp_path / "edited.png")
    assert result.ok and result.decisions is not None
    assert result.decisions.added == ["m1"] and result.decisions.kept[0].reason == "she asked to be shown"
    assert result.verification is not None and result.verification.kept
    with Image.open(tmp_path / "edited.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    x1, y1, x2, y2 = ASTRONAUT_FACE
    assert np.array_equal(pixels[y1:y2, x1:x2], astronaut[y1:y2, x1:x2])
    assert np.all(pixels[0:30, 0:40] == veil.MaskOptions().color)
    assert edited.region("m1").shape is Shape.BOX


def test_photo_regions_are_numbered_in_reading_order() -> None:
    # Two rows, the faces of each a few pixels apart in height, given out of order.
    boxes = [
        [300.0, 52.0, 360.0, 120.0],
        [10.0, 200.0, 70.0, 260.0],
        [20.0, 55.0, 80.0, 118.0],
        [150.0, 50.0, 200.0, 110.0],
    ]
    assert reading_order(boxes) == [2, 3, 0, 1]
    assert reading_order([]) == []
