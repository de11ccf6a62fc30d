"""Bulk decisions and what has been checked, below the review page: many
regions decided as one edit, regions grouped and explained in plain words,
the proof of people and what stands on it, and the regions a person has
looked at, kept across a restart of the review."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from starlette.testclient import TestClient

from veil import Decision, Kind, Plan, PlanError, Reason, Region
from veil.plan.model import Box, Found, Source
from veil.review import explain
from veil.review.draft import Draft, draft_path
from veil.review.run import ReviewedRun
from veil.review.server import Review, Secrets
from veil.review.views import batch_view, file_view, review_order

from review_batch import run

PORT = 48124
SHA = "0" * 64


def face(number: int, why: Reason | str | None, score: float, box: Box | None = None) -> Region:
    masked = why is None or (isinstance(why, Reason) and why.masked)
    decision = Decision.MASK if masked else Decision.DROP
    box = box or (10.0 * number, 10.0, 10.0 * number + 8, 18.0)
    return Region(
        f"f{number}",
        Kind.FACE,
        decision,
        box=box,
        found=Found(score, decision, why, found_by=("centerface x2",)),
    )


def flower_plan(weak: int = 30) -> Plan:
    """A photo with no person: one weak find that a firm second look took
    for a face (the anchor), and every other find masked because of it."""
    regions = [face(1, Reason.SURE, 0.31)]
    regions += [face(n, Reason.AMONG_PEOPLE, 0.1 + n / 1000) for n in range(2, 2 + weak)]
    regions += [face(90, Reason.CONFIRMED, 0.4), face(91, Reason.OUT_OF_SCALE, 0.12)]
    return Plan(Source("flower.jpg", SHA, 1000, 100), tuple(regions)).drawn(
        box=(1.0, 1.0, 9.0, 9.0), label="badge"
    )


def test_many_regions_are_decided_as_one_edit(tmp_path: Path) -> None:
    plan = flower_plan()
    draft = Draft(plan, tmp_path / "flower.jpg.plan.draft.json")
    draft.change(plan.decide_many(["f2", "f3", "f4", "f3"], Decision.DROP))
    assert [draft.plan.region(i).decision for i in ("f2", "f3", "f4")] == [Decision.DROP] * 3
    assert draft.plan.region("f5").decision is Decision.MASK
    draft.undo()  # one step undoes all of them
    assert draft.plan == plan and not draft.can_undo
    with pytest.raises(PlanError, match=r"^plan: no region 'f999' in this plan \(and 1 more\)$"):
        plan.decide_many(["f2", "f999", "nope"], Decision.DROP)
    with pytest.raises(PlanError, match="no region to decide"):
        plan.decide_many([], Decision.DROP)
    with pytest.raises(PlanError, match="without a reason"):
        plan.decide_many(["f2", "f3"], Decision.KEEP)
    kept = plan.decide_many(["f2", "f3"], Decision.KEEP, "both consented")
    assert {kept.region(i).reason for i in ("f2", "f3")} == {"both consented"}


def test_regions_are_explained_in_plain_words() -> None:
    plan = flower_plan(weak=2)
    words = {r.id: explain.said(r) for r in plan.regions}
    assert words["f1"] == "a face, sure: a weak find, but two looks at it agreed firmly"  # scored 0.31
    assert explain.said(face(7, Reason.SURE, 0.93)) == "a face, sure"
    assert words["f2"] == "weak, masked because this picture shows people"
    assert words["f90"] == "a face, confirmed by a second look"
    assert words["f91"].startswith("not masked: far larger than the faces around it")
    assert words["m1"] == "drawn by a person: badge"
    no_person = face(5, Reason.UNCONFIRMED, 0.2)
    assert explain.said(no_person) == (
        "not masked: no person in this picture and a second look did not confirm it"
    )
    for text in words.values():  # no detector's jargon in the main text
        assert "centerface" not in text and "x2" not in text and "0." not in text
    assert "centerface x2" in explain.detail(plan.region("f2"))  # the tooltip keeps it
    assert explain.unconfirmed(plan.region("f2")) and explain.unconfirmed(plan.region("f91"))
    assert not explain.unconfirmed(plan.region("f1")) and not explain.unconfirmed(plan.region("f90"))
    assert not explain.unconfirmed(plan.region("m1"))


def test_regions_are_grouped_most_doubtful_first() -> None:
    plan = flower_plan(weak=3)
    groups = [(key, [r.id for r in members]) for key, members in explain.grouped(plan)]
    assert groups == [
        (explain.Group.AMONG_PEOPLE, ["f2", "f3", "f4"]),  # least sure first
        (explain.Group.OUT_OF_SCALE, ["f91"]),
        (explain.Group.CONFIRMED, ["f90"]),
        (explain.Group.SURE, ["f1"]),
        (explain.Group.DRAWN, ["m1"]),
    ]
    assert [r.id for r in review_order(plan)] == ["f2", "f3", "f4", "f91", "f90", "f1", "m1"]


def test_the_proof_of_people_falls_with_what_stood_on_it() -> None:
    plan = flower_plan(weak=30)
    proof = explain.people_proof(plan)
    assert proof is not None
    assert proof.anchors == proof.standing == ("f1",)
    assert len(proof.dependants) == 30 and "f90" not in proof.dependants  # the confirmed one stays
    text, action = explain.proof_words(proof)
    assert text == "veil treats this picture as showing people because of f1"
    assert action == "not a face? drop f1 and the 30 weak regions that depended on it"
    cleared = plan.decide_many(proof.to_drop, Decision.DROP)
    masked = {r.id for r in cleared.regions if r.decision is Decision.MASK}
    assert masked == {"f90", "m1"}

    alone = plan.decide("f1", Decision.DROP)  # the anchor dropped by itself: the weak ones stay
    proof = explain.people_proof(alone)
    assert proof is not None and proof.standing == () and len(proof.to_drop) == 30
    text, action = explain.proof_words(proof)
    assert "You dropped f1" in text and action == "drop the 30 weak regions"
    assert explain.people_proof(cleared) is not None  # the record of what veil knew stays...
    assert explain.proof_words(explain.people_proof(cleared))[1] is None  # ...with nothing to drop

    crowd = Plan(plan.source, (face(1, Reason.CONFIRMED, 0.3), face(2, Reason.AMONG_PEOPLE, 0.1)))
    proof = explain.people_proof(crowd)
    assert proof is not None and proof.anchors == () and explain.proof_words(proof)[1] is None
    nobody = Plan(plan.source, (face(1, Reason.UNCONFIRMED, 0.3),))
    assert explain.people_proof(nobody) is None


@pytest.fixture(scope="module")
def flower_run(tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]) -> Path:
    """A run whose plan holds the astronaut's face and 30 weak finds masked
    because of a sure one (written into the plan: nothing is rendered)."""
    root = tmp_path_factory.mktemp("bulk")
    (root / "in").mkdir()
    Image.fromarray(astronaut).save(root / "in" / "one.png")
    assert run("anonymize", root / "in", "-o", root / "out", "-q", "--no-verify") == 0
    plan_file = root / "out" / "one.png.plan.json"
    plan: dict[str, Any] = json.loads(plan_file.read_text())
    for n in range(30):
        x, y = 20 + 15 * n, 400
        plan["regions"].append(
            {
                "id": f"f{100 + n}",
                "kind": "face",
                "decision": "mask",
                "box": [x, y, x + 12, y + 14],
                "found": {"score": 0.11, "decision": "mask", "why": "among people"},
            }
        )
    plan_file.write_text(json.dumps(plan))
    return root / "out"


@pytest.fixture
def client(flower_run: Path) -> Iterator[tuple[TestClient, ReviewedRun, str]]:
    keys = Secrets(port=PORT)
    batch = ReviewedRun(flower_run)
    client = TestClient(Review(batch, keys).app(), base_url=f"http://127.0.0.1:{PORT}")
    assert client.get(f"/?token={keys.token}", follow_redirects=False).status_code == 303
    client.headers.update({"origin": f"http://127.0.0.1:{PORT}", "x-veil-csrf": keys.csrf})
    (item,) = batch.items
    yield client, batch, item
    draft_path(flower_run / "one.png").unlink(missing_ok=True)
    report = flower_run / "veil-report.json"  # the next test starts with nothing looked at
    data = json.loads(report.read_text())
    data["files"][0]["review"] = None
    report.write_text(json.dumps(data))


def test_the_page_gets_many_regions_decided_in_one_step(client: tuple[TestClient, ReviewedRun, str]) -> None:
    http, _, item = client
    weak = [f"f{100 + n}" for n in range(30)]
    shown = http.get(f"/api/files/{item}").json()
    groups = {g["key"]: g["ids"] for g in shown["groups"]}
    assert sorted(groups["among people"]) == sorted(weak)
    assert shown["regions"][0]["said"] == "weak, masked because this picture shows people"
    assert shown["people"]["drop"][0] == "f1" and sorted(shown["people"]["drop"][1:]) == sorted(weak)

    answer = http.post(f"/api/files/{item}/edit", json={"op": "decide", "regions": weak, "decision": "drop"})
    assert answer.status_code == 200
    decided = {r["id"]: r["decision"] for r in answer.json()["regions"]}
    assert all(decided[i] == "drop" for i in weak) and decided["f1"] == "mask"
    undone = http.post(f"/api/files/{item}/undo", json={}).json()
    assert all(r["decision"] == "mask" for r in undone["regions"]) and not undone["can_undo"]

    for body, error in (
        ({"regions": ["f100", "f999"]}, "plan: no region 'f999' in this plan"),
        ({"regions": []}, "regions should be a list of region ids"),
        ({"regions": "f100"}, "regions should be a list of region ids"),
        ({"regions": [None]}, "regions should be a list of region ids"),
    ):
        refused = http.post(f"/api/files/{item}/edit", json={"op": "decide", "decision": "drop", **body})
        assert refused.status_code == 400 and refused.json() == {"error": error}
    many_kept = {"op": "decide", "decision": "keep", "reason": "all consented", "regions": weak[:2]}
    refused = http.post(f"/api/files/{item}/edit", json=many_kept)
    assert refused.status_code == 400 and "one at a time" in refused.json()["error"]
    assert not http.get(f"/api/files/{item}").json()["unapplied"]  # nothing refused was half done


def test_what_was_looked_at_survives_a_restart(
    client: tuple[TestClient, ReviewedRun, str], flower_run: Path
) -> None:
    http, batch, item = client
    total = len(batch.draft(batch.items[item]).plan.regions)
    assert http.get(f"/api/files/{item}").json()["reviewed"] == {"looked": 0, "total": total}
    answer = http.post(f"/api/files/{item}/looked", json={"regions": ["f1"]}).json()
    assert answer == {"looked": ["f1"], "reviewed": {"looked": 1, "total": total}}
    body = {"op": "decide", "regions": ["f100", "f101"], "decision": "drop"}
    http.post(f"/api/files/{item}/edit", json=body)  # deciding is looking
    shown = http.post(f"/api/files/{item}/undo", json={}).json()
    assert not shown["unapplied"] and shown["reviewed"]["looked"] == 3  # looking is no edit to apply
    refused = http.post(f"/api/files/{item}/looked", json={"regions": ["f999"]})
    assert refused.status_code == 400 and "f999" in refused.json()["error"]

    again = ReviewedRun(flower_run)  # veil review started again on the same folder
    (other,) = again.items.values()
    assert other.looked_at == {"f1", "f100", "f101"}
    view = file_view(again, other)
    assert view["reviewed"] == {"looked": 3, "total": total}
    assert {r["id"] for r in view["regions"] if r["looked"]} == {"f1", "f100", "f101"}
    assert batch_view(again)["files"][0]["reviewed"] == view["reviewed"]  # the batch grid counts it too
    record = json.loads((flower_run / "veil-report.json").read_text())["files"][0]["review"]
    assert record["looked_at"] == ["f1", "f100", "f101"] and record["approved"] is False
    assert not draft_path(flower_run / "one.png").exists()
