"""Batches made in the tests, run, stopped and compared: shared by the tests
of `--jobs` (test_batch.py) and of `--ray` (test_ray.py)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from veil import VeilError
from veil.batch.journal import JOURNAL_NAME, read_standing
from veil.media.video import VideoSource

from videos import make_clip

VEIL = [sys.executable, "-m", "veil", "anonymize"]
FAST = ["--no-verify", "-q"]  # resuming does not depend on verification; it halves the time


def make_archive(folder: Path, astronaut: npt.NDArray[np.uint8]) -> Path:
    """Six photos in two folders and a short clip."""
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


def same_files(report: Path, reference: Path, out: Path, ref: Path, key: str | None = "files") -> None:
    """The two reports list the same files with the same results, paths
    aside (`key` None: the whole file, as the boxes sidecar)."""
    mine = json.loads(report.read_text())
    theirs = json.loads(reference.read_text())
    if key is not None:
        mine, theirs = mine[key], theirs[key]
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


def same_batch(out: Path, ref: Path) -> None:
    """`out` holds what the uninterrupted batch `ref` made: the same files,
    the photos byte for byte, the same report, no temporary file."""
    mine, theirs = outputs(out).keys(), outputs(ref).keys()
    assert mine == theirs, f"missing {sorted(theirs - mine)}, extra {sorted(mine - theirs)}"
    for name, data in outputs(out).items():
        if name.endswith(".jpg"):
            assert data == outputs(ref)[name], name
    same_files(out / "veil-report.json", ref / "veil-report.json", out, ref)
    same_files(out / "veil-report.boxes.json", ref / "veil-report.boxes.json", out, ref, key=None)
    assert temporary_files(out) == []


def same_video(path: Path, reference: Path) -> None:
    """The same frames, pixel for pixel, at the same times; or which differ."""
    (mine, mine_times), (theirs, their_times) = frames_and_times(path), frames_and_times(reference)
    assert mine_times == their_times, f"frame times: {mine_times} against {their_times}"
    differing = [index for index, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]
    assert not differing, f"frames {differing} of {len(theirs)} differ (the boxes are the same)"


def spawned_worker(command: bytes) -> bool:
    """A `--jobs` worker: a Python process multiprocessing spawned."""
    return b"multiprocessing" in command and b"spawn_main" in command


def ray_actor(command: bytes) -> bool:
    """A `--ray` worker: the actor process Ray names after veil's class."""
    return command.startswith(b"ray::VeilWorker")


def workers_under(pid: int, is_worker: Callable[[bytes], bool]) -> list[int]:
    """The processes below `pid`, at any depth, whose command line `is_worker`."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            queue.append(child)
            try:
                if is_worker(Path(f"/proc/{child}/cmdline").read_bytes()):
                    found.append(child)
            except OSError:
                continue
    return found


def kill_a_worker_mid_batch(
    archive: Path, out: Path, is_worker: Callable[[bytes], bool], *extra: str
) -> tuple[bool, int, str]:
    """Run the batch with two workers and SIGKILL one of them once a file is
    done (five or more still to do): whether it was killed, the run's exit
    status and what it printed."""
    run = subprocess.Popen(
        [*VEIL, str(archive), "-o", str(out), *FAST, *extra], stderr=subprocess.PIPE, text=True
    )
    killed = False
    while run.poll() is None and not killed:
        workers = workers_under(run.pid, is_worker)
        if len(workers) == 2 and done(out) >= 1:
            os.kill(workers[0], signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    _, said = run.communicate(timeout=300)
    return killed, run.returncode, said
