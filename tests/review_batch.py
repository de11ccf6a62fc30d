"""Runs to review, made in the tests, and a review server on a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from veil.cli import main
from veil.review.run import ReviewedRun
from veil.review.server import Secrets, make_server

from conftest import ASTRONAUT_FACE
from videos import make_clip

WIDTH = 512  # of one astronaut
# A region veil did not draw in the real run: on the rocket's exhaust, where there is no face.
FALSE_BOX = (300.0, 330.0, 360.0, 400.0)


def face_at(column: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = ASTRONAUT_FACE
    return x1 + WIDTH * column, y1, x2 + WIDTH * column, y2


def run(*args: str | Path) -> int:
    return main([str(a) for a in args])


def three_faces_to_fix(root: Path, astronaut: npt.NDArray[np.uint8]) -> Path:
    """A rendered run whose plan needs a person: the astronaut three times,
    the third face not masked (as if veil had missed it) and a false region
    masked on the rocket. Returns the output folder; originals in root/in."""
    originals = root / "in"
    originals.mkdir(parents=True)
    Image.fromarray(np.hstack([astronaut] * 3)).save(originals / "three.png")
    assert run("anonymize", originals, "-o", root / "first", "-q", "--no-verify") == 0
    plan_file = root / "first" / "three.png.plan.json"
    plan: dict[str, Any] = json.loads(plan_file.read_text())
    regions = plan["regions"]
    regions.remove(max((r for r in regions if r["kind"] == "face"), key=lambda r: r["box"][0]))
    regions.append(
        {
            "id": "f9",
            "kind": "face",
            "decision": "mask",
            "shape": "ellipse",
            "box": list(FALSE_BOX),
            "found": {"score": 0.12, "decision": "mask", "why": "weak candidate among people"},
        }
    )
    plan_file.write_text(json.dumps(plan))
    run("render", originals, root / "first", "-o", root / "out", "-q")  # fails verification: face 3
    return root / "out"


# Where the track of `track_onto_a_face` starts: grey background, no face.
BOUQUET = (380.0, 280.0, 430.0, 315.0)


def track_onto_a_face(
    root: Path, astronaut: npt.NDArray[np.uint8], frames: int = 12
) -> tuple[Path, list[Any]]:
    """A rendered clip whose plan has a track (f1) that starts on the
    background, weakly, and from frame frames/2 on is the face, surely; the
    face's first half is masked by a second track (f2). It passes
    verification. Returns the output folder (originals in root/in) and the
    face's box in each frame."""
    originals = root / "in"
    originals.mkdir(parents=True)
    clip = make_clip(originals / "walk.mp4", astronaut, frames=frames)
    assert run("anonymize", originals, "-o", root / "first", "-q", "--no-verify") == 0
    plan_file = root / "first" / "walk.mp4.plan.json"
    plan: dict[str, Any] = json.loads(plan_file.read_text())
    half = frames // 2
    onto = [[f, *BOUQUET, 0.15] if f < half else [f, *clip.faces[f], 0.9] for f in range(frames)]
    face = [[f, *clip.faces[f], 0.6] for f in range(half)]
    found = {"decision": "mask", "why": None, "found_by": ["centerface x1"], "frames_filled": 0}
    plan["regions"] = [
        {
            "id": "f1",
            "kind": "face",
            "decision": "mask",
            "shape": "ellipse",
            "track": onto,
            "found": found | {"score": 0.9, "frames_detected": frames},
        },
        {
            "id": "f2",
            "kind": "face",
            "decision": "mask",
            "shape": "ellipse",
            "track": face,
            "found": found | {"score": 0.6, "frames_detected": half},
        },
    ]
    plan_file.write_text(json.dumps(plan))
    assert run("render", originals, root / "first", "-o", root / "out", "-q") == 0
    return root / "out", clip.faces


@contextmanager
def serving(outdir: Path) -> Iterator[tuple[Secrets, ReviewedRun]]:
    keys = Secrets()
    batch = ReviewedRun(outdir)
    server, sock = make_server(batch, keys)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review server did not start")
        time.sleep(0.02)
    try:
        yield keys, batch
    finally:
        server.should_exit = True
        thread.join(10)
