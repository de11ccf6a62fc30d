"""What the review page shows, as plain data: the batch, one file with its
regions in the order a person should look at them, the regions in one
frame with the outline of what each mask covers, and the verifier's
findings tied to the region they are about. The page draws these; it
decides nothing."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from veil.detections import Detections
from veil.masks import head_ellipses
from veil.plan.edit import LABELS
from veil.plan.model import Box, Kind, Plan, Region, Shape
from veil.report import Finding
from veil.review import explain
from veil.review.draft import draft_path
from veil.review.people import frames_in, surest_frame
from veil.review.run import Item, ReviewedRun, State

# Failing and unfinished files first.
_STATE_ORDER = {
    State.VERIFICATION_FAILED: 0,
    State.NOT_ANONYMIZED: 1,
    State.REVIEW: 2,
    State.UNVERIFIED: 3,
    State.PASS: 4,
}


def batch_view(batch: ReviewedRun) -> dict[str, Any]:
    files = [file_summary(batch, item) for item in batch.items.values()]
    files.sort(key=lambda f: (f["approved"], _STATE_ORDER[State(f["state"])], f["name"]))
    counts = {state.value: sum(1 for f in files if f["state"] == state.value) for state in State}
    return {
        "folder": batch.outdir.name,
        "files": files,
        "counts": counts | {"approved": sum(1 for f in files if f["approved"]), "total": len(files)},
        "labels": list(LABELS),
    }


def file_summary(batch: ReviewedRun, item: Item) -> dict[str, Any]:
    file = batch.file(item)
    verification = file.verification
    draft = item.draft
    # A draft left by an earlier review, not opened yet in this one, is unapplied edits too.
    unapplied = (
        draft.edited if draft is not None else item.output is not None and draft_path(item.output).is_file()
    )
    return {
        "id": item.id,
        "name": item.name,
        "kind": "video" if item.video else "photo",
        "state": batch.state(item).value,
        "error": file.error,
        "failures": len(verification.failures) if verification else 0,
        "review": len(verification.review) if verification else 0,
        "masks": file.faces_masked,
        "edited": unapplied or bool(file.decisions and file.decisions.any),
        "unapplied": unapplied,
        "approved": batch.approved(item),
        "renders": file.review.renders if file.review else 0,
        "reviewed": reviewed(batch, item),
    }


def reviewed(batch: ReviewedRun, item: Item) -> dict[str, int] | None:
    """How many of the file's regions a person has looked at, of how many
    (None when its plan cannot be read: nothing to review)."""
    plan = batch.plan_now(item)
    if plan is None:
        return None
    looked = sum(1 for r in plan.regions if looked_at(item, r))
    return {"looked": looked, "total": len(plan.regions)}


def looked_at(item: Item, region: Region) -> bool:
    """A person has looked at the region: selected or decided it, or drew it."""
    return region.id in item.looked_at or region.kind is Kind.MANUAL


def file_view(batch: ReviewedRun, item: Item) -> dict[str, Any]:
    draft = batch.draft(item)
    plan = draft.plan
    file = batch.file(item)
    order = enumerate(review_order(plan))
    regions = [region_view(plan, r, index) | {"looked": looked_at(item, r)} for index, r in order]
    findings: list[dict[str, Any]] = []
    if file.verification is not None:
        for severity, found in (
            ("fail", file.verification.failures),
            ("review", file.verification.review),
            ("kept", file.verification.kept),
        ):
            findings.extend(finding_view(plan, f, severity) for f in found)
    return file_summary(batch, item) | {
        "width": plan.source.width,
        "height": plan.source.height,
        "frames": plan.source.frames,
        "regions": regions,
        "findings": findings,
        "can_undo": draft.can_undo,
        "can_redo": draft.can_redo,
        "version": draft.version,
        "not_run": file.verification.not_run if file.verification else [],
        "rejected": rejected_view(plan, item),
        "groups": [
            {"key": key.value, "title": key.heading, "ids": [r.id for r in members]}
            for key, members in explain.grouped(plan)
        ],
        "people": people_view(plan),
    }


def people_view(plan: Plan) -> dict[str, Any] | None:
    """Why veil treats the photo as showing people, and the one action that
    drops that proof with every weak region that stood on it."""
    proof = explain.people_proof(plan)
    if proof is None:
        return None
    text, action = explain.proof_words(proof)
    return {
        "text": text,
        "anchors": list(proof.anchors),
        "standing": list(proof.standing),
        "dependants": list(proof.dependants),
        "action": action,
        "drop": list(proof.to_drop) if action else [],
    }


def rejected_view(plan: Plan, item: Item) -> dict[str, Any] | None:
    """The last Apply's render that failed verification and was not applied:
    what the verifier found in it, tied to the draft's regions."""
    rendered = item.rejected
    if rendered is None:
        return None
    verdict = rendered.verification
    failures = verdict.failures if verdict is not None else []
    return {"findings": [finding_view(plan, f, "fail") for f in failures]}


def review_order(plan: Plan) -> list[Region]:
    """Regions in the order a person should look at them: by what veil knows
    of them (`explain.Group`), the most doubtful group first, and in each
    group the least sure first; regions drawn by hand last, in the order drawn."""
    return [region for _, members in explain.grouped(plan) for region in members]


def region_view(plan: Plan, region: Region, rank: int) -> dict[str, Any]:
    found = region.found
    view: dict[str, Any] = {
        "id": region.id,
        "kind": region.kind.value,
        "decision": region.decision.value,
        "shape": region.shape.value,
        "label": region.label,
        "reason": region.reason,
        "rank": rank,
        "score": round(found.score, 3) if found else None,
        "veil_decided": found.decision.value if found else None,
        "why": found.why if found else None,
        "found_by": list(found.found_by) if found else [],
        "said": explain.said(region),  # why it is there, in plain words
        "detail": explain.detail(region),  # the technical record, for a tooltip
        "group": explain.group(region).value,
        "unconfirmed": explain.unconfirmed(region),
    }
    if region.box is not None:
        view |= {"box": list(region.box), "outline": outline(plan, region.shape, region.box)}
    else:
        frames = [e.frame for e in region.track] or [k.frame for k in region.keyframes]
        view |= {
            "spans": spans(frames) if region.track else [[frames[0], frames[-1]]],
            "first": frames[0],
            "last": frames[-1],
            "set_frames": list(region.set_frames) or [k.frame for k in region.keyframes],
            "follows": "track" if region.track else "keyframes",
            "surest": surest_frame(region),  # the gallery shows it at this frame
            "count": frames_in(region),
        }
    return view


def frame_view(plan: Plan, frame: int) -> dict[str, Any]:
    """Every region present in `frame`, whatever its decision, with its box there."""
    regions = []
    for region in plan.regions:
        box = region.box_at(frame)
        if box is not None:
            regions.append(
                {
                    "id": region.id,
                    "decision": region.decision.value,
                    "box": [round(v, 1) for v in box],
                    "outline": outline(plan, region.shape, box),
                    "set": frame in region.set_frames or any(k.frame == frame for k in region.keyframes),
                }
            )
    return {"frame": frame, "regions": regions}


def outline(plan: Plan, shape: Shape, box: Box) -> dict[str, float]:
    """What the mask of `box` covers, as the renderer draws it."""
    if shape is Shape.BOX:
        x1, y1, x2, y2 = box
        return {"x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1}
    head = head_ellipses(
        Detections(np.array([box], np.float32), np.zeros(1, np.float32)), plan.mask.head_scale
    )[0]
    return {
        "cx": round(head.centre_x, 1),
        "cy": round(head.centre_y, 1),
        "rx": round(head.half_width, 1),
        "ry": round(head.half_height, 1),
    }


def finding_view(plan: Plan, finding: Finding, severity: str) -> dict[str, Any]:
    # the region the finding is about, by the verifier's own rule
    region = plan.region_under(finding.frame, finding.box) if finding.box else None
    return {
        "severity": severity,
        "check": finding.check.value,
        "message": finding.message,
        "frame": finding.frame,
        "box": list(finding.box) if finding.box else None,
        "region": region.id if region else None,
    }


def spans(frames: list[int]) -> list[list[int]]:
    """Runs of consecutive frames, as [first, last] pairs: the gaps show between them."""
    runs = []
    for _, group in itertools.groupby(enumerate(frames), key=lambda p: p[1] - p[0]):
        run = [f for _, f in group]
        runs.append([run[0], run[-1]])
    return runs
