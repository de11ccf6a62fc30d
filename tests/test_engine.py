"""The CPU engine (onnxruntime) and the int8 graphs it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from veil.detection.detect import CENTERFACE_OUTPUTS, padded_blob
from veil.detection.engine import Net, fitted_graph
from veil.detection.models import CENTERFACE, verified_model_bytes
from veil.detection.quantize import activation_ranges, int8_graph

from conftest import unsilenced


def test_the_fitted_graph_computes_what_the_shipped_one_does(astronaut: npt.NDArray[np.uint8]) -> None:
    """OpenCV runs the graph as shipped; onnxruntime runs it fitted (free sizes, opset 13)."""
    blob = padded_blob(astronaut[:300, :250])
    shipped = cv2.dnn.readNetFromONNX(np.frombuffer(verified_model_bytes(CENTERFACE), np.uint8))
    shipped.setInput(blob)
    expected = shipped.forward(CENTERFACE_OUTPUTS)
    got = Net(fitted_graph(CENTERFACE), CENTERFACE_OUTPUTS)(blob)
    for a, b in zip(expected, got, strict=True):
        assert a.shape == b.shape
        assert np.allclose(a, b, atol=1e-3)


def test_onnxruntime_writes_nothing_to_disk(tmp_path: Path) -> None:
    """Without ORT_DISABLE_TELEMETRY set before its import, onnxruntime writes
    a device id and a usage database under the cache folder."""
    home = tmp_path / "home"
    home.mkdir()
    env = unsilenced({**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")})
    code = (
        "import numpy as np; from veil.detection.detect import CenterFaceDetector; "
        "CenterFaceDetector().detect(np.zeros((64, 64, 3), np.uint8))"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)
    assert list(home.rglob("*")) == []


def test_the_telemetry_check_can_fail_here(tmp_path: Path) -> None:
    """The environment of the checks above lets onnxruntime write when nothing
    silences it, on this machine and in CI (where CI=true alone would)."""
    home = tmp_path / "home"
    home.mkdir()
    env = unsilenced({**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "CI": "true"})
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True, cwd=tmp_path)
    assert [p.name for p in home.rglob("deviceid")] == ["deviceid"]


def _small_graph() -> onnx.ModelProto:
    """Conv+Relu, a linear Conv, a skip sum, ConvTranspose+BatchNorm+Relu, and a
    float head: the patterns CenterFace is made of."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    bn = [
        numpy_helper.from_array(v.astype(np.float32), n)
        for n, v in (
            ("gamma", rng.uniform(0.5, 1.5, 4)),
            ("beta", rng.standard_normal(4)),
            ("mean", rng.standard_normal(4)),
            ("var", rng.uniform(0.5, 2, 4)),
        )
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"]),
        helper.make_node("ConvTranspose", ["s", "wt"], ["t"], strides=[2, 2], kernel_shape=[2, 2]),
        helper.make_node("BatchNormalization", ["t", "gamma", "beta", "mean", "var"], ["n"]),
        helper.make_node("Relu", ["n"], ["r2"]),
        helper.make_node("Conv", ["r2", "wh"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, "h2", "w2"])],
        [
            weight("w1", 4, 3, 3, 3),
            weight("b1", 4),
            weight("w2", 4, 4, 3, 3),
            weight("b2", 4),
            weight("wt", 4, 4, 2, 2),
            weight("wh", 2, 4, 1, 1),
            *bn,
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _unfused(model: onnx.ModelProto, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The graph as written: every QuantizeLinear and DequantizeLinear run in
    float, no integer kernels."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    (y,) = session.run(["y"], {"x": x})
    return np.asarray(y, np.float32)


def test_int8_graph_follows_the_float_graph() -> None:
    model = _small_graph()
    rng = np.random.default_rng(1)
    inputs = [rng.uniform(0, 255, (1, 3, 16, 16)).astype(np.float32) for _ in range(8)]
    ranges = activation_ranges(model, inputs)
    quantized = int8_graph(model, ranges)
    ops = [node.op_type for node in quantized.graph.node]
    assert "QuantizeLinear" in ops
    assert "BatchNormalization" not in ops and "Relu" not in ops  # folded; clamped by quantization
    x = inputs[0]
    (expected,) = Net(model, ["y"])(x)
    (got,) = Net(quantized, ["y"])(x)
    # The integer kernels compute what the graph says on this processor too:
    # with 8-bit weights they saturate on x86 without VNNI.
    np.testing.assert_allclose(got, _unfused(quantized, x), rtol=0, atol=1e-3 * np.abs(expected).max())
    error = np.abs(got - expected)
    assert error.mean() < 0.03 * np.abs(expected).mean()
    assert error.max() < 0.05 * np.abs(expected).max()


def test_int8_graph_refuses_tensors_it_has_no_range_for() -> None:
    import pytest

    with pytest.raises(ValueError, match="no calibrated range"):
        int8_graph(_small_graph(), {})
