"""Batches that stop and resume: killed at random moments (SIGKILL of the
whole process group, during writes too) and run again, a batch ends with the
outputs and report of an uninterrupted run, no temporary file, every file
done once; with worker processes too, one of them killed mid-batch. A
changed input is redone, a deleted one reported, `--restart` starts over,
and `veil status` says where a batch stands."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from veil.batch.journal import JOURNAL_NAME, Journal, read_standing
from veil.batch.workers import FrameTally
from veil.errors import VeilError
from veil.media.video import VideoSource

from videos import make_clip

VEIL = [sys.executable, "-m", "veil", "anonymize"]
FAST = ["--no-verify", "-q"]  # resuming does not depend on verification; it halves the time


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]) -> Path:
    """Six photos in two folders and a short clip."""
    folder = tmp_path_factory.mktemp("archive")
    for index in range(6):
        sub = folder / ("day1" if index < 3 else "day2")
        sub.mkdir(exist_ok=True)
        crop = np.ascontiguousarray(np.roll(astronaut, 40 * index, axis=1)[:384, :384])
        Image.fromarray(crop).save(sub / f"p{index}.jpg", quality=90)
    make_clip(folder / "day2" / "walk.mp4", astronaut, frames=16)
    return folder


def veil(archive: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [*VEIL, str(archive), "-o", str(out), *FAST, *extra]
    return subprocess.run(command, capture_output=True, text=True)


def outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".jpg", ".mp4")
    }


def frames_and_times(path: Path) -> tuple[list[bytes], list[int]]:
    with VideoSource(path) as video:
        items = [m for m in video.iter_media() if not hasattr(m, "stream")]
    return [f.pixels.tobytes() for f in items], [f.pts for f in items]


def same_files(report: Path, reference: Path, out: Path, ref: Path) -> None:
    """The two reports list the same files with the same results, paths aside."""
    mine = json.loads(report.read_text())["files"]
    theirs = json.loads(reference.read_text())["files"]
    assert json.dumps(mine).replace(str(out), "OUT") == json.dumps(theirs).replace(str(ref), "OUT")


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".veil-*") if ".part" in p.name]


def done(out: Path) -> int:
    try:
        return read_standing(out / JOURNAL_NAME).done
    except VeilError:
        return 0


def kill_at_random(archive: Path, out: Path, rng: random.Random, times: int, *extra: str) -> int:
    """Start the batch and SIGKILL its process group at a random moment,
    `times` times; the kills made (a run that ends first is not killed).
    The moments are set by progress, not by the clock: while an output is
    being written, or once one or two more files are done, then a random
    fraction of a second later."""
    kills = 0
    for _ in range(times):
        writing = rng.random() < 0.5
        target = done(out) + rng.choice((1, 2))
        run = subprocess.Popen(
            [*VEIL, str(archive), "-o", str(out), *FAST, *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        while run.poll() is None:
            if temporary_files(out) if writing else done(out) >= target:
                time.sleep(rng.uniform(0.0, 0.4))
                os.killpg(run.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        run.wait()
    return kills


def test_a_batch_killed_again_and_again_ends_as_if_never_stopped(archive: Path, tmp_path: Path) -> None:
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert veil(archive, ref).returncode == 0
    kills = kill_at_random(archive, out, random.Random(7), times=6)
    assert kills >= 2
    finished = veil(archive, out)
    assert finished.returncode == 0, finished.stderr
    mine, theirs = outputs(out), outputs(ref)
    assert mine.keys() == theirs.keys()
    for name in mine:
        if name.endswith(".jpg"):
            assert mine[name] == theirs[name], name  # byte for byte
    assert frames_and_times(out / "day2" / "walk.mp4") == frames_and_times(ref / "day2" / "walk.mp4")
    same_files(out / "veil-report.json", ref / "veil-report.json", out, ref)
    assert temporary_files(out) == []
    standing = read_standing(out / JOURNAL_NAME)
    assert (standing.done, standing.failed, standing.pending, standing.running) == (7, 0, 0, 0)


def test_worker_processes_resume_too_and_survive_a_killed_worker(archive: Path, tmp_path: Path) -> None:
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert veil(archive, ref, "--jobs", "2").returncode == 0
    assert kill_at_random(archive, out, random.Random(11), 2, "--jobs", "2") >= 1
    run = subprocess.Popen(
        [*VEIL, str(archive), "-o", str(out), *FAST, "--jobs", "2"], stderr=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and run.poll() is None:
        workers = _descendants_running_veil(run.pid)
        time.sleep(0.2)
    if workers:
        time.sleep(2.0)  # into its first file
        os.kill(workers[0], signal.SIGKILL)
    _, said = run.communicate(timeout=300)
    assert run.returncode == 0, said
    assert outputs(out).keys() == outputs(ref).keys()
    for name, data in outputs(out).items():
        if name.endswith(".jpg"):
            assert data == outputs(ref)[name], name
    same_files(out / "veil-report.json", ref / "veil-report.json", out, ref)
    assert temporary_files(out) == []


def _descendants_running_veil(pid: int) -> list[int]:
    """The worker processes under `pid` (spawned Python processes)."""
    found = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in command and b"spawn_main" in command:
            found.append(child)
    return found


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
