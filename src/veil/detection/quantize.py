"""A graph's convolutions in 8-bit integers, for onnxruntime on the CPU.

The finest search pass (the image at twice its size, for faces of 5-15 px)
is most of CenterFace's work. Run in int8 it takes about half the time; on
widerface-dev it found more faces under 16 px than in float but missed a few
larger ones, so it is an option (`DetectionOptions.int8_finest`), off by
default.

The int8 graph is made here, in memory, from the sha256-checked float graph
and a table of activation ranges that ships with veil
(`centerface_int8.json`, measured by scripts/calibrate_centerface.py on
images apart from the benchmark's). In ONNX's QDQ form: each quantized
tensor passes through QuantizeLinear and DequantizeLinear, each weight
through DequantizeLinear, and onnxruntime fuses the patterns into integer
kernels.

- Activations: unsigned 8-bit, one scale per tensor, over the measured range.
- Weights: signed, symmetric, one scale per output channel, in 7 bits
  (-63..63): on x86 processors without VNNI, onnxruntime multiplies uint8
  by int8 in pairs summed into 16 bits, which saturate with full 8-bit
  weights (measured on an AMD EPYC with AVX2: 3.7% mean error on the test
  graph instead of under 1%). Biases 32-bit at the product of the input's
  and the weight's scales.
- BatchNormalization is folded into the convolution before it, and a Relu
  straight after a convolution is dropped: quantizing its output over a
  range that starts at 0 clamps the same values.
- The heads (the convolutions whose outputs the graph returns, or that feed
  its Sigmoid) stay in float, so scores and box sizes keep their precision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

_QUANTIZED_OPS = ("Conv", "ConvTranspose", "Add")
_WEIGHTED_OPS = ("Conv", "ConvTranspose")
_WEIGHT_PEAK = 63  # 7-bit weights (module docstring)


@dataclass(frozen=True)
class Calibration:
    """Activation ranges of one float graph, by tensor name."""

    model_sha256: str
    ranges: dict[str, tuple[float, float]]

    @classmethod
    def bundled(cls, name: str) -> Calibration:
        data = json.loads(resources.files("veil").joinpath(name).read_text())
        ranges = {key: (float(low), float(high)) for key, (low, high) in data["ranges"].items()}
        return cls(data["model_sha256"], ranges)


def int8_graph(model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]]) -> onnx.ModelProto:
    """A copy of `model` (opset 13 or later) with its convolutions and sums
    in int8 (module docstring). The graph input is taken to hold 0..255."""
    quantized = onnx.ModelProto()
    quantized.CopyFrom(model)
    graph = quantized.graph
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    _fold_batch_norms(graph, weights)
    _drop_relus(graph)
    ranges = {**ranges, graph.input[0].name: (0.0, 255.0)}
    returned = {output.name for output in graph.output}
    returned |= {node.input[0] for node in graph.node if node.op_type == "Sigmoid"}
    chosen = [graph.input[0].name] + [
        node.output[0]
        for node in graph.node
        if node.op_type in _QUANTIZED_OPS and node.output[0] not in returned
    ]
    missing = [name for name in chosen if name not in ranges]
    if missing:
        raise ValueError(f"int8: no calibrated range for tensors {missing[:5]}")
    params = {name: _activation_params(*ranges[name]) for name in chosen}
    for node in graph.node:
        node.input[:] = [f"{name}_dq" if name in params else name for name in node.input]

    tensors: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    for name, (scale, zero) in params.items():
        tensors += [
            numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
            numpy_helper.from_array(np.array(zero, np.uint8), f"{name}_zero"),
        ]
    nodes += _quantize_dequantize(graph.input[0].name)
    for node in graph.node:
        output = node.output[0]
        if node.op_type in _WEIGHTED_OPS and output in params:
            input_scale = params[node.input[0].removesuffix("_dq")][0]
            extra_nodes, extra_tensors = _int8_weights(node, weights, input_scale)
            nodes += extra_nodes
            tensors += extra_tensors
        nodes.append(node)
        if output in params:
            nodes += _quantize_dequantize(output)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend([*kept, *tensors])
    onnx.checker.check_model(quantized)
    return quantized


def activation_ranges(
    model: onnx.ModelProto, batches: Iterable[npt.NDArray[np.float32]]
) -> dict[str, tuple[float, float]]:
    """The least and greatest value of every tensor that a node makes, over
    the inputs `batches` (NCHW float). For calibrating `int8_graph`."""
    from veil.detection.engine import Net

    names = [name for node in model.graph.node for name in node.output]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {output.name for output in probe.graph.output}
    probe.graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names if name not in known
    )
    net = Net(probe, names)
    low = dict.fromkeys(names, np.inf)
    high = dict.fromkeys(names, -np.inf)
    for batch in batches:
        for name, value in zip(names, net(batch), strict=True):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    return {name: (low[name], high[name]) for name in names}


def _quantize_dequantize(name: str) -> list[onnx.NodeProto]:
    args = [f"{name}_scale", f"{name}_zero"]
    return [
        helper.make_node("QuantizeLinear", [name, *args], [f"{name}_q"]),
        helper.make_node("DequantizeLinear", [f"{name}_q", *args], [f"{name}_dq"]),
    ]


def _activation_params(low: float, high: float) -> tuple[float, int]:
    """uint8 scale and zero point for values in [low, high]; 0 stays exact."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255 or 1.0
    return scale, int(np.clip(round(-low / scale), 0, 255))


def _int8_weights(
    node: onnx.NodeProto, weights: dict[str, npt.NDArray[np.float32]], input_scale: float
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Int8 weights (and an int32 bias) for `node`, and the DequantizeLinear
    nodes that give them back as floats; `node` is rewired to those."""
    if node.op_type == "ConvTranspose" and _attribute(node, "group", 1) != 1:
        raise ValueError("int8: grouped ConvTranspose is not supported")
    axis = 1 if node.op_type == "ConvTranspose" else 0  # the output-channel axis
    weight = weights[node.input[1]]
    peak = np.abs(np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)).max(axis=1)
    scale = np.where(peak > 0, peak / _WEIGHT_PEAK, 1.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q_weight = np.clip(np.round(weight / scale.reshape(shape)), -_WEIGHT_PEAK, _WEIGHT_PEAK).astype(np.int8)
    nodes, tensors = _dequantized(node, 1, q_weight, scale, axis)
    if len(node.input) > 2:
        bias_scale = (scale * np.float32(input_scale)).astype(np.float32)
        q_bias = np.round(weights[node.input[2]] / bias_scale).astype(np.int32)
        more_nodes, more_tensors = _dequantized(node, 2, q_bias, bias_scale, 0)
        nodes += more_nodes
        tensors += more_tensors
    return nodes, tensors


def _dequantized(
    node: onnx.NodeProto,
    index: int,
    values: npt.NDArray[np.integer],
    scale: npt.NDArray[np.float32],
    axis: int,
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    name = node.input[index]
    tensors = [
        numpy_helper.from_array(values, f"{name}_q"),
        numpy_helper.from_array(scale, f"{name}_scale"),
        numpy_helper.from_array(np.zeros(len(scale), values.dtype), f"{name}_zero"),
    ]
    args = [f"{name}_q", f"{name}_scale", f"{name}_zero"]
    node.input[index] = f"{name}_dq"
    return [helper.make_node("DequantizeLinear", args, [f"{name}_dq"], axis=axis)], tensors


def _fold_batch_norms(graph: onnx.GraphProto, weights: dict[str, npt.NDArray[np.float32]]) -> None:
    """Each BatchNormalization right after a Conv or ConvTranspose (its only
    consumer) becomes part of that convolution's weights and bias."""
    producers = {node.output[0]: node for node in graph.node}
    consumers = _consumers(graph)
    dropped = []
    for node in graph.node:
        if node.op_type != "BatchNormalization":
            continue
        conv = producers.get(node.input[0])
        if conv is None or conv.op_type not in _WEIGHTED_OPS or len(consumers[conv.output[0]]) != 1:
            continue
        gamma, beta, mean, var = (weights[name] for name in node.input[1:5])
        factor = gamma / np.sqrt(var + _attribute(node, "epsilon", 1e-5))
        axis = 1 if conv.op_type == "ConvTranspose" else 0
        shape = [1] * weights[conv.input[1]].ndim
        shape[axis] = -1
        weights[conv.input[1]] = (weights[conv.input[1]] * factor.reshape(shape)).astype(np.float32)
        bias = weights[conv.input[2]] if len(conv.input) > 2 else np.zeros_like(mean)
        bias_name = conv.input[2] if len(conv.input) > 2 else f"{conv.output[0]}_bias"
        weights[bias_name] = ((bias - mean) * factor + beta).astype(np.float32)
        conv.input[:] = [conv.input[0], conv.input[1], bias_name]
        conv.output[0] = node.output[0]
        dropped.append(node)
    for node in dropped:
        graph.node.remove(node)
    _replace_initializers(graph, weights)


def _drop_relus(graph: onnx.GraphProto) -> None:
    """A Relu that alone takes a convolution's output is dropped, the
    convolution writing the Relu's output instead (module docstring)."""
    producers = {node.output[0]: node for node in graph.node}
    consumers = _consumers(graph)
    dropped = []
    for node in graph.node:
        conv = producers.get(node.input[0]) if node.op_type == "Relu" else None
        if conv is not None and conv.op_type in _WEIGHTED_OPS and len(consumers[conv.output[0]]) == 1:
            conv.output[0] = node.output[0]
            dropped.append(node)
    for node in dropped:
        graph.node.remove(node)


def _replace_initializers(graph: onnx.GraphProto, weights: dict[str, npt.NDArray[np.float32]]) -> None:
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in weights.items())


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _attribute(node: onnx.NodeProto, name: str, default: float) -> float:
    for attribute in node.attribute:
        if attribute.name == name:
            return float(helper.get_attribute_value(attribute))
    return default
