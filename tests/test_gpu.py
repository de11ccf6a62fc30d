"""The GPU path (veil[gpu]): the same models, the same answers.

The interpreter is checked against OpenCV wherever PyTorch is
installed (on the CPU too); the detectors and a whole video run need an
NVIDIA GPU and are skipped without one. CI has neither: there, what is
checked is that asking for a GPU that is not there is a clear error.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from veil import CenterFaceDetector
from veil.cli import main
from veil.detection.gpu import cuda_available
from veil.detection.models import CENTERFACE, RETINAFACE, verified_model_bytes
from veil.detection.retinaface import RetinaFaceDetector

from conftest import ASTRONAUT_FACE

has_torch = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not has_torch, reason="PyTorch is not installed (veil[gpu])")
needs_cuda = pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU")


def _opencv_outputs(model: bytes, blob: npt.NDArray[np.float32], names: list[str]) -> list[np.ndarray]:
    net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
    net.setInput(blob)
    return list(net.forward(names))


@needs_torch
@pytest.mark.parametrize(
    ("spec", "names"),
    [(CENTERFACE, ["537", "538", "539", "540"]), (RETINAFACE, ["loc", "conf", "landmarks"])],
)
def test_interpreter_matches_opencv(spec, names, astronaut: npt.NDArray[np.uint8]) -> None:  # type: ignore[no-untyped-def]
    import torch

    from veil.detection.gpu import OnnxGraph

    blob = np.ascontiguousarray(astronaut[:256, :320].transpose(2, 0, 1)[None].astype(np.float32))
    model = verified_model_bytes(spec)
    graph = OnnxGraph(model, torch.device("cpu"), torch.float32)
    ours = [t.numpy() for t in graph(torch.from_numpy(blob), names)]
    for mine, reference in zip(ours, _opencv_outputs(model, blob, names), strict=True):
        assert mine.shape == reference.shape
        assert np.allclose(mine, reference, atol=2e-3), float(np.abs(mine - reference).max())


@needs_cuda
def test_gpu_detectors_find_what_the_cpu_finds(astronaut: npt.NDArray[np.uint8]) -> None:
    from veil.detection.gpu import TorchCenterFace, TorchRetinaFace

    small = cv2.resize(astronaut, (58, 58), interpolation=cv2.INTER_AREA)
    grid = np.ascontiguousarray(np.tile(small, (4, 6, 1)))
    for image in (astronaut, grid):
        cpu, gpu = CenterFaceDetector().detect(image), TorchCenterFace().detect(image)
        assert abs(len(cpu) - len(gpu)) <= max(1, len(cpu) // 20)
        matched = 0
        for box, score in zip(cpu.boxes, cpu.scores, strict=True):
            distance = np.abs(gpu.boxes - box).max(axis=1)
            nearest = int(np.argmin(distance))
            matched += bool(distance[nearest] < 3 and abs(gpu.scores[nearest] - score) < 0.05)
        assert matched >= 0.9 * len(cpu), f"{matched} of {len(cpu)} boxes found alike"
    cpu_r, gpu_r = RetinaFaceDetector(0.5).detect(astronaut), TorchRetinaFace(0.5).detect(astronaut)
    assert len(cpu_r) == len(gpu_r) == 1
    assert np.allclose(gpu_r.boxes[0], cpu_r.boxes[0], atol=3)
    assert np.allclose(TorchCenterFace().detect(astronaut).boxes[0], ASTRONAUT_FACE, atol=6)


@needs_cuda
def test_gpu_batches_give_each_frame_its_own_faces(astronaut: npt.NDArray[np.uint8]) -> None:
    from veil.detection.gpu import TorchCenterFace

    blank = np.zeros_like(astronaut)
    found = TorchCenterFace(batch=3).detect_frames([astronaut, blank, astronaut, blank], [0, 1, 2, 3])
    assert [len(f) for f in found] == [1, 0, 1, 0]


@pytest.mark.skipif(cuda_available(), reason="a GPU is here")
def test_asking_for_a_missing_gpu_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], astronaut: npt.NDArray[np.uint8]
) -> None:
    from PIL import Image

    photo = tmp_path / "a.png"
    Image.fromarray(astronaut).save(photo)
    assert main(["anonymize", str(photo), "--device", "cuda", "-q"]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "a.veil.png").exists()


@needs_cuda
def test_a_clip_on_the_gpu_is_masked_and_verified(astronaut: npt.NDArray[np.uint8], tmp_path: Path) -> None:
    import json

    from test_video import masked_share

    from videos import make_clip, read_clip

    source = tmp_path / "march.mp4"
    clip = make_clip(source, astronaut, frames=20)
    out = tmp_path / "out"
    assert main(["anonymize", str(source), "-o", str(out), "-q", "--device", "cuda"]) == 0
    frames, _, container = read_clip(out / "march.mp4")
    container.close()
    for index, (frame, face) in enumerate(zip(frames, clip.faces, strict=True)):
        assert masked_share(frame, face) > 0.9, f"frame {index} leaks the face"
    report = json.loads((out / "veil-report.json").read_text())
    assert report["files"][0]["verification"]["frames_checked"] == 20
