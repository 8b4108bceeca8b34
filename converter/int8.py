"""Int8 weights for the hyper functions' fully-connected layers of a flatbuffer.

LCE's converter keeps FULLY_CONNECTED weights in float32, and the hyper functions of a
DyBNN model hold most of its float weights (about 2 M at r=16 in ReActNet-A, more than
the binary convs). TFLite's "hybrid" FULLY_CONNECTED takes int8 weights with a float
input and output: it quantizes the input on the fly, so the rest of the graph is
untouched. This module rewrites the hyper functions' FC weights to int8 with a symmetric
scale per tensor (as TFLite's own dynamic-range quantization does for fully-connected
layers) or per output channel, in the flatbuffer LCE produced. Other FULLY_CONNECTED
ops (e.g. the classifier) stay float.

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
from larq_dybnn.layers import DynamicPReLU
from larq_dybnn.quantizers import DynamicSign

__all__ = ["Int8Weights", "hyper_layers", "quantize_hyper_weights"]


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
    """Names of the layers of `model` whose hyper function is on.

    These are QuantConv2D/QuantDense layers with a dynamic `DynamicSign` input
    quantizer and dynamic `DynamicPReLU` layers.
    """
    names = set()
    for layer in model.layers:
        quantizer = getattr(layer, "input_quantizer", None)
        if isinstance(quantizer, DynamicSign) and quantizer.dynamic_threshold:
            names.add(layer.name)
        if isinstance(layer, DynamicPReLU) and layer.dynamic_shifts:
            names.add(layer.name)
    return names


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


def quantize_hyper_weights(
    flatbuffer: bytes, model: tf.keras.Model, *, per_channel: bool = False
) -> tuple[bytes, Int8Weights]:
    """Rewrite the float32 weights of the hyper functions' FULLY_CONNECTED ops to int8.

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

    # A buffer also used by a tensor we do not rewrite gets a new buffer.
    users: dict[int, set[int]] = {}
    for index, tensor in enumerate(subgraph.tensors):
        users.setdefault(tensor.buffer, set()).add(index)
    float_bytes = int8_bytes = 0
    worst = 0.0
    for index in sorted(chosen):
        tensor = subgraph.tensors[index]
        buffer = tree.buffers[tensor.buffer]
        weights = np.frombuffer(bytes(buffer.data), np.float32).reshape(tensor.shape)
        quantized, scale, error = _quantize(weights, per_channel)
        worst = max(worst, error)
        data = np.frombuffer(quantized.tobytes(), np.uint8)
        if users[tensor.buffer] <= chosen:
            buffer.data = data
        else:
            fresh = schema.BufferT()
            fresh.data = data
            tree.buffers.append(fresh)
            tensor.buffer = len(tree.buffers) - 1
        params = schema.QuantizationParametersT()
        params.scale = scale.tolist()
        params.zeroPoint = [0] * len(scale)
        params.quantizedDimension = 0
        tensor.type = schema.TensorType.INT8
        tensor.quantization = params
        float_bytes += weights.nbytes
        int8_bytes += quantized.nbytes + 12 * len(scale)  # float32 scale, int64 zero point
    rewritten = bytes(flatbuffer_utils.convert_object_to_bytearray(tree))
    return rewritten, Int8Weights(len(chosen), float_bytes, int8_bytes, worst)
