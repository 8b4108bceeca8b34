"""DynamicPReLU: the DyBNN input-conditioned shifted PReLU."""

from __future__ import annotations

import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn._serialization import register
from larq_dybnn.hyper import HyperFunctionOwner

__all__ = ["DynamicPReLU", "CONDITIONING"]

#: What DynamicPReLU's shifts are a function of: its own input (the paper), the input
#: of its block, given as a second tensor (`layer([x, block_input])`), or nothing (a
#: learned constant fed to the hyper function, an ablation; see `HyperFunction`).
CONDITIONING = ("input", "block_input", "constant")


@register("dynamic_prelu")
class DynamicPReLU(HyperFunctionOwner, tf.keras.layers.Layer):
    r"""PReLU with learned, input-conditioned shifts before and after it.

    \[
    y = \operatorname{PReLU}_\beta(x - \gamma(x)) + \zeta(x), \qquad
    \gamma(x) = g + h_\gamma(\operatorname{GAP}(x)), \quad
    \zeta(x) = z + h_\zeta(\operatorname{GAP}(x))
    \]

    `beta` is one slope per channel, shared over height and width and initialised to
    0.25; `g` and `z` are static per-channel shifts; `h_gamma` and `h_zeta` are the
    two output heads of one `HyperFunction` (GAP, FC(C -> C/r), ReLU, FC(C/r -> C)
    per head). With `dynamic_shifts=False` this is exactly ReActNet's RPReLU
    (`PReLU(x + m1) + m2` with `m1 = -g`, `m2 = z`) and accepts any channels-last
    input of rank >= 2.

    With `conditioned_on="block_input"` the hyper function pools the input of the
    layer's block instead, given as a second tensor (`layer([x, block_input])`). When
    the block's DynamicSign binarizes that same tensor, both pool it with the same
    op, which conversion computes once: one global pooling per block instead of two,
    on ARM most of what the hyper functions cost.

    Arguments:
        reduction: channel reduction ratio `r` of the hyper function's hidden layer.
        min_hidden: smallest width of the hidden layer.
        dynamic_shifts: whether the shifts have the input-conditioned terms. False gives
            ReActNet's RPReLU.
        output_bound: None, or a positive `s` to bound each dynamic shift as
            `s * tanh(.)`.
        alpha_initializer: initializer of the slope `beta` (default 0.25).
        shift_initializer: initializer of the static shifts `g` and `z`.
        hyper_initializer: initializer of the hyper function's first FC kernel.
        hyper_regularizer: optional regularizer of the hyper function's kernels.
        pool_stride: the hyper function pools every `pool_stride`-th row and column
            (1, the default: global average pooling; 2: a quarter of the elements,
            cheaper on ARM; see `larq_dybnn.HyperFunction`).
        int8_hyper_kernels: compute with the hyper function's kernels on the int8
            grid the default export stores them on (straight-through gradients), so
            that the exported int8 file computes this layer exactly; see
            `larq_dybnn.simulate_int8_hyper_kernels`.
        conditioned_on: "input" (the default, the paper's) or "block_input": what
            the hyper function pools, see above; "constant": the hyper function is
            fed a learned constant instead (the shifts depend on no input: an
            ablation, `HyperFunction(constant_input=True)`).
        **kwargs: passed to `tf.keras.layers.Layer` (e.g. `name`).

    Input shape:
        4-D NHWC `(batch, height, width, channels)` when dynamic; any channels-last
        shape of rank >= 2 otherwise. With `conditioned_on="block_input"`, a list of
        that tensor and the 4-D block input (any height, width and channels).

    Output shape:
        Same as the (first) input.

    Raises:
        ValueError: for a non-positive `reduction` or `min_hidden`, a bad
            `output_bound` or `conditioned_on`, and, when built, for an input that is
            not 4-D while `dynamic_shifts=True`, or that is not a pair of tensors
            while `conditioned_on="block_input"`.

    References:
        - [Zhang et al., DyBNN: Dynamic Binary Neural Network by learning
          channel-wise thresholds, ICASSP 2022](https://arxiv.org/abs/2110.05185)
        - [Liu et al., ReActNet, ECCV 2020](https://arxiv.org/abs/2003.03488)
    """

    def __init__(
        self,
        *,
        reduction: int = 16,
        min_hidden: int = 8,
        dynamic_shifts: bool = True,
        output_bound: float | None = None,
        alpha_initializer: object = tf.keras.initializers.Constant(0.25),
        shift_initializer: object = "zeros",
        hyper_initializer: object = "he_normal",
        hyper_regularizer: object = None,
        pool_stride: int = 1,
        int8_hyper_kernels: bool = False,
        conditioned_on: str = "input",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.conditioned_on = _checks.one_of("conditioned_on", conditioned_on, CONDITIONING)
        self.dynamic_shifts = bool(dynamic_shifts)
        self.alpha_initializer = tf.keras.initializers.get(alpha_initializer)
        self.shift_initializer = tf.keras.initializers.get(shift_initializer)
        self._init_hyper(
            enabled=self.dynamic_shifts,
            heads=2,
            reduction=reduction,
            min_hidden=min_hidden,
            output_bound=output_bound,
            hyper_initializer=hyper_initializer,
            hyper_regularizer=hyper_regularizer,
            pool_stride=pool_stride,
            int8_hyper_kernels=int8_hyper_kernels,
            constant_input=conditioned_on == "constant",
        )

    def _split(self, inputs):
        """`(input, tensor the hyper function pools)` from what the layer was given."""
        if self.conditioned_on != "block_input":
            return inputs, inputs
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            given = (f"{len(inputs)} tensors" if isinstance(inputs, (list, tuple))
                     else "one tensor")
            raise ValueError(f"Layer '{self.name}' has conditioned_on='block_input': call "
                             f"it on [input, block_input], got {given}.")
        return inputs[0], inputs[1]

    def build(self, input_shape):
        input_shape, pooled_shape = self._split(input_shape)
        reason = "DynamicPReLU with dynamic_shifts=True pools over height and width."
        shape = _checks.channels_last_shape(
            self.name, input_shape, require_4d=self.dynamic_shifts, reason=reason)
        channels = int(shape[-1])
        if self.conditioned_on == "block_input":
            _checks.channels_last_shape(self.name, pooled_shape,
                                        require_4d=self.dynamic_shifts, reason=reason)
            if self.hyper is not None:
                self.hyper.output_channels = channels
        # One slope per channel, shared over the spatial axes: (1, 1, C) for NHWC,
        # the shape tf.keras.layers.PReLU(shared_axes=[1, 2]) uses.
        self.alpha = self.add_weight(
            name="alpha",
            shape=(1,) * (shape.rank - 2) + (channels,),
            initializer=self.alpha_initializer,
        )
        self.gamma = self.add_weight(
            name="gamma", shape=(channels,), initializer=self.shift_initializer
        )
        self.zeta = self.add_weight(
            name="zeta", shape=(channels,), initializer=self.shift_initializer
        )
        super().build(input_shape)

    def shifts(self, inputs) -> tuple[tf.Tensor, tf.Tensor]:
        """Compute `gamma(x)` and `zeta(x)`, the shifts each sample gets.

        Arguments:
            inputs: the layer's input (with `conditioned_on="block_input"`, the pair
                `[input, block_input]`).

        Returns:
            `(gamma, zeta)`, each `(batch, 1, 1, channels)` when dynamic, else the
            static `(channels,)` shifts.
        """
        if not self.built:
            self(inputs)  # creates the weights, named as in a normal call
        if not self.dynamic_shifts:
            return tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.zeta)
        _, pooled = self._split(inputs)
        gamma, zeta = self.hyper(pooled, offsets=[self.gamma, self.zeta])
        return gamma, zeta

    def call(self, inputs):
        gamma, zeta = self.shifts(inputs)
        inputs, _ = self._split(inputs)
        shifted = inputs - gamma
        # Exactly tf.keras.layers.PReLU's expression: the converter fuses it to PRELU.
        activated = tf.nn.relu(shifted) + (-self.alpha) * tf.nn.relu(-shifted)
        return activated + zeta

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(self._split(input_shape)[0])

    def get_config(self):
        return {
            **super().get_config(),
            **self._hyper_config(),
            "dynamic_shifts": self.dynamic_shifts,
            "conditioned_on": self.conditioned_on,
            "alpha_initializer": tf.keras.initializers.serialize(
                self.alpha_initializer
            ),
            "shift_initializer": tf.keras.initializers.serialize(
                self.shift_initializer
            ),
        }
