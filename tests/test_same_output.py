"""Same input, same output: a clip's output is a function of the clip and
the options, whatever else happens. A crowd clip (many small faces moving,
no sound, an odd frame count) anonymized again, with worker processes,
after the run was killed while writing it, rendered from its plan, and
applied from the review page comes out with the same bytes and, decoded,
the same frames every time.

The encoder is where it went wrong: x264 holding the rate cap on several
threads made other frames from one run to the next, though the boxes were
the same (`veil.media.encode`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from batches import FAST, VEIL, same_video, temporary_files, veil
from veil import Shape
from veil.cli import main
from veil.plan.edit import whole_clip
from veil.review.run import ReviewedRun

from videos import make_crowd

NAME = "crowd.mp4"


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]) -> Path:
    folder = tmp_path_factory.mktemp("crowd")
    make_crowd(folder / NAME, astronaut, frames=201)
    return folder


@pytest.fixture(scope="module")
def first(crowd: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip anonymized once, as the others are compared with."""
    out = tmp_path_factory.mktemp("first")
    done = veil(crowd, out)
    assert done.returncode == 0, done.stderr
    return out


def same_clip(path: Path, reference: Path) -> None:
    """The same frames at the same times, and the same bytes."""
    same_video(path, reference)
    assert path.read_bytes() == reference.read_bytes()


def test_a_clip_anonymized_again_or_by_workers_comes_out_the_same(
    crowd: Path, first: Path, tmp_path: Path
) -> None:
    again, workers = tmp_path / "again", tmp_path / "workers"
    assert veil(crowd, again).returncode == 0
    assert veil(crowd, workers, "--jobs", "2").returncode == 0
    for out in (again, workers):
        same_clip(out / NAME, first / NAME)
        assert (out / f"{NAME}.plan.json").read_bytes() == (first / f"{NAME}.plan.json").read_bytes()


def test_a_clip_killed_while_written_and_done_again_comes_out_the_same(
    crowd: Path, first: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = subprocess.Popen(
        [*VEIL, str(crowd), "-o", str(out), *FAST],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    killed = False
    while run.poll() is None:
        if temporary_files(out):  # the output is being written: frames are in the encoder
            os.killpg(run.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    run.wait()
    assert killed, "the run ended before it could be killed"
    assert not (out / NAME).exists()
    resumed = veil(crowd, out)
    assert resumed.returncode == 0, resumed.stderr
    same_clip(out / NAME, first / NAME)


def test_a_clip_rendered_from_its_plan_is_the_one_anonymize_wrote(
    crowd: Path, first: Path, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        output, report = tmp_path / name / NAME, tmp_path / f"{name}.json"
        plan = first / f"{NAME}.plan.json"
        args = ["render", crowd / NAME, plan, "-o", output, "--no-verify", "-q", "--report", report]
        assert main([str(arg) for arg in args]) == 0
        same_clip(tmp_path / name / NAME, first / NAME)


def test_an_apply_from_review_comes_out_the_same_every_time(first: Path, tmp_path: Path) -> None:
    """The same draft applied in two copies of the batch: the same clip, and
    one that is not the clip anonymize wrote (the sign is masked now)."""
    applied = []
    sign = (150.0, 200.0, 230.0, 240.0)  # a sign a person masked
    boxes = (first / "veil-report.boxes.json").read_bytes()
    for name in ("one", "two"):
        copy = shutil.copytree(first, tmp_path / name)
        batch = ReviewedRun(copy)
        (item,) = batch.items.values()
        batch.change(
            item, lambda plan: plan.drawn(keyframes=whole_clip(plan, sign), label="sign", shape=Shape.BOX)
        )
        report = batch.apply(item)
        assert report.verification is not None and report.verification.passed
        applied.append(copy / NAME)
        assert (copy / "veil-report.boxes.json").read_bytes() != boxes  # the sign's boxes, in the copy
    assert (first / "veil-report.boxes.json").read_bytes() == boxes
    same_clip(applied[1], applied[0])
    assert applied[0].read_bytes() != (first / NAME).read_bytes()
