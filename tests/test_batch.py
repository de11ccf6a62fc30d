"""Batches that stop and resume: killed at random moments (SIGKILL of the
whole process group, during writes too) and run again, a batch ends with the
outputs and report of an uninterrupted run, no temporary file, every file
done once; with worker processes too, one of them killed mid-batch. A
changed input is redone, a deleted one reported, `--restart` starts over,
and `veil status` says where a batch stands."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from batches import (
    kill_a_worker_mid_batch,
    kill_at_random,
    make_archive,
    same_batch,
    same_video,
    spawned_worker,
    veil,
)
from veil.batch.journal import JOURNAL_NAME, Journal, read_standing
from veil.batch.workers import FrameTally


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]) -> Path:
    return make_archive(tmp_path_factory.mktemp("archive"), astronaut)


def test_a_batch_killed_again_and_again_ends_as_if_never_stopped(archive: Path, tmp_path: Path) -> None:
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert veil(archive, ref).returncode == 0
    kills = kill_at_random(archive, out, random.Random(7), times=6)
    assert kills >= 2
    finished = veil(archive, out)
    assert finished.returncode == 0, finished.stderr
    same_batch(out, ref)  # photos byte for byte, the same reports and boxes
    same_video(out / "day2" / "walk.mp4", ref / "day2" / "walk.mp4")
    standing = read_standing(out / JOURNAL_NAME)
    assert (standing.done, standing.failed, standing.pending, standing.running) == (7, 0, 0, 0)


def test_worker_processes_resume_too_and_survive_a_killed_worker(archive: Path, tmp_path: Path) -> None:
    ref, out, hit = tmp_path / "ref", tmp_path / "out", tmp_path / "hit"
    assert veil(archive, ref, "--jobs", "2").returncode == 0
    assert kill_at_random(archive, out, random.Random(11), 2, "--jobs", "2") >= 1
    resumed = veil(archive, out, "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    same_batch(out, ref)

    # A fresh batch, one of its workers killed mid-batch: the pool is
    # started again, the files in flight redone.
    killed, returncode, said = kill_a_worker_mid_batch(archive, hit, spawned_worker, "--jobs", "2")
    assert killed
    assert returncode == 0, said
    same_batch(hit, ref)


def test_a_changed_input_is_redone_a_deleted_one_reported(
    tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    archive, out = tmp_path / "in", tmp_path / "out"
    archive.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(astronaut[:256, :256]).save(archive / name)
    assert veil(archive, out).returncode == 0
    done_before = {name: (out / name).stat().st_mtime_ns for name in ("a.png", "b.png")}

    again = veil(archive, out)  # nothing to do
    assert again.returncode == 0
    assert {name: (out / name).stat().st_mtime_ns for name in done_before} == done_before

    Image.fromarray(np.ascontiguousarray(astronaut[:256, 256:])).save(archive / "b.png")  # edited
    (archive / "c.png").unlink()
    changed = veil(archive, out)
    assert changed.returncode == 0, changed.stderr
    assert (out / "a.png").stat().st_mtime_ns == done_before["a.png"]
    assert (out / "b.png").stat().st_mtime_ns != done_before["b.png"]  # redone from the new input
    plan = json.loads((out / "b.png.plan.json").read_text())
    assert plan["source"]["width"] == 256 and (out / "b.png").exists()
    files = {Path(f["input"]).name: f for f in json.loads((out / "veil-report.json").read_text())["files"]}
    assert files["c.png"]["status"] == "skipped" and "gone" in files["c.png"]["error"]
    assert (out / "c.png").exists()  # its output stays

    (archive / "d.png").write_bytes((archive / "a.png").read_bytes())
    (out / "d.png").write_bytes(b"not veil's")  # a file this batch did not make
    restarted = veil(archive, out, "--restart")  # the batch's own outputs made again
    assert restarted.returncode == 1  # d.png: its output name was taken
    assert (out / "a.png").stat().st_mtime_ns != done_before["a.png"]
    assert (out / "d.png").read_bytes() == b"not veil's"
    files = {Path(f["input"]).name: f for f in json.loads((out / "veil-report.json").read_text())["files"]}
    assert files["a.png"]["status"] == files["b.png"]["status"] == "anonymized"
    assert "output exists" in files["d.png"]["error"]


def test_status_says_where_a_batch_stands_without_changing_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = [sys.executable, "-m", "veil", "status", str(out)]
    missing = subprocess.run(status, capture_output=True, text=True)
    assert missing.returncode == 1 and "no batch journal" in missing.stderr
    from veil.jobs import Job

    with Journal(out / JOURNAL_NAME) as journal:
        jobs = [Job(tmp_path / f"{n}.jpg", out / f"{n}.jpg") for n in range(3)]
        journal.plan(jobs)
        journal.start(jobs[0])
    before = (out / JOURNAL_NAME).read_bytes()
    shown = subprocess.run(status, capture_output=True, text=True)
    assert shown.returncode == 0
    assert "0 of 3 files done, 0 failed, 3 to do (1 in progress" in shown.stdout
    assert "incomplete" in shown.stdout
    assert (out / JOURNAL_NAME).read_bytes() == before


def test_frames_in_flight_are_summed_over_the_workers() -> None:
    tally = FrameTally()
    assert tally.update(101, 10, 100) == (10, 100)
    assert tally.update(202, 5, 50) == (15, 150)
    assert tally.update(101, 20, 100) == (25, 150)
    assert tally.update(101, 0, 0) == (5, 50)  # its video is done: it leaves the sum


def test_a_job_tried_again_in_the_same_run_has_its_landed_output_removed(tmp_path: Path) -> None:
    """A worker killed after its output landed but before it said so: the
    file's next try finds the output there. It is the batch's own (the name
    was free when the job began), so it goes; a file the batch did not make
    stays."""
    from veil.jobs import Job

    out = tmp_path / "out"
    out.mkdir()
    mine, theirs = Job(tmp_path / "a.jpg", out / "a.jpg", out), Job(tmp_path / "b.jpg", out / "b.jpg", out)
    (out / "b.jpg").write_bytes(b"not veil's")
    with Journal(out / JOURNAL_NAME) as journal:
        journal.plan([mine, theirs])
        journal.start(mine)
        journal.start(theirs)
        (out / "a.jpg").write_bytes(b"landed")
        (out / "a.jpg.plan.json").write_text("{}")
        journal.start(mine)  # its worker died: tried again
        journal.start(theirs)
    assert not (out / "a.jpg").exists() and not (out / "a.jpg.plan.json").exists()
    assert (out / "b.jpg").read_bytes() == b"not veil's"
