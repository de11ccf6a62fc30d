"""CenterFace and RetinaFace on an NVIDIA GPU, through PyTorch.

Optional: `pip install 'veil[gpu]'` (PyTorch with CUDA; onnx, which reads
the graphs, comes with veil). Nothing here is imported unless a GPU is asked for or found. The
same sha256-checked ONNX files the CPU path runs are read with onnx and run
op by op by `OnnxGraph`, a small interpreter for the ops these two models
use, in half precision; frames are searched in batches, images are resized
on the GPU, and only the cells above threshold come back to the CPU.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veil.detection.detect import (
    RGBImage,
    check_image,
    decode_centerface_peaks,
    detection_passes,
)
from veil.detection.models import CENTERFACE, RETINAFACE, ModelSpec, verified_model_bytes
from veil.detection.retinaface import decode_retinaface
from veil.detections import Detections
from veil.options import DetectionOptions

# Inputs are padded to sides that are multiples of this: photos of many sizes
# then share a few shapes, and the GPU's per-shape set-up is paid a few times,
# not once per photo (CenterFace needs multiples of 32).
_BUCKET = 128
# cuDNN runs a stream of 1080p frames about 3x faster than PyTorch's own
# kernels (54 against 18 fps for anonymizing and verifying, on an H100) but
# spends 3 to 10 s setting up each new input shape, about 30 s for a clip's
# shapes: it pays from about 650 frames on, and is used from this many.
CUDNN_FROM_FRAMES = 1000
_MEAN_BGR = (104.0, 117.0, 123.0)  # RetinaFace's input normalisation
_NVIDIA_DRIVER = ("/dev/nvidiactl", "/proc/driver/nvidia")  # CUDA needs one of them on Linux


@cache
def cuda_available() -> bool:
    """Whether PyTorch and a CUDA device are there. Never imports torch when
    it is not installed (the CPU path stays free of it)."""
    if importlib.util.find_spec("torch") is None:
        return False
    if sys.platform == "linux" and not any(Path(p).exists() for p in _NVIDIA_DRIVER):
        return False  # no NVIDIA driver: spare the second it takes to import torch
    import torch

    return bool(torch.cuda.is_available())


class OnnxGraph:
    """An ONNX graph run node by node with torch functions; each value is
    freed after its last use."""

    def __init__(self, model: bytes, device: Any, dtype: Any) -> None:
        import onnx
        from onnx import numpy_helper

        graph = onnx.load_from_string(model).graph
        self.device, self.dtype = device, dtype
        # NHWC in memory: the layout the GPU's tensor cores take without copies.
        self.channels_last = device.type == "cuda"
        self.cudnn = False
        self.values: dict[str, Any] = {}
        for tensor in graph.initializer:
            self.values[tensor.name] = self._tensor(numpy_helper.to_array(tensor))
        self.input = next(i.name for i in graph.input if i.name not in self.values)
        self.nodes = []
        ops = _ops()
        for node in graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                self.values[node.output[0]] = self._tensor(numpy_helper.to_array(attrs["value"]))
                continue
            if node.op_type not in ops:
                raise NotImplementedError(f"ONNX op {node.op_type} is not supported on the GPU")
            self.nodes.append((ops[node.op_type], list(node.input), list(node.output), attrs))
        last_use: dict[str, int] = {}
        for index, (_, inputs, _, _) in enumerate(self.nodes):
            for name in inputs:
                last_use[name] = index
        self.free_after = [
            [n for n in inputs if last_use.get(n) == index and n not in self.values]
            for index, (_, inputs, _, _) in enumerate(self.nodes)
        ]

    def _tensor(self, array: npt.NDArray[Any]) -> Any:
        import torch

        tensor = torch.from_numpy(np.array(array))
        if not tensor.is_floating_point():
            return tensor  # shapes and indices stay on the CPU
        tensor = tensor.to(self.device, self.dtype)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def __call__(self, x: Any, outputs: Sequence[str]) -> list[Any]:
        import torch

        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        live: dict[str, Any] = {self.input: x}
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=self.cudnn):
            for (op, inputs, names, attrs), free in zip(self.nodes, self.free_after, strict=True):
                args = [live[n] if n in live else self.values.get(n) for n in inputs]
                result = op(args, attrs)
                results = result if isinstance(result, tuple) else (result,)
                live.update(zip(names, results, strict=False))
                for name in free:
                    if name not in outputs:
                        live.pop(name, None)
        return [live[name] for name in outputs]


def _conv(args: list[Any], attrs: dict[str, Any]) -> Any:
    import torch.nn.functional as F

    x, weight = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    if (top, left) != (bottom, right):
        x = F.pad(x, (left, right, top, bottom))
        top = left = 0
    strides, dilations = attrs.get("strides", 1), attrs.get("dilations", 1)
    return F.conv2d(x, weight, bias, strides, (top, left), dilations, attrs.get("group", 1))


def _conv_transpose(args: list[Any], attrs: dict[str, Any]) -> Any:
    import torch.nn.functional as F

    pads = attrs.get("pads", [0, 0, 0, 0])
    return F.conv_transpose2d(
        args[0],
        args[1],
        args[2] if len(args) > 2 else None,
        attrs.get("strides", 1),
        (pads[0], pads[1]),
        attrs.get("output_padding", 0),
        attrs.get("group", 1),
        attrs.get("dilations", 1),
    )


def _batch_norm(args: list[Any], attrs: dict[str, Any]) -> Any:
    import torch.nn.functional as F

    x, scale, bias, mean, var = args
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, attrs.get("epsilon", 1e-5))


def _reshape(args: list[Any], attrs: dict[str, Any]) -> Any:
    x, shape = args
    dims = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(shape.tolist())]
    return x.reshape(dims)


def _slice(args: list[Any], attrs: dict[str, Any]) -> Any:
    x, starts, ends = args[0], args[1].tolist(), args[2].tolist()
    axes = args[3].tolist() if len(args) > 3 and args[3] is not None else list(range(len(starts)))
    steps = args[4].tolist() if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        index[axis] = slice(start, min(end, x.shape[axis]), step)
    return x[tuple(index)]


def _resize(args: list[Any], attrs: dict[str, Any]) -> Any:
    import torch.nn.functional as F

    if attrs.get("mode", b"nearest") != b"nearest" or len(args) < 4 or args[3] is None:
        raise NotImplementedError("Resize: only nearest, to given sizes")
    return F.interpolate(args[0], size=[int(v) for v in args[3].tolist()[2:]], mode="nearest")


def _unsqueeze(args: list[Any], attrs: dict[str, Any]) -> Any:
    x = args[0]
    for axis in sorted(attrs["axes"]):
        x = x.unsqueeze(axis)
    return x


def _ops() -> dict[str, Callable[[list[Any], dict[str, Any]], Any]]:
    import torch
    import torch.nn.functional as F

    return {
        "Conv": _conv,
        "ConvTranspose": _conv_transpose,
        "BatchNormalization": _batch_norm,
        "Relu": lambda a, _: F.relu(a[0]),
        "LeakyRelu": lambda a, k: F.leaky_relu(a[0], k.get("alpha", 0.01)),
        "Sigmoid": lambda a, _: torch.sigmoid(a[0]),
        "Add": lambda a, _: a[0] + a[1],
        "Softmax": lambda a, k: torch.softmax(a[0], dim=k.get("axis", -1)),
        "Identity": lambda a, _: a[0],
        "Concat": lambda a, k: torch.cat(a, dim=k["axis"]),
        "Transpose": lambda a, k: a[0].permute(*k["perm"]),
        "Reshape": _reshape,
        "Shape": lambda a, _: torch.tensor(list(a[0].shape), dtype=torch.int64),
        "Gather": lambda a, k: torch.index_select(a[0], k.get("axis", 0), a[1].reshape(-1)).reshape(
            a[1].shape + a[0].shape[1:]
        ),
        "Unsqueeze": _unsqueeze,
        "Slice": _slice,
        "Cast": lambda a, _: a[0],
        "Resize": _resize,
    }


def _upload(images: Sequence[RGBImage], device: Any, dtype: Any) -> Any:
    """A batch of same-sized HxWx3 uint8 images as an Nx3xHxW tensor on `device`."""
    import torch

    batch = torch.from_numpy(np.stack(images)).to(device)
    return batch.permute(0, 3, 1, 2).to(dtype)


def _resized(batch: Any, scale: float) -> Any:
    import torch.nn.functional as F

    if scale == 1.0:
        return batch
    height, width = batch.shape[2:]
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    mode = "bilinear" if scale > 1 else "area"
    return F.interpolate(batch, size=size, mode=mode, align_corners=False if mode == "bilinear" else None)


def _padded(batch: Any) -> Any:
    import torch.nn.functional as F

    height, width = batch.shape[2:]
    return F.pad(batch, (0, -width % _BUCKET, 0, -height % _BUCKET))


def _device_and_dtype(device: str) -> tuple[Any, Any]:
    """Half precision on a GPU; single on the CPU (for checking the interpreter)."""
    import torch

    where = torch.device(device)
    return where, torch.float16 if where.type == "cuda" else torch.float32


class TorchCenterFace:
    """CenterFace on the GPU; every frame gets every pass (no video cadence)."""

    model: ModelSpec = CENTERFACE

    def __init__(self, options: DetectionOptions | None = None, batch: int = 8, device: str = "cuda") -> None:
        self.options = options or DetectionOptions()
        self.batch = batch
        self._device, self._dtype = _device_and_dtype(device)
        self._graph = OnnxGraph(verified_model_bytes(self.model), self._device, self._dtype)

    def expect_clip(self, frames: int) -> None:
        self._graph.cudnn = frames >= CUDNN_FROM_FRAMES

    def detect(self, image: RGBImage) -> Detections:
        return self.detect_frames([image], [0])[0]

    def detect_frames(self, images: Sequence[RGBImage], indices: Sequence[int]) -> list[Detections]:
        found: list[Detections] = []
        for start in range(0, len(images), self.batch):
            found.extend(self._detect_batch(images[start : start + self.batch]))
        return found

    def _detect_batch(self, images: Sequence[RGBImage]) -> list[Detections]:
        import torch

        for image in images:
            check_image(image)
        height, width = images[0].shape[:2]
        if any(image.shape[:2] != (height, width) for image in images):
            return [found for image in images for found in self._detect_batch([image])]
        batch = _upload(images, self._device, self._dtype)
        parts: list[list[Detections]] = [[] for _ in images]
        for search in detection_passes(width, height, self.options):
            resized = _resized(batch, search.scale)
            if search.mirrored:
                resized = torch.flip(resized, dims=[3])
            heatmap, log_size, offset = self._graph(_padded(resized), ["537", "538", "539"])
            hits = torch.nonzero(heatmap[:, 0] > self.options.threshold)
            n, rows, cols = hits[:, 0], hits[:, 1], hits[:, 2]
            picked = torch.cat(
                [heatmap[n, 0, rows, cols][:, None], log_size[n, :, rows, cols], offset[n, :, rows, cols]], 1
            )
            hits_np, picked_np = hits.cpu().numpy(), picked.float().cpu().numpy()
            for index in range(len(images)):
                mine = hits_np[:, 0] == index
                values = picked_np[mine]
                boxes = decode_centerface_peaks(
                    hits_np[mine, 1],
                    hits_np[mine, 2],
                    values[:, 0],
                    values[:, 1:3].T,
                    values[:, 3:5].T,
                ).scaled(1.0 / search.scale)
                parts[index].append(boxes.mirrored(width) if search.mirrored else boxes)
        return [Detections.concatenate(p).clipped(width, height).merged() for p in parts]


class TorchRetinaFace:
    """RetinaFace on the GPU, with the interface of `veil.detection.retinaface.RetinaFaceDetector`."""

    model: ModelSpec = RETINAFACE

    def __init__(self, threshold: float = 0.5, batch: int = 8, device: str = "cuda") -> None:
        import torch

        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold = threshold
        self.batch = batch
        self._device, self._dtype = _device_and_dtype(device)
        self._graph = OnnxGraph(verified_model_bytes(self.model), self._device, self._dtype)
        self._mean = torch.tensor(_MEAN_BGR, device=self._device, dtype=self._dtype).view(1, 3, 1, 1)

    def expect_clip(self, frames: int) -> None:
        self._graph.cudnn = frames >= CUDNN_FROM_FRAMES

    def detect(self, image: RGBImage, scale: float = 1.0) -> Detections:
        return self.detect_many([image], scale)[0]

    def detect_many(self, images: Sequence[RGBImage], scale: float = 1.0) -> list[Detections]:
        found: list[Detections] = []
        for start in range(0, len(images), self.batch):
            chunk = images[start : start + self.batch]
            if any(image.shape != chunk[0].shape for image in chunk):
                found.extend(self._detect_batch([image], scale)[0] for image in chunk)
            else:
                found.extend(self._detect_batch(chunk, scale))
        return found

    def _detect_batch(self, images: Sequence[RGBImage], scale: float) -> list[Detections]:
        import torch

        for image in images:
            check_image(image)
        height, width = images[0].shape[:2]
        batch = _resized(_upload(images, self._device, self._dtype), scale)
        blob = _padded(batch.flip(1) - self._mean)  # RGB to BGR, the training mean, then zeros
        inner_h, inner_w = blob.shape[2:]
        loc, conf = self._graph(blob, ["loc", "conf"])
        scores = conf[:, :, 1]
        hits = torch.nonzero(scores >= self.threshold)
        n, anchor = hits[:, 0], hits[:, 1]
        hits_np = hits.cpu().numpy()
        scores_np = scores[n, anchor].float().cpu().numpy()
        loc_np = loc[n, anchor].float().cpu().numpy()
        results = []
        for index in range(len(images)):
            mine = hits_np[:, 0] == index
            found = decode_retinaface(
                hits_np[mine, 1], loc_np[mine], scores_np[mine], inner_w, inner_h, self.threshold
            )
            results.append(found.scaled(1.0 / scale).clipped(width, height))
        return results
