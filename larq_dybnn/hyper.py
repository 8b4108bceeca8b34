"""The hyper function that makes DyBNN thresholds input-conditioned.

DyBNN (Zhang et al., 2022) predicts per-sample, per-channel values from the
globally average-pooled input with two fully-connected layers:

    h(x) = FC_2(ReLU(FC_1(GAP(x))))        FC_1: C -> C/r,  FC_2: C/r -> C

With `pool_stride` s > 1 the pooling averages every s-th row and column only (a
STRIDED_SLICE, then MEAN over a quarter of the elements for s = 2): on LCE's ARM
kernels the global pooling is most of what the hyper functions cost.

`HyperFunction` computes that and adds a static per-channel offset to each output,
so a DyBNN threshold ``tau(x) = b + h(x)`` is one call. It is written so that Larq
Compute Engine converts it to the smallest op set: MEAN (keepdims), FULLY_CONNECTED
with fused ReLU, and one FULLY_CONNECTED per output whose bias already holds the
static offset (the two constant biases are added before the matmul result, so the
converter folds them into one).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn._serialization import register

#: The reduction `r` the zoo's DyBNN models and `larq_dybnn.dynamize` use by default.
#: At ImageNet widths r=64 with int8 hyper weights keeps the exported file within
#: 1.10x of static ReActNet (docs/results.md, "Defaults"); at small widths
#: `min_hidden` sets the hidden size anyway. The layers' own default, 16, is the
#: paper's.
DEFAULT_REDUCTION = 64

#: What a model's `dynamic` option makes input-conditioned: (DynamicSign's threshold,
#: DynamicPReLU's shifts). The zoo's builders take every key; `dynamize` every key but
#: "none".
DYNAMIC_PARTS = {
    "both": (True, True),
    "sign": (True, False),
    "prelu": (False, True),
    "none": (False, False),
}


def int8_grid(kernel: tf.Tensor) -> tf.Tensor:
    """`kernel` rounded to its symmetric int8 grid, one scale for the whole kernel.

    The grid of the default export (`larq_dybnn.converter.int8`): scale =
    max|kernel| / 127, values round(kernel / scale) * scale, rounding half to even.
    """
    peak = tf.reduce_max(tf.abs(kernel))
    scale = tf.where(peak > 0, peak / 127.0, tf.ones_like(peak))
    return tf.clip_by_value(tf.round(kernel / scale), -127.0, 127.0) * scale


@register()
class HyperFunction(tf.keras.layers.Layer):
    """GAP, then FC(C -> hidden), ReLU, and one FC(hidden -> C) per output head.

    `hidden = max(C // reduction, min_hidden)`. Each head's output is added to a
    static offset given in `call`; with `output_bound` set, a head's output is
    `output_bound * tanh(FC(...))` before the offset is added.

    Arguments:
        heads: how many C-wide outputs to predict from the shared hidden layer.
        reduction: channel reduction ratio `r` of the hidden layer.
        min_hidden: smallest width of the hidden layer.
        output_bound: None for unbounded outputs, or a positive bound `s` so that
            each dynamic term is `s * tanh(.)`, inside (-s, s).
        pool_stride: pool every `pool_stride`-th row and column (1: all of them, the
            paper's global average pooling).
        constant_input: feed the FC layers a learned per-channel vector (starting
            at ones) instead of the pooled input: the same parametrization as a
            function of nothing, for ablations that separate input conditioning from
            re-parametrization. Its outputs are `(1, 1, 1, channels)`, the same for
            every sample, and conversion folds them into constants.
        output_channels: width of each head's output; None (the default) for the
            input's channels. A DynamicPReLU conditioned on its block's input pools
            that input and predicts shifts for its own, possibly wider, input.
        int8_kernels: compute with both FC kernels rounded to the int8 grid the
            default export stores them on (one symmetric scale per kernel), with
            straight-through gradients to the float kernels: training with it makes
            the int8 file compute the trained model (`int8_hyper_kernels`).
        kernel_initializer: initializer of the first FC kernel.
        output_initializer: initializer of the heads' kernels and biases; the default
            "zeros" makes every dynamic term start at exactly 0.
        kernel_regularizer: optional regularizer of both FC kernels.
        **kwargs: passed to `tf.keras.layers.Layer`.

    Input shape:
        4-D NHWC tensor `(batch, height, width, channels)`.

    Output shape:
        A list of `heads` tensors of shape `(batch, 1, 1, output_channels)`.

    Raises:
        ValueError: for a non-positive `heads`, `reduction`, `min_hidden`,
            `output_channels` or `output_bound`, and, when built, for an input that
            is not 4-D.

    References:
        - [Zhang et al., DyBNN: Dynamic Binary Neural Network by learning
          channel-wise thresholds, ICASSP 2022](https://arxiv.org/abs/2110.05185)
    """

    def __init__(
        self,
        *,
        heads: int = 1,
        reduction: int = 16,
        min_hidden: int = 8,
        output_bound: float | None = None,
        pool_stride: int = 1,
        constant_input: bool = False,
        output_channels: int | None = None,
        int8_kernels: bool = False,
        kernel_initializer: object = "he_normal",
        output_initializer: object = "zeros",
        kernel_regularizer: object = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.int8_kernels = bool(int8_kernels)
        self.heads = _checks.positive_int("heads", heads)
        self.reduction = _checks.positive_int("reduction", reduction)
        self.min_hidden = _checks.positive_int("min_hidden", min_hidden)
        self.output_bound = _checks.optional_positive_float("output_bound", output_bound)
        self.pool_stride = _checks.positive_int("pool_stride", pool_stride)
        self.constant_input = bool(constant_input)
        self.output_channels = (None if output_channels is None else
                                _checks.positive_int("output_channels", output_channels))
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.output_initializer = tf.keras.initializers.get(output_initializer)
        self.kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)
        self.channels: int | None = None
        self.units: int | None = None
        self.hidden: int | None = None

    def build(self, input_shape):
        shape = _checks.channels_last_shape(self.name, input_shape, require_4d=True)
        self.channels = int(shape[-1])
        self.units = self.output_channels or self.channels
        self.hidden = max(self.channels // self.reduction, self.min_hidden)
        if self.constant_input:
            self.context = self.add_weight(name="context", shape=(1, 1, 1, self.channels),
                                           initializer="ones")
        self.hidden_kernel = self.add_weight(
            name="hidden_kernel",
            shape=(self.channels, self.hidden),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.hidden_bias = self.add_weight(
            name="hidden_bias", shape=(self.hidden,), initializer="zeros"
        )
        self.head_kernels = []
        self.head_biases = []
        for i in range(self.heads):
            self.head_kernels.append(
                self.add_weight(
                    name=f"head{i}_kernel",
                    shape=(self.hidden, self.units),
                    initializer=self.output_initializer,
                    regularizer=self.kernel_regularizer,
                )
            )
            self.head_biases.append(
                self.add_weight(
                    name=f"head{i}_bias",
                    shape=(self.units,),
                    initializer=self.output_initializer,
                )
            )
        super().build(input_shape)

    def call(self, inputs, offsets: Sequence[tf.Tensor] | None = None):
        """Predict each head's per-sample, per-channel value.

        Arguments:
            inputs: NHWC tensor.
            offsets: one static per-channel tensor of shape `(output_channels,)` per
                head, added to that head's output; None for no offsets.

        Returns:
            A list of `heads` tensors of shape `(batch, 1, 1, output_channels)`.
        """
        if offsets is None:
            offsets = [None] * self.heads
        if len(offsets) != self.heads:
            raise ValueError(
                f"Layer '{self.name}' has {self.heads} heads but got "
                f"{len(offsets)} offsets."
            )
        # keepdims keeps (batch, 1, 1, C): no RESHAPE ops in the converted model.
        if self.constant_input:
            pooled = tf.convert_to_tensor(self.context)
        else:
            if self.pool_stride > 1:
                inputs = inputs[:, :: self.pool_stride, :: self.pool_stride, :]
            pooled = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        hidden = tf.nn.relu(tf.matmul(pooled, self._kernel(self.hidden_kernel))
                            + self.hidden_bias)
        outputs = []
        for kernel, bias, offset in zip(self.head_kernels, self.head_biases, offsets):
            projected = tf.matmul(hidden, self._kernel(kernel))
            if self.output_bound is None:
                # Constant + constant first, so conversion folds it into the FC bias.
                outputs.append(projected + (bias if offset is None else bias + offset))
            else:
                bounded = self.output_bound * tf.tanh(projected + bias)
                outputs.append(bounded if offset is None else bounded + offset)
        return outputs

    def _kernel(self, kernel: tf.Variable) -> tf.Tensor:
        """The kernel the layer computes with: as it is, or on its int8 grid."""
        return tf.grad_pass_through(int8_grid)(kernel) if self.int8_kernels else kernel

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        batch = 1 if self.constant_input else shape[0]
        return [tf.TensorShape([batch, 1, 1, self.output_channels or shape[-1]])
                ] * self.heads

    def macs_per_sample(self) -> int:
        """Multiply-accumulates of the two FC stages for one sample.

        Returns:
            `C * hidden + heads * hidden * output_channels`; 0 before the layer is
            built, and with `constant_input` (no sample enters it: conversion folds
            it into constants).
        """
        if self.channels is None or self.hidden is None or self.constant_input:
            return 0
        return self.hidden * (self.channels + self.heads * self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "heads": self.heads,
            "reduction": self.reduction,
            "min_hidden": self.min_hidden,
            "output_bound": self.output_bound,
            "pool_stride": self.pool_stride,
            "constant_input": self.constant_input,
            "output_channels": self.output_channels,
            "int8_kernels": self.int8_kernels,
            "kernel_initializer": tf.keras.initializers.serialize(
                self.kernel_initializer
            ),
            "output_initializer": tf.keras.initializers.serialize(
                self.output_initializer
            ),
            "kernel_regularizer": tf.keras.regularizers.serialize(
                self.kernel_regularizer
            ),
        }


class HyperFunctionOwner:
    """Options and bookkeeping shared by the layers that own a `HyperFunction`.

    A layer mixes this in before `tf.keras.layers.Layer`, calls `_init_hyper` in its
    `__init__` and merges `_hyper_config()` into its `get_config()`.
    """

    hyper: HyperFunction | None

    def _init_hyper(
        self,
        *,
        enabled: bool,
        heads: int,
        reduction: int,
        min_hidden: int,
        output_bound: float | None,
        hyper_initializer: object,
        hyper_regularizer: object,
        pool_stride: int = 1,
        int8_hyper_kernels: bool = False,
        constant_input: bool = False,
    ) -> None:
        self.reduction = _checks.positive_int("reduction", reduction)
        self.min_hidden = _checks.positive_int("min_hidden", min_hidden)
        self.output_bound = _checks.optional_positive_float("output_bound", output_bound)
        self.pool_stride = _checks.positive_int("pool_stride", pool_stride)
        self.hyper_initializer = tf.keras.initializers.get(hyper_initializer)
        self.hyper_regularizer = tf.keras.regularizers.get(hyper_regularizer)
        self.hyper = (
            HyperFunction(
                heads=heads,
                reduction=self.reduction,
                min_hidden=self.min_hidden,
                output_bound=self.output_bound,
                pool_stride=self.pool_stride,
                constant_input=constant_input,
                int8_kernels=int8_hyper_kernels,
                kernel_initializer=self.hyper_initializer,
                kernel_regularizer=self.hyper_regularizer,
                name="hyper_function",
            )
            if enabled
            else None
        )

    def _hyper_config(self) -> dict:
        return {
            "reduction": self.reduction,
            "min_hidden": self.min_hidden,
            "output_bound": self.output_bound,
            "pool_stride": self.pool_stride,
            "int8_hyper_kernels": self.int8_hyper_kernels,
            "hyper_initializer": tf.keras.initializers.serialize(self.hyper_initializer),
            "hyper_regularizer": tf.keras.regularizers.serialize(self.hyper_regularizer),
        }

    @property
    def int8_hyper_kernels(self) -> bool:
        """Whether the hyper function computes with its kernels on the int8 grid."""
        return self.hyper is not None and self.hyper.int8_kernels

    @int8_hyper_kernels.setter
    def int8_hyper_kernels(self, enabled: bool) -> None:
        if self.hyper is not None:
            self.hyper.int8_kernels = bool(enabled)

    def hyper_macs_per_sample(self) -> int:
        """Float multiply-accumulates of the hyper function for one sample.

        Returns:
            0 when the layer has no dynamic term or is not built yet.
        """
        return self.hyper.macs_per_sample() if self.hyper is not None else 0
