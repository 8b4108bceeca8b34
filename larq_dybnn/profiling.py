"""Model summary with truthful MAC counts for DyBNN layers.

`larq.models.summary` counts a layer's MACs as (each of its non-bias weights) x
(output pixels). A quantizer inside a `QuantConv2D` is a sublayer, so its weights are
the conv's weights too: the static threshold and the hyper function's FC kernels get
billed as if they were convolved over every output pixel (a 2k-parameter hyper
function shows up as ~0.5M fake MACs), and `DynamicPReLU` is not counted at all.
That cannot be fixed from inside the layers without hiding their weights from
training and saving, so this module reuses Larq's profile and table classes and
only corrects the op counts:

- a conv's MACs come from its own weights (its kernel), not its quantizers';
- each hyper function adds its real float MACs, `C * hidden + heads * hidden * C`
  per sample, once (not per pixel), to the layer that holds it.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf
from larq import models as lq_models

__all__ = ["summary", "mac_counts"]

_QUANTIZER_ATTRIBUTES = (
    "input_quantizer",
    "kernel_quantizer",
    "depthwise_quantizer",
    "pointwise_quantizer",
)


def _quantizer_layers(layer: tf.keras.layers.Layer) -> list[tf.keras.layers.Layer]:
    found = []
    for attribute in _QUANTIZER_ATTRIBUTES:
        quantizer = getattr(layer, attribute, None)
        if isinstance(quantizer, tf.keras.layers.Layer):
            found.append(quantizer)
    return found


def _hyper_macs(layer: tf.keras.layers.Layer) -> int:
    """Per-sample hyper-function MACs of a layer and of the quantizers it holds."""
    total = 0
    for owner in (layer, *_quantizer_layers(layer)):
        count = getattr(owner, "hyper_macs_per_sample", None)
        if callable(count):
            total += int(count())
    return total


class _LayerProfile(lq_models.LayerProfile):
    def __init__(self, layer: tf.keras.layers.Layer):
        super().__init__(layer)
        counted = isinstance(layer, lq_models.op_count_supported_layer_types)
        if isinstance(layer, lq_models.mac_containing_layers) and self.output_pixels:
            quantizer_weights = {
                id(w) for q in _quantizer_layers(layer) for w in q.weights
            }
            self.op_profiles = [
                lq_models.OperationProfile(
                    n=p.count * self.output_pixels,
                    precision=max(self.input_precision or 32, p.bitwidth),
                    op_type="mac",
                )
                for p in self.weight_profiles
                if not p.is_bias() and id(p._weight) not in quantizer_weights
            ]
        hyper = _hyper_macs(layer)
        if hyper:
            self.op_profiles.append(
                lq_models.OperationProfile(n=hyper, precision=32, op_type="mac")
            )
        self._counts_ops = (counted and bool(self.output_pixels)) or bool(hyper)

    def op_count(
        self, op_type: str | None = None, precision: int | None = None
    ) -> int | None:
        if op_type != "mac":
            raise ValueError("Currently only counting of MAC-operations is supported.")
        if not self._counts_ops:
            return None
        return sum(
            op.n
            for op in self.op_profiles
            if (precision is None or op.precision == precision)
            and op.op_type == op_type
        )


class _ModelProfile(lq_models.ModelProfile):
    def __init__(self, model: tf.keras.Model):  # noqa: D107 - replaces Larq's
        self.name = model.name
        self.layer_profiles = [
            _ModelProfile(layer)
            if isinstance(layer, tf.keras.Model)
            else _LayerProfile(layer)
            for layer in model.layers
        ]


def _profile(model: tf.keras.Model) -> _ModelProfile:
    if not isinstance(model, tf.keras.Model):
        raise TypeError(
            f"`model` must be a tf.keras.Model, got {type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' has not been built yet. Build it first by calling "
            "`model.build()` or by giving its first layer an input shape."
        )
    return _ModelProfile(model)


def mac_counts(model: tf.keras.Model) -> dict[int, int]:
    """Count a model's multiply-accumulates per sample, by precision in bits.

    Hyper functions count once per sample at 32 bits; convolutions count their own
    kernel over the output pixels at the precision Larq assigns (1 bit when both the
    input and kernel quantizers are binary).

    Arguments:
        model: a built Keras model.

    Returns:
        `{precision: MACs}`, e.g. `{1: 4816896000, 32: 11862016}`.

    Raises:
        TypeError: if `model` is not a Keras model.
        ValueError: if the model is not built.
    """
    profile = _profile(model)
    return {
        precision: profile.op_count("mac", precision)
        for precision in profile.unique_op_precisions
    }


def summary(
    model: tf.keras.Model,
    *,
    print_fn: Callable[[str], Any] | None = None,
    include_macs: bool = True,
) -> None:
    """Print Larq's model summary table with correct MACs for DyBNN layers.

    The table and its columns are those of `larq.models.summary`; only the MAC
    counts differ where a layer holds a hyper function or a quantizer with weights
    (see this module's docstring).

    Arguments:
        model: a built Keras model.
        print_fn: function that receives each printed table; defaults to `print`.
        include_macs: whether to include MAC counts.

    Raises:
        TypeError: if `model` is not a Keras model.
        ValueError: if the model is not built.
    """
    profile = _profile(model)
    print_fn = print_fn or print
    print_fn(
        lq_models.LayersTable(
            profile.generate_table(include_macs), title=f"{model.name} stats"
        ).table
    )
    print_fn(
        lq_models.SummaryTable(
            profile.generate_summary(include_macs), title=f"{model.name} summary"
        ).table
    )
