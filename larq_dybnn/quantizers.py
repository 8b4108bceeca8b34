"""DynamicSign: the DyBNN input-conditioned binary activation quantizer."""

from __future__ import annotations

from typing import Callable

import larq as lq
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn._serialization import register
from larq_dybnn.hyper import HyperFunctionOwner

__all__ = ["DynamicSign", "ESTIMATORS", "CONDITIONING"]

#: What DynamicSign's threshold is a function of: the pooled input (the paper) or a
#: learned constant (an ablation; see `HyperFunction(constant_input=True)`).
CONDITIONING = ("input", "constant")


def _approx_sign(x: tf.Tensor, clip_value: float) -> tf.Tensor:
    del clip_value  # ApproxSign's window is fixed at |x| <= 1.
    return lq.quantizers.approx_sign(x)


def _ste_sign(x: tf.Tensor, clip_value: float) -> tf.Tensor:
    return lq.quantizers.ste_sign(x, clip_value=clip_value)


#: Gradient estimators of the sign, by name. Both forward passes are Larq's own
#: sign functions, which Larq Compute Engine converts to LceQuantize.
ESTIMATORS: dict[str, Callable[[tf.Tensor, float], tf.Tensor]] = {
    "approx_sign": _approx_sign,
    "ste_sign": _ste_sign,
}


@register("dynamic_sign")
class DynamicSign(HyperFunctionOwner, lq.quantizers.Quantizer):
    r"""Binarize activations around a learned, input-conditioned threshold.

    \[
    q(x) = \operatorname{sign}(x - \tau(x)), \qquad
    \tau(x) = b + h(\operatorname{GAP}(x))
    \]

    `b` is a static learnable per-channel threshold (ReActNet's RSign, with the sign
    of its bias flipped) and `h` is a `HyperFunction`: FC(C -> C/r), ReLU,
    FC(C/r -> C). `tau` is computed per sample and per channel, so a sample's output
    never depends on the other samples in the batch. `sign(0) = +1`, as in Larq.

    Use it as the `input_quantizer` of a `QuantConv2D` (or a depthwise/separable
    quantized conv) on NHWC inputs:

    ```python
    lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0,
                          input_quantizer=DynamicSign(reduction=16),
                          kernel_quantizer="magnitude_aware_sign",
                          kernel_constraint="weight_clip")
    ```

    With `dynamic_threshold=False` it is exactly RSign and accepts inputs of any rank, so it
    can also quantize the inputs of a `QuantDense`. With `dynamic_threshold=True` it needs a
    4-D NHWC input and raises a ValueError otherwise.

    Arguments:
        reduction: channel reduction ratio `r` of the hyper function's hidden layer.
        min_hidden: smallest width of the hidden layer.
        dynamic_threshold: whether `tau` has the input-conditioned term `h`. False gives
            ReActNet's RSign.
        output_bound: None, or a positive `s` to bound the dynamic term as
            `s * tanh(.)`. Bounding adds TANH and MUL ops to the converted model.
        estimator: gradient estimator of the sign, "approx_sign" (ReActNet's
            ApproxSign, the default) or "ste_sign" (clipped straight-through).
        clip_value: gradient window of "ste_sign"; ignored by "approx_sign".
        threshold_initializer: initializer of the static threshold `b`. With the
            default "zeros" and the hyper function's zero-initialized output layer,
            `tau` starts at exactly 0.
        hyper_initializer: initializer of the hyper function's first FC kernel.
        hyper_regularizer: optional regularizer of the hyper function's kernels.
        pool_stride: the hyper function pools every `pool_stride`-th row and column
            (1, the default: global average pooling; 2: a quarter of the elements,
            cheaper on ARM; see `larq_dybnn.HyperFunction`).
        int8_hyper_kernels: compute with the hyper function's kernels on the int8
            grid the default export stores them on (straight-through gradients), so
            that the exported int8 file computes this layer exactly; see
            `larq_dybnn.simulate_int8_hyper_kernels`.
        conditioned_on: "input" (the default, the paper's: `h` of the pooled input)
            or "constant": `h` of a learned constant, the same for every sample (an
            ablation separating input conditioning from re-parametrization;
            `HyperFunction(constant_input=True)`).
        **kwargs: passed to `tf.keras.layers.Layer` (e.g. `name`).

    Raises:
        ValueError: for a non-positive `reduction` or `min_hidden`, a bad
            `output_bound`, an unknown `estimator` or `conditioned_on`, and, when
            built, for an input that is not 4-D while `dynamic_threshold=True`.

    References:
        - [Zhang et al., DyBNN: Dynamic Binary Neural Network by learning
          channel-wise thresholds, ICASSP 2022](https://arxiv.org/abs/2110.05185)
        - [Liu et al., ReActNet: Towards Precise Binary Neural Network with
          Generalized Activation Functions, ECCV 2020](https://arxiv.org/abs/2003.03488)
    """

    precision = 1

    def __init__(
        self,
        *,
        reduction: int = 16,
        min_hidden: int = 8,
        dynamic_threshold: bool = True,
        output_bound: float | None = None,
        estimator: str = "approx_sign",
        clip_value: float = 1.0,
        threshold_initializer: object = "zeros",
        hyper_initializer: object = "he_normal",
        hyper_regularizer: object = None,
        pool_stride: int = 1,
        int8_hyper_kernels: bool = False,
        conditioned_on: str = "input",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.conditioned_on = _checks.one_of("conditioned_on", conditioned_on, CONDITIONING)
        if estimator not in ESTIMATORS:
            raise ValueError(
                f"`estimator` must be one of {sorted(ESTIMATORS)}, got {estimator!r}."
            )
        self.clip_value = _checks.optional_positive_float("clip_value", clip_value)
        self.dynamic_threshold = bool(dynamic_threshold)
        self.estimator = estimator
        self.threshold_initializer = tf.keras.initializers.get(threshold_initializer)
        self._init_hyper(
            enabled=self.dynamic_threshold,
            heads=1,
            reduction=reduction,
            min_hidden=min_hidden,
            output_bound=output_bound,
            hyper_initializer=hyper_initializer,
            hyper_regularizer=hyper_regularizer,
            pool_stride=pool_stride,
            int8_hyper_kernels=int8_hyper_kernels,
            constant_input=conditioned_on == "constant",
        )

    def build(self, input_shape):
        shape = _checks.channels_last_shape(
            self.name,
            input_shape,
            require_4d=self.dynamic_threshold,
            reason=(
                "DynamicSign with dynamic_threshold=True pools over height and width, so it "
                "cannot quantize the inputs of a QuantDense or QuantConv1D; use "
                "dynamic_threshold=False there (a static RSign threshold)."
            ),
        )
        self.threshold = self.add_weight(
            name="threshold",
            shape=(int(shape[-1]),),
            initializer=self.threshold_initializer,
        )
        super().build(input_shape)

    def thresholds(self, inputs: tf.Tensor) -> tf.Tensor:
        """Compute `tau(x)`, the threshold each sample gets.

        Arguments:
            inputs: the tensor this quantizer binarizes.

        Returns:
            `(batch, 1, 1, channels)` when dynamic, else the static `(channels,)`.
        """
        if not self.built:
            self(inputs)  # creates the weights, named as in a normal call
        if not self.dynamic_threshold:
            return tf.convert_to_tensor(self.threshold)
        (tau,) = self.hyper(inputs, offsets=[self.threshold])
        return tau

    def call(self, inputs):
        return ESTIMATORS[self.estimator](
            inputs - self.thresholds(inputs), self.clip_value
        )

    def get_config(self):
        return {
            **super().get_config(),
            **self._hyper_config(),
            "dynamic_threshold": self.dynamic_threshold,
            "conditioned_on": self.conditioned_on,
            "estimator": self.estimator,
            "clip_value": self.clip_value,
            "threshold_initializer": tf.keras.initializers.serialize(
                self.threshold_initializer
            ),
        }
