"""`--ray` on a Ray of veil's own (two actors on this machine's two CPUs):
the batch comes out as a local run's, killed at random moments it resumes
the same, an actor killed mid-batch costs only a second try of its file,
and a stopped run's private Ray folder is removed by the next. That nothing
reaches beyond loopback is test_no_network.py's."""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from batches import (
    FAST,
    VEIL,
    kill_a_worker_mid_batch,
    kill_at_random,
    make_archive,
    ray_actor,
    same_batch,
    same_video,
    veil,
)
from veil.batch.journal import JOURNAL_NAME, read_standing

pytest.importorskip("ray", reason="veil[ray] is not installed")
RAY = ["--ray", "--jobs", "2"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]) -> Path:
    return make_archive(tmp_path_factory.mktemp("archive"), astronaut)


@pytest.fixture(scope="module")
def reference(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The batch done by one local process, uninterrupted."""
    ref = tmp_path_factory.mktemp("ref") / "out"
    assert veil(archive, ref).returncode == 0
    return ref


def test_a_ray_batch_stopped_again_and_again_ends_as_a_local_run(
    archive: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert kill_at_random(archive, out, random.Random(5), 2, *RAY) >= 1
    finished = veil(archive, out, *RAY)
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.strip().splitlines() == [
        "warning: --no-verify: outputs are not checked for faces left visible"
    ]  # Ray's own start-up lines are kept off the terminal
    same_batch(out, reference)
    same_video(out / "day2" / "walk.mp4", reference / "day2" / "walk.mp4")
    standing = read_standing(out / JOURNAL_NAME)
    assert (standing.done, standing.failed, standing.pending, standing.running) == (7, 0, 0, 0)
    assert _private_folders() == set()  # the killed runs' folders too


def test_an_actor_killed_mid_batch_costs_a_second_try(archive: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    killed, returncode, said = kill_a_worker_mid_batch(archive, out, ray_actor, *RAY)
    assert killed
    assert returncode == 0, said
    same_batch(out, reference)


def _private_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("veil-ray-*"))


def test_without_ray_installed_the_error_is_one_line(tmp_path: Path) -> None:
    """With Ray hidden from the import system, --ray says what to install."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('hidden by the test')\n")
    run = _one_photo(tmp_path, PYTHONPATH=str(blocker))
    assert run.returncode == 1
    assert "pip install 'veil[ray]'" in run.stderr and "Traceback" not in run.stderr


def test_without_a_private_network_a_local_ray_is_refused(tmp_path: Path) -> None:
    """No unshare to make the namespace with: one line, no output, no Ray."""
    run = _one_photo(tmp_path, PATH=str(tmp_path / "empty"))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == "veil: --ray: unshare (util-linux) is not installed"
    assert not (tmp_path / "out").exists()


def _one_photo(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`veil anonymize --ray` on one small photo, with `env` set."""
    from PIL import Image

    Image.new("RGB", (64, 64)).save(folder / "a.png")
    command = [*VEIL, str(folder / "a.png"), "-o", str(folder / "out"), *FAST, *RAY]
    return subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **env))


# A cluster of one node, started with `ray start` in a network namespace of
# the test's, and the batch sent to it by address; then the cluster stopped.
CLUSTER = r"""
import fcntl, os, socket, struct, subprocess, sys
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh22x", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
ray, temp, veil = sys.argv[1], sys.argv[2], sys.argv[3:]
start = [ray, "start", "--head", "--port=6390", "--node-ip-address=127.0.0.1", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
subprocess.run(start, check=True, capture_output=True)
try:
    done = subprocess.run([*veil, "--ray", "127.0.0.1:6390", "--jobs", "4"], capture_output=True, text=True)
    print(done.stderr, file=sys.stderr)
finally:
    subprocess.run([ray, "stop", "--force"], capture_output=True)
sys.exit(done.returncode)
"""


def test_a_batch_sent_to_a_cluster_by_address_ends_as_a_local_run(
    archive: Path, reference: Path, tmp_path: Path
) -> None:
    """A node of two CPUs: of the four workers asked for, the one that fits
    (an actor asks for up to four CPUs) does the batch."""
    import shutil
    import sys

    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no user namespaces here to hold the test's cluster")
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray is not None
    out, home = tmp_path / "out", tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), RAY_USAGE_STATS_ENABLED="0")
    command = [*VEIL, str(archive), "-o", str(out), *FAST]
    with tempfile.TemporaryDirectory(prefix="ray-") as temp:  # short: Ray's socket paths must fit
        run = subprocess.run(
            ["unshare", "-rn", sys.executable, "-c", CLUSTER, ray, temp, *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr
    same_batch(out, reference)
    same_video(out / "day2" / "walk.mp4", reference / "day2" / "walk.mp4")
