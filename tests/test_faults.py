"""Failing disks and hostile output folders: a full disk, a read-only
folder, links planted in the output tree (before and during a write), two
runs into one folder, and a run killed mid-write. Each fault costs only the
files it touches, one line each; nothing partial is left and nothing outside
the output folder changes."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from veil import CorruptInputError, FileStatus, OutputError, OutputExistsError, anonymize_file
from veil.batch.journal import JOURNAL_NAME
from veil.cli import main
from veil.media.files import TEMPORARY_NAME, atomic_output, output_root, publish_bytes, sweep_beside
from veil.plan.files import plan_path

from videos import make_clip

VEIL = [sys.executable, "-m", "veil", "anonymize"]


@functools.cache
def _namespace_refusal() -> str | None:
    """Why `unshare -rm` with a tmpfs mount cannot be used here (None: it can)."""
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = (
        'd=$(mktemp -d) && mount -t tmpfs -o size=16k none "$d" && umount "$d"; rc=$?; rmdir "$d"; exit $rc'
    )
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", probe], capture_output=True, text=True, check=False
    )
    return None if result.returncode == 0 else f"user+mount namespaces refused: {result.stderr.strip()}"


@pytest.fixture
def namespace() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a shell script as root of a new user and mount namespace; its
    arguments are $1, $2, ... and the Python running the tests is $PY."""
    refusal = _namespace_refusal()
    if refusal:
        pytest.skip(refusal)

    def run(script: str, *args: Path) -> subprocess.CompletedProcess[str]:
        command = ["unshare", "-rm", "sh", "-c", script, "sh", *map(str, args)]
        env = os.environ | {"PY": sys.executable}
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120, env=env)

    return run


def photo(path: Path, astronaut: npt.NDArray[np.uint8], side: int) -> Path:
    """The astronaut at `side` x `side` pixels; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(astronaut).resize((side, side)).save(path)
    return path


def tree(folder: Path) -> dict[str, str]:
    """Every entry under `folder`: files by sha256, links by target, folders."""
    found = {}
    for base, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(base) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                found[key] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def partials(folder: Path) -> list[str]:
    return [name for name in tree(folder) if Path(name).name.startswith(".veil-") and ".part" in name]


def error_lines(stderr: str, source: Path) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"error: {source}:")]


def one_error(stderr: str, source: Path, why: str) -> None:
    lines = error_lines(stderr, source)
    assert len(lines) == 1, stderr
    assert why in lines[0], lines[0]


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def complete_photo(path: Path) -> bool:
    with Image.open(path) as image:
        image.load()
    return True


def test_disk_full_costs_only_the_video_that_does_not_fit(
    namespace: Callable[..., subprocess.CompletedProcess[str]],
    astronaut: npt.NDArray[np.uint8],
    tmp_path: Path,
) -> None:
    inputs, out, seen = tmp_path / "in", tmp_path / "out", tmp_path / "seen"
    photo(inputs / "a.jpg", astronaut, 128)  # about 5 kB out, and its plan
    clip = make_clip(inputs / "b.mp4", astronaut, frames=24).path  # about 50 kB out: never fits
    photo(inputs / "c.jpg", astronaut, 128)
    out.mkdir()
    seen.mkdir()
    before = tree(inputs)
    script = (
        'mount -t tmpfs -o size=40k none "$2" || exit 90\n'
        '"$PY" -m veil anonymize "$1" -o "$2" --no-verify -q; rc=$?\n'
        'cp -a "$2"/. "$3"/\n'
        "exit $rc"
    )
    result = namespace(script, inputs, out, seen)
    assert result.returncode == 1, result.stderr
    one_error(result.stderr, clip, f"cannot write {out / 'b.mp4'}: No space left on device")
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert "Traceback" not in result.stderr
    assert complete_photo(seen / "a.jpg") and complete_photo(seen / "c.jpg")
    report = json.loads((seen / "veil-report.json").read_text())
    assert [f["status"] for f in report["files"]] == ["anonymized", "failed", "anonymized"]
    assert sorted(n for n in os.listdir(seen) if n != JOURNAL_NAME) == [  # the journal, if it fitted
        "a.jpg",
        "a.jpg.plan.json",
        "c.jpg",
        "c.jpg.plan.json",
        "veil-report.json",
    ]
    assert tree(inputs) == before
    assert tree(out) == {}  # the tmpfs went with its namespace: nothing was written beneath it
    assert sorted(os.listdir(tmp_path)) == ["in", "out", "seen"]


def test_a_full_disk_fails_every_file_and_the_report_loudly(
    namespace: Callable[..., subprocess.CompletedProcess[str]],
    astronaut: npt.NDArray[np.uint8],
    tmp_path: Path,
) -> None:
    inputs, out, seen = tmp_path / "in", tmp_path / "out", tmp_path / "seen"
    sources = [photo(inputs / "a.jpg", astronaut, 128), make_clip(inputs / "b.mp4", astronaut, frames=6).path]
    out.mkdir()
    seen.mkdir()
    script = (
        'mount -t tmpfs -o size=16k none "$2" || exit 90\n'
        'dd if=/dev/zero of="$2/filler" bs=4k 2>/dev/null\n'
        '"$PY" -m veil anonymize "$1" -o "$2" --no-verify -q; rc=$?\n'
        'cp -a "$2"/. "$3"/\n'
        "exit $rc"
    )
    result = namespace(script, inputs, out, seen)
    assert result.returncode == 1, result.stderr
    for source in sources:
        one_error(result.stderr, source, "No space left on device")
    report_line = [line for line in result.stderr.splitlines() if line.startswith("veil: report not written")]
    assert report_line and "No space left on device" in report_line[0], result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(seen) == ["filler"] and (seen / "filler").stat().st_size == 16384


def test_read_only_output_folder_fails_every_file_with_one_line(
    namespace: Callable[..., subprocess.CompletedProcess[str]],
    astronaut: npt.NDArray[np.uint8],
    tmp_path: Path,
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    sources = [
        photo(inputs / "a.jpg", astronaut, 128),
        make_clip(inputs / "b.mp4", astronaut, frames=6).path,
        photo(inputs / "sub" / "c.jpg", astronaut, 128),  # its folder cannot be made either
    ]
    out.mkdir()
    before = tree(inputs)
    script = (
        'mount --bind "$2" "$2" && mount -o remount,ro,bind "$2" || exit 90\n'
        'exec "$PY" -m veil anonymize "$1" -o "$2" --no-verify -q'
    )
    result = namespace(script, inputs, out)
    assert result.returncode == 1, result.stderr
    for source in sources:
        one_error(result.stderr, source, "Read-only file system")
    assert "veil: report not written" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree(out) == {} and tree(inputs) == before


def test_links_planted_in_the_output_tree_are_never_written_through(
    astronaut: npt.NDArray[np.uint8], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, real, elsewhere = tmp_path / "in", tmp_path / "real", tmp_path / "elsewhere"
    planted_over = photo(inputs / "a.jpg", astronaut, 96)
    photo(inputs / "b.jpg", astronaut, 96)
    into_link = photo(inputs / "sub" / "c.jpg", astronaut, 96)
    secret = photo(elsewhere / "secret.jpg", astronaut, 64)
    real.mkdir()
    (real / "a.jpg").symlink_to(secret)  # (a) the output's own name is a link
    (real / "sub").symlink_to(elsewhere, target_is_directory=True)  # (b) a folder in the tree is one
    out = tmp_path / "out"
    out.symlink_to(real, target_is_directory=True)  # the -o the user named may be a link
    outside = tree(elsewhere)

    assert main(["anonymize", str(inputs), "-o", str(out), "--no-verify", "-q"]) == 1
    stderr = capsys.readouterr().err
    one_error(stderr, planted_over, "output exists, not overwriting")
    one_error(stderr, into_link, f"refusing to write through a symbolic link: {out / 'sub'}")
    assert complete_photo(real / "b.jpg") and (real / "b.jpg.plan.json").is_file()
    assert (real / "a.jpg").is_symlink() and (real / "sub").is_symlink()
    assert tree(elsewhere) == outside
    assert json.loads((real / "veil-report.json").read_text())["files"][1]["status"] == "anonymized"
    assert partials(real) == []


@pytest.fixture
def held_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """An output root with a folder `sub` in it, and a folder outside holding a file."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "victim.jpg").write_bytes(b"not veil's")
    with output_root(root):
        yield root, elsewhere


def temporary_in(folder: Path) -> Path:
    (name,) = [n for n in os.listdir(folder) if TEMPORARY_NAME.fullmatch(n)]
    return folder / name


def test_race_output_name_made_a_link_during_the_write(held_folder: tuple[Path, Path]) -> None:
    root, elsewhere = held_folder
    target = root / "sub" / "x.jpg"
    with pytest.raises(OutputExistsError, match="output exists"), atomic_output(target) as handle:
        handle.write(b"masked")
        target.symlink_to(elsewhere / "victim.jpg")
    assert (elsewhere / "victim.jpg").read_bytes() == b"not veil's"
    assert partials(root) == []


def test_race_temporary_name_made_a_link_during_the_write(held_folder: tuple[Path, Path]) -> None:
    root, elsewhere = held_folder
    target = root / "sub" / "x.jpg"
    with pytest.raises(OutputError, match="temporary file was replaced"), atomic_output(target) as handle:
        temporary = temporary_in(root / "sub")
        temporary.unlink()
        temporary.symlink_to(elsewhere / "victim.jpg")
        handle.write(b"masked")
    assert (elsewhere / "victim.jpg").read_bytes() == b"not veil's"
    assert not target.exists() and not target.is_symlink()
    assert temporary.is_symlink()  # not veil's file: left where it was planted


def test_race_folder_swapped_for_a_link_after_it_was_opened(held_folder: tuple[Path, Path]) -> None:
    root, elsewhere = held_folder
    with atomic_output(root / "sub" / "x.jpg") as handle:
        (root / "sub").rename(root / "moved")
        (root / "sub").symlink_to(elsewhere, target_is_directory=True)
        handle.write(b"masked")
    assert (root / "moved" / "x.jpg").read_bytes() == b"masked"  # landed in the folder veil held
    assert sorted(os.listdir(elsewhere)) == ["victim.jpg"]
    assert partials(root) == []


def test_a_replaced_report_swaps_out_a_planted_link_without_writing_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    report = tmp_path / "out" / "veil-report.json"
    report.parent.mkdir()
    report.symlink_to(victim)
    publish_bytes(report, b'{"files": []}', replace=True)
    assert not report.is_symlink() and report.read_bytes() == b'{"files": []}'
    assert victim.read_text() == "{}"


def test_two_runs_into_one_folder_write_each_output_once(
    astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    sources = [photo(inputs / "a.jpg", astronaut, 160), photo(inputs / "b.png", astronaut, 160)]
    sources.append(make_clip(inputs / "c.mp4", astronaut, frames=12).path)
    command = [*VEIL, str(inputs), "-o", str(out), "--no-verify", "-q"]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=120), run.communicate()[1]) for run in runs]

    lost = [{s for s in sources if error_lines(stderr, s)} for _, stderr in results]
    for (code, stderr), failed in zip(results, lost, strict=True):
        assert "Traceback" not in stderr
        assert code == (1 if failed else 0), stderr
        for source in failed:
            one_error(stderr, source, "output exists, not overwriting")
    # One winner per file. The second run works without the batch journal
    # (the first holds it), so it loses each file the first wrote; were it to
    # start only after the first had ended, it would find every file done.
    assert not lost[0] & lost[1]
    assert lost[0] | lost[1] in (set(sources), set())
    assert complete_photo(out / "a.jpg") and complete_photo(out / "b.png")
    assert frame_count(out / "c.mp4") == 12
    for source in sources:
        json.loads((out / f"{source.name}.plan.json").read_text())
    report = json.loads((out / "veil-report.json").read_text())  # the last run's, whole
    statuses = {Path(f["input"]).name: f["status"] for f in report["files"]}
    assert statuses in [
        {s.name: "failed" if s in failed else "anonymized" for s in sources} for failed in [*lost, set()]
    ]
    assert partials(out) == []


def test_a_run_killed_mid_write_leaves_no_output_and_the_next_one_cleans_up(
    astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    clip = make_clip(tmp_path / "in" / "long.mp4", astronaut, frames=60).path
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / ".veil-notes.part.txt").write_text("not veil's pattern")
    live = out / ".veil-0123456789abcdef.part.mp4"  # a writer still at work holds its lock
    live.write_bytes(b"in progress")
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    planted = set(os.listdir(out))
    command = [*VEIL, str(clip), "-o", str(out), "--no-verify", "-q"]
    try:
        killed = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        leftover: list[str] = []
        while not leftover and killed.poll() is None and time.monotonic() < deadline:
            leftover = [n for n in os.listdir(out) if n not in planted and TEMPORARY_NAME.fullmatch(n)]
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert leftover, "the run ended before its temporary output was seen"
        assert killed.returncode == -signal.SIGKILL
        assert (out / leftover[0]).is_file()  # a killed process cannot clean up after itself
        assert not (out / "long.mp4").exists()

        again = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        assert again.returncode == 0, again.stderr
        assert frame_count(out / "long.mp4") == 60
        assert sorted(os.listdir(out)) == sorted(
            planted
            | {"long.mp4", "long.mp4.plan.json", "veil-report.json", "veil-report.boxes.json", JOURNAL_NAME}
        )
        assert live.read_bytes() == b"in progress"
        assert (out / ".veil-notes.part.txt").read_text() == "not veil's pattern"
    finally:
        os.close(held)


def test_a_dead_workers_temporary_file_is_swept_though_the_folder_was_swept(
    held_folder: tuple[Path, Path],
) -> None:
    """A pool whose worker died writing an output sweeps its folder again:
    this process swept it at its first write there, and under --ray no
    fresh process may ever write there again. A live writer's file stays."""
    root, _ = held_folder
    publish_bytes(root / "sub" / "first.jpg", b"masked")  # the folder is swept once here
    dead = root / "sub" / ".veil-00000000000000aa.part.jpg"
    dead.write_bytes(b"half a photo")
    live = root / "sub" / ".veil-00000000000000bb.part.jpg"
    live.write_bytes(b"in progress")
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        publish_bytes(root / "sub" / "second.jpg", b"masked")
        assert dead.exists()  # once per folder and process
        sweep_beside(root / "sub" / "lost.jpg")
        assert not dead.exists()
        assert live.read_bytes() == b"in progress"
    finally:
        os.close(held)
    sweep_beside(root / "missing" / "lost.jpg")  # no folder: nothing to do, no error


def test_an_output_that_cannot_be_verified_is_not_left(
    astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    # The fuzzer found a damaged clip that FFmpeg decoded whole once and
    # refused the next time: verification, reading the original again, failed
    # after the output had landed. Such an output must go.
    source = photo(tmp_path / "in" / "a.jpg", astronaut, 160)

    class Unverifiable:
        def verify(self, *args: object, **kwargs: object) -> None:
            raise CorruptInputError("damaged video data at frame 0")

    target = tmp_path / "out" / "a.jpg"
    report = anonymize_file(source, target, verifier=Unverifiable())  # type: ignore[arg-type]
    assert report.status is FileStatus.FAILED and report.error == "damaged video data at frame 0"
    assert not target.exists() and not plan_path(target).exists()
    assert partials(tmp_path / "out") == []


def test_a_killed_runs_private_folder_is_swept_by_the_next_run() -> None:
    """The private folders in the temporary folder (a local Ray's, a clip's
    parts): one that no run holds (its run was killed) goes when another of
    its kind is made; one a run holds stays."""
    import tempfile

    from veil.media.private import PrivateFolder

    held = PrivateFolder("veil-test-private-")
    stale = Path(tempfile.mkdtemp(prefix="veil-test-private-"))
    (stale / "in-use").touch()  # its lock file, not held: the run that made it is gone
    (stale / "part0000.mp4").write_bytes(b"left by a kill -9")
    fresh = PrivateFolder("veil-test-private-")
    try:
        assert not stale.exists()
        assert held.path.is_dir() and fresh.path.is_dir()
    finally:
        held.remove()
        fresh.remove()
    assert not held.path.exists() and not fresh.path.exists()
