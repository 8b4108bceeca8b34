"""Int8 storage for the hyper functions' fully-connected weights in a flatbuffer.

LCE's converter keeps FULLY_CONNECTED weights in float32, and the hyper functions of a
DyBNN model hold most of its float weights (about 2 M at r=16 in ReActNet-A, more than
the binary convs). This module stores those kernels in int8 with a symmetric scale per
tensor (as TFLite's own dynamic-range quantization does for fully-connected layers) or
per output channel, followed by a DEQUANTIZE op that restores float32 weights. TFLite
dequantizes a constant once, when the interpreter prepares the graph, so the FC ops stay
float32 ops and run as fast as before, and the file computes exactly what the Keras
model computes with its hyper kernels rounded to the same int8 grid
(`round_hyper_weights`). Other FULLY_CONNECTED ops (e.g. the classifier) stay float.

Why not TFLite's "hybrid" FULLY_CONNECTED (int8 weights fed to the FC op itself)? It
also quantizes the FC's *input* to int8 on the fly, at every call. Measured on the
shipped CIFAR-10 DyBNN ReActNet-18 (1,000 test images), rounding the weights alone
changes the top-1 class of 7.9% of the images against the float model, and the hybrid
op's input rounding changes another 8.4% (agreement with the rounded Keras model
91.6%), so no Keras model reproduces a hybrid file; its latency on x86 was also
erratic (1.03x and 1.68x of the float file in two runs).

Per-channel scales cost 12 bytes per output channel (a float32 scale and an int64
zero point); in ReActNet-A at r=64 that is 0.4 MB, as much as a third of the int8
kernels themselves, so per-tensor is the default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from larq_dybnn.converter.export import check_model
from larq_dybnn.converter.flatbuffer import layer_of
from larq_dybnn.scan import dynamic_layers

__all__ = ["Int8Weights", "hyper_layers", "quantize_hyper_weights", "round_hyper_weights"]


@dataclass(frozen=True)
class Int8Weights:
    """What `quantize_hyper_weights` changed.

    Attributes:
        tensors: weight tensors rewritten to int8.
        float32_bytes: their size before.
        int8_bytes: their size after (scales and zero points included).
        max_relative_error: largest |w - dequantized w| / max|w| over the weights
            sharing a scale (at most 1/254 for round-to-nearest).
    """

    tensors: int
    float32_bytes: int
    int8_bytes: int
    max_relative_error: float

    def as_dict(self) -> dict:
        """The fields as a JSON-serializable dict."""
        return asdict(self)


def hyper_layers(model: tf.keras.Model) -> set[str]:
    """Names of the layers of `model` (nested models included) whose hyper function
    is on: QuantConv2D/QuantDense layers with a dynamic `DynamicSign` input quantizer
    and dynamic `DynamicPReLU` layers (`larq_dybnn.scan.dynamic_layers`)."""
    found = dynamic_layers(model)
    return found.sign_names | found.prelu_names


def _quantize(weights: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Symmetric int8 of a (out, in) FC kernel, per tensor or per output channel.

    Returns the int8 kernel, the scales, and the largest error relative to the
    largest |weight| of the scale's group.
    """
    if per_channel:
        peak = np.abs(weights).max(axis=1)
    else:
        peak = np.abs(weights).max(keepdims=True).reshape(1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    expanded = scale[:, None] if per_channel else scale[0]
    quantized = np.clip(np.round(weights / expanded), -127, 127).astype(np.int8)
    error = np.abs(quantized * expanded - weights)
    error = error.max(axis=1) if per_channel else error.max(keepdims=True).reshape(1)
    relative = float(np.max(np.where(peak > 0, error / np.where(peak > 0, peak, 1), 0)))
    return quantized, scale, relative


def round_hyper_weights(model: tf.keras.Model, *, per_channel: bool = False) -> int:
    """Round the hyper-function kernels of `model` to their int8 grid, in place.

    After this, `model` computes what the file of `quantize_hyper_weights` computes
    (up to float rounding), so it is the Keras reference for that file's parity, and
    evaluating it in Keras shows what int8 storage costs. Clone the model first to
    keep the float weights.

    Arguments:
        model: a tf.keras model with DynamicSign / DynamicPReLU layers.
        per_channel: one scale per output channel, as in `quantize_hyper_weights`.

    Returns:
        The number of kernels rounded (0 for a model without hyper functions).

    Raises:
        TypeError: if `model` is not a tf.keras model.
    """
    found = dynamic_layers(check_model(model))
    rounded = 0
    for layer in found.signs + found.prelus:
        for weight in layer.weights:
            leaf = weight.name.rsplit("/", 1)[-1].split(":")[0]
            if "hyper_function" in weight.name and leaf.endswith("_kernel"):
                # Keras kernels are (in, out); the flatbuffer's are (out, in).
                quantized, scale, _ = _quantize(weight.numpy().T, per_channel)
                grid = scale[:, None] if per_channel else scale[0]
                weight.assign((quantized.astype(np.float32) * grid).T)
                rounded += 1
    return rounded


def _opcode_index(tree, builtin: int, version: int) -> int:
    for index, code in enumerate(tree.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            code.version = max(code.version, version)
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)  # the pre-v2.4 field, capped
    code.version = version
    tree.operatorCodes.append(code)
    return len(tree.operatorCodes) - 1


def quantize_hyper_weights(
    flatbuffer: bytes, model: tf.keras.Model, *, per_channel: bool = False
) -> tuple[bytes, Int8Weights]:
    """Store the float32 weights of the hyper functions' FULLY_CONNECTED ops in int8.

    Each chosen kernel becomes an int8 constant and a DEQUANTIZE op whose float32
    output feeds the unchanged FC op; the DEQUANTIZE ops come first in the graph.

    Arguments:
        flatbuffer: the LCE flatbuffer of `model`.
        model: the Keras model it was converted from (to find the hyper functions).
        per_channel: one scale per output channel instead of one per kernel.

    Returns:
        `(new flatbuffer, Int8Weights)`. Without hyper functions the flatbuffer comes
        back unchanged.

    Raises:
        TypeError: if `model` is not a tf.keras model.
        ValueError: if `flatbuffer` is not a TFLite model.
    """
    layers = hyper_layers(check_model(model))
    try:
        tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    except Exception as error:  # flatbuffers raises plain errors on bad input
        raise ValueError(f"`flatbuffer` is not a valid TFLite model: {error}") from None
    subgraph = tree.subgraphs[0]
    decode = lambda raw: raw.decode() if isinstance(raw, bytes) else str(raw)  # noqa: E731
    chosen: set[int] = set()
    for op in subgraph.operators:
        if flatbuffer_utils.opcode_to_name(tree, op.opcodeIndex) != "FULLY_CONNECTED":
            continue
        output = decode(subgraph.tensors[op.outputs[0]].name)
        weight = op.inputs[1]
        tensor = subgraph.tensors[weight]
        if (
            layer_of(output, layers) is not None
            and tensor.type == schema.TensorType.FLOAT32
            and tree.buffers[tensor.buffer].data is not None
        ):
            chosen.add(weight)
    if not chosen:
        return bytes(flatbuffer), Int8Weights(0, 0, 0, 0.0)

    users: dict[int, set[int]] = {}
    for index, tensor in enumerate(subgraph.tensors):
        users.setdefault(tensor.buffer, set()).add(index)
    dequantize = _opcode_index(tree, schema.BuiltinOperator.DEQUANTIZE, version=2)
    float_bytes = int8_bytes = 0
    worst = 0.0
    new_ops = []
    for index in sorted(chosen):
        tensor = subgraph.tensors[index]
        buffer = tree.buffers[tensor.buffer]
        weights = np.frombuffer(bytes(buffer.data), np.float32).reshape(tensor.shape)
        quantized, scale, error = _quantize(weights, per_channel)
        worst = max(worst, error)
        stored = schema.BufferT()
        stored.data = np.frombuffer(quantized.tobytes(), np.uint8)
        tree.buffers.append(stored)
        params = schema.QuantizationParametersT()
        params.scale = scale.tolist()
        params.zeroPoint = [0] * len(scale)
        params.quantizedDimension = 0
        constant = schema.TensorT()
        constant.name = (decode(tensor.name) + "_int8").encode()
        constant.shape = np.asarray(tensor.shape, np.int32)
        constant.type = schema.TensorType.INT8
        constant.buffer = len(tree.buffers) - 1
        constant.quantization = params
        subgraph.tensors.append(constant)
        # The float tensor becomes the DEQUANTIZE output: no data of its own (buffer 0
        # is the schema's empty sentinel); its old buffer is emptied if nothing else
        # uses it.
        if users[tensor.buffer] <= chosen:
            buffer.data = None
        tensor.buffer = 0
        op = schema.OperatorT()
        op.opcodeIndex = dequantize
        op.inputs = np.asarray([len(subgraph.tensors) - 1], np.int32)
        op.outputs = np.asarray([index], np.int32)
        new_ops.append(op)
        float_bytes += weights.nbytes
        int8_bytes += quantized.nbytes + 12 * len(scale)  # float32 scale, int64 zero point
    subgraph.operators = new_ops + list(subgraph.operators)
    rewritten = bytes(flatbuffer_utils.convert_object_to_bytearray(tree))
    return rewritten, Int8Weights(len(chosen), float_bytes, int8_bytes, worst)
