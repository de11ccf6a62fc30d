"""The CPU engine: the bundled ONNX graphs run by onnxruntime.

onnxruntime writes a device id and a usage database under the user's cache
folder when it is imported, unless ORT_DISABLE_TELEMETRY is set first; this
module sets it before its one import, and every use of onnxruntime in veil goes
through here.

The graphs are taken as their packages ship them (sha256-checked) and fitted
for the engine in memory: the input takes any batch and size, the weights
stop posing as graph inputs (which blocked constant folding), and the opset
is raised to 13, whose kernels onnxruntime fuses (Conv+BatchNorm+Relu).
On 2 cores CenterFace ran 1.3x to 1.5x faster this way than through OpenCV's
dnn (0.20 s against 0.29 s for a 1920x1088 input), with the same outputs to
3e-5.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from veil.detection.models import ModelSpec, verified_model_bytes

if TYPE_CHECKING:
    import onnx

_OPSET = 13
_ERRORS_ONLY = 3  # onnxruntime's log severity: its warnings about these graphs are noise


@cache
def fitted_graph(spec: ModelSpec) -> onnx.ModelProto:
    """The model's graph, checked and fitted for onnxruntime (module docstring).
    Callers must not change it: it is shared."""
    import onnx  # here, not at the top: it takes a second to import, and rendering needs none
    from onnx import version_converter

    model = onnx.load_from_string(verified_model_bytes(spec))
    graph = model.graph
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    used = {name for node in graph.node for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for dims in [
        graph.input[0].type.tensor_type.shape.dim,
        *(o.type.tensor_type.shape.dim for o in graph.output),
    ]:
        for index, dim in enumerate(dims):
            if index != 1:  # channels stay fixed; batch, height and width are free
                dim.dim_param = f"d{index}"
    model = version_converter.convert_version(model, _OPSET)
    onnx.checker.check_model(model)
    return model


def _onnxruntime() -> ModuleType:
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import onnxruntime

    module: ModuleType = onnxruntime
    return module


_threads: int | None = None  # set_threads(): a Ray worker's share of a machine it does not own


def set_threads(threads: int | None) -> None:
    """The intra-op threads of the sessions made from now on in this
    process (None: one per core it may run on)."""
    global _threads
    _threads = threads


class Net:
    """One inference session over a graph; safe to call from one thread at a time."""

    def __init__(self, model: onnx.ModelProto, outputs: Sequence[str], threads: int | None = None) -> None:
        """`threads`: intra-op threads (default: one per core this process may
        run on: a `--jobs` worker has its share). A session with
        one thread has no thread pool at all."""
        onnxruntime = _onnxruntime()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = _ERRORS_ONLY
        options.intra_op_num_threads = threads or _threads or len(os.sched_getaffinity(0)) or 1
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning, leaving the cores to the
        # decoding and encoding threads that run beside detection.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._outputs = list(outputs)

    def __call__(self, blob: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        results = self._session.run(self._outputs, {self._input: blob})
        return [np.asarray(result, np.float32) for result in results]
