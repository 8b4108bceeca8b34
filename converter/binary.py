"""Which binary Keras convolutions became LceBconv2d, and why others did not."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import larq as lq
from larq.layers_base import BaseLayer as _LarqLayer
import tensorflow as tf

from larq_dybnn.converter.flatbuffer import Operator, layer_of
from larq_dybnn.quantizers import DynamicSign

__all__ = ["BinaryCheck", "FloatFallbackError", "binary_conv_layers", "check_binary_layers"]

# Activation quantizers whose forward pass LCE turns into LceQuantize.
_SIGN_QUANTIZERS = (
    lq.quantizers.SteSign,
    lq.quantizers.ApproxSign,
    lq.quantizers.SwishSign,
    DynamicSign,
)
_SIGN_FUNCTIONS = ("ste_sign", "approx_sign", "swish_sign")
_KERNEL_QUANTIZERS = (lq.quantizers.SteSign, lq.quantizers.MagnitudeAwareSign)


class FloatFallbackError(ValueError):
    """Binary layers of the Keras model did not become LceBconv2d."""


def _is_binary(quantizer: object) -> bool:
    return getattr(quantizer, "precision", None) == 1 and not isinstance(
        quantizer, lq.quantizers.NoOp
    )


def binary_conv_layers(model: tf.keras.Model) -> list[lq.layers.QuantConv2D]:
    """The QuantConv2D layers (nested models included) with 1-bit inputs and weights."""
    return [
        layer
        for layer in model.submodules
        if isinstance(layer, lq.layers.QuantConv2D)
        and _is_binary(layer.input_quantizer)
        and _is_binary(layer.kernel_quantizer)
    ]


def float_quantized_layers(model: tf.keras.Model) -> list[tuple[str, str]]:
    """Quantized Larq layers that are not binary, so LCE runs them as float ops.

    Returns:
        `(layer name, why)` for every Larq quantized layer (QuantConv2D,
        QuantDepthwiseConv2D, QuantDense, ...) whose input or kernel quantizer is not
        1-bit, e.g. DoReFa with k_bit=2: LCE has no kernel for them and keeps them as
        float convolutions (with the quantizers' arithmetic as float ops).
    """
    found = []
    for layer in model.submodules:
        if not isinstance(layer, _LarqLayer):
            continue
        input_q = getattr(layer, "input_quantizer", None)
        kernel_q = getattr(layer, "kernel_quantizer", None) or getattr(
            layer, "depthwise_quantizer", None)
        if input_q is None and kernel_q is None:
            continue
        if isinstance(layer, lq.layers.QuantConv2D) and _is_binary(input_q) \
                and _is_binary(kernel_q):
            continue
        parts = []
        for role, q in (("input", input_q), ("kernel", kernel_q)):
            bits = getattr(q, "precision", None) if q is not None else None
            parts.append(f"{role} {_quantizer_name(q) if q is not None else 'float'}"
                         + (f" ({bits}-bit)" if bits else ""))
        kind = type(layer).__name__
        why = ("only binary QuantConv2D layers (1-bit inputs and kernels) become "
               "LceBconv2d" if kind == "QuantConv2D" else
               f"LCE has no binary kernel for {kind}")
        found.append((layer.name, f"{kind}, {', '.join(parts)}: {why}"))
    return found


def _quantizer_name(quantizer: object) -> str:
    return getattr(quantizer, "__name__", type(quantizer).__name__)


def fallback_cause(layer: lq.layers.QuantConv2D) -> str:
    """Why LCE would not make `layer` an LceBconv2d (best guess from its settings)."""
    causes = []
    q = layer.input_quantizer
    if not (isinstance(q, _SIGN_QUANTIZERS) or _quantizer_name(q) in _SIGN_FUNCTIONS):
        causes.append(
            f"input_quantizer {_quantizer_name(q)} is not a sign LCE recognises "
            "(use ste_sign, approx_sign or DynamicSign)"
        )
    k = layer.kernel_quantizer
    if not (isinstance(k, _KERNEL_QUANTIZERS) or _quantizer_name(k) == "ste_sign"):
        causes.append(
            f"kernel_quantizer {_quantizer_name(k)} is not ste_sign or "
            "magnitude_aware_sign"
        )
    if layer.padding == "same" and tf.keras.backend.get_value(layer.pad_values) != 1.0:
        causes.append("padding='same' needs pad_values=1.0")
    if layer.data_format != "channels_last":
        causes.append("data_format must be channels_last")
    if getattr(layer, "groups", 1) > 1:
        causes.append("grouped convs need a multiple of 32 channels per group")
    return "; ".join(causes) or "not recognised by the converter"


@dataclass(frozen=True)
class BinaryCheck:
    """Binary convs in Keras against LceBconv2d ops in the flatbuffer.

    Attributes:
        keras_binary_convs: names of the binary QuantConv2D layers.
        lce_bconv2d: number of LceBconv2d ops.
        fell_back: `(layer, cause)` for binary layers that did not become
            LceBconv2d (found by the layer names in the flatbuffer's tensor names).
        float_quantized: `(layer, why)` for quantized layers that are not binary
            (e.g. DoReFa k_bit=2, QuantDense): by design they run as float ops.
    """

    keras_binary_convs: list[str]
    lce_bconv2d: int
    fell_back: list[tuple[str, str]] = field(default_factory=list)
    float_quantized: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every binary conv is one LceBconv2d."""
        return self.lce_bconv2d == len(self.keras_binary_convs) and not self.fell_back

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def error(self) -> FloatFallbackError:
        """The error that lists the layers that fell back to float."""
        listed = "\n".join(f"  - {name}: {cause}" for name, cause in self.fell_back)
        return FloatFallbackError(
            f"{len(self.keras_binary_convs)} binary QuantConv2D layers but "
            f"{self.lce_bconv2d} LceBconv2d ops: these layers fell back to float "
            f"ops:\n{listed or '  (could not tell which)'}\nPass "
            "allow_float_fallback=True (--allow-float-fallback) to export anyway."
        )


def check_binary_layers(model: tf.keras.Model, operators: Sequence[Operator]) -> BinaryCheck:
    """Compare a model's binary convs with the LceBconv2d ops of its flatbuffer.

    Arguments:
        model: the Keras model.
        operators: `read_operators(flatbuffer)`.

    Returns:
        A `BinaryCheck`.
    """
    layers = binary_conv_layers(model)
    names = [layer.name for layer in layers]
    bconvs = [op for op in operators if op.name == "LceBconv2d"]
    converted = {
        owner
        for op in bconvs
        if op.inputs and (owner := layer_of(op.inputs[0], names)) is not None
    }
    fell_back = []
    if len(bconvs) < len(layers):
        fell_back = [(l.name, fallback_cause(l)) for l in layers if l.name not in converted]
    return BinaryCheck(keras_binary_convs=names, lce_bconv2d=len(bconvs), fell_back=fell_back,
                       float_quantized=float_quantized_layers(model))
