"""Layer factories shared by the zoo's ReActNet and DyBNN models.

A model's `Thresholds` says which of RSign / RPReLU are dynamic; the factories turn
that into `DynamicSign` / `DynamicPReLU` layers with the dynamic term on or off, so
that a DyBNN model and its ReActNet twin differ only in those layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import larq as lq
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.hyper import DEFAULT_REDUCTION, DYNAMIC_PARTS
from larq_dybnn.layers import DynamicPReLU
from larq_dybnn.quantizers import DynamicSign
from larq_dybnn.zoo.weights import recorded_option

#: What the zoo DyBNN models' hyper functions are fed (`hyper_input`): each layer its
#: own pooled input (the paper); one pooled tensor per block, the block's input, which
#: its DynamicSign binarizes and its DynamicPReLU's hyper function pools as well; or a
#: learned constant (an ablation: the same parameters, no input dependence).
HYPER_INPUTS = ("layer", "block", "constant")

#: BatchNorm as in PyTorch's defaults, which the official ReActNet code uses.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def resolve_reduction(reduction: int | None, weights, *, model: str) -> int:
    """The reduction to build with: the given one, else that of the named weights,
    else `DEFAULT_REDUCTION`."""
    if reduction is not None:
        return reduction
    recorded = recorded_option(weights, model=model, option="reduction")
    return DEFAULT_REDUCTION if recorded is None else recorded


@dataclass(frozen=True)
class Thresholds:
    """Which threshold layers are dynamic, and how their hyper functions look.

    Attributes:
        dynamic_sign: DynamicSign (True) or ReActNet's RSign (False).
        dynamic_prelu: DynamicPReLU (True) or ReActNet's RPReLU (False).
        reduction: hyper-function reduction ratio.
        output_bound: bound of the dynamic terms, None for unbounded.
        pool_stride: the hyper functions pool every `pool_stride`-th row and column.
        hyper_input: one of `HYPER_INPUTS`: "block" has DynamicPReLU's hyper
            function pool its block's input (one pooling per block, shared with the
            block's DynamicSign); "constant" feeds every hyper function a learned
            constant.
    """

    dynamic_sign: bool = False
    dynamic_prelu: bool = False
    reduction: int = DEFAULT_REDUCTION
    output_bound: float | None = None
    pool_stride: int = 1
    hyper_input: str = "layer"

    @classmethod
    def from_arguments(
        cls, *, dynamic: str, reduction: int, output_bound: float | None,
        hyper_pool_stride: int = 1, hyper_input: str = "layer",
    ) -> "Thresholds":
        """Build from the zoo's public arguments, checking them.

        Raises:
            ValueError: for an unknown `dynamic` or `hyper_input`, a bad `reduction`,
                `output_bound` or `hyper_pool_stride`.
        """
        if dynamic not in DYNAMIC_PARTS:
            raise ValueError(
                f"`dynamic` must be one of {sorted(DYNAMIC_PARTS)}, got {dynamic!r}."
            )
        sign, prelu = DYNAMIC_PARTS[dynamic]
        return cls(
            dynamic_sign=sign,
            dynamic_prelu=prelu,
            reduction=_checks.positive_int("reduction", reduction),
            output_bound=_checks.optional_positive_float("output_bound", output_bound),
            pool_stride=_checks.positive_int("hyper_pool_stride", hyper_pool_stride),
            hyper_input=_checks.one_of("hyper_input", hyper_input, HYPER_INPUTS),
        )

    @classmethod
    def of(cls, arguments: dict, *, model: str) -> "Thresholds":
        """Build from a DyBNN builder's arguments (its `locals()`): `dynamic`,
        `output_bound`, `hyper_pool_stride`, `hyper_input`, and `reduction` resolved
        against the
        named `weights` of `model`.

        Raises:
            ValueError: as `from_arguments`.
        """
        return cls.from_arguments(
            dynamic=arguments["dynamic"], output_bound=arguments["output_bound"],
            reduction=resolve_reduction(arguments["reduction"], arguments["weights"],
                                        model=model),
            hyper_pool_stride=arguments["hyper_pool_stride"],
            hyper_input=arguments["hyper_input"],
        )

    def options(self) -> dict:
        """The builder options these thresholds stand for (`dynamic`, and for a
        DyBNN model `reduction` and `output_bound`)."""
        names = {parts: name for name, parts in DYNAMIC_PARTS.items()}
        dynamic = names[(self.dynamic_sign, self.dynamic_prelu)]
        if dynamic == "none":
            return {"dynamic": dynamic}
        options = {"dynamic": dynamic, "reduction": self.reduction,
                   "output_bound": self.output_bound}
        if self.pool_stride != 1:  # recorded only when set: older records stay equal
            options["hyper_pool_stride"] = self.pool_stride
        if self.hyper_input != "layer":
            options["hyper_input"] = self.hyper_input
        return options

    def sign(self, name: str) -> DynamicSign:
        """An RSign or DynamicSign quantizer."""
        return DynamicSign(
            reduction=self.reduction,
            dynamic_threshold=self.dynamic_sign,
            output_bound=self.output_bound,
            pool_stride=self.pool_stride,
            conditioned_on="constant" if self.hyper_input == "constant" else "input",
            name=name,
        )

    def prelu(self, name: str) -> DynamicPReLU:
        """An RPReLU or DynamicPReLU layer (conditioned on the block input with
        `hyper_input="block"`: call it through `activate`)."""
        return DynamicPReLU(
            reduction=self.reduction,
            dynamic_shifts=self.dynamic_prelu,
            output_bound=self.output_bound,
            pool_stride=self.pool_stride,
            conditioned_on=("block_input" if self.pools_block_input else
                            "constant" if self.hyper_input == "constant" else "input"),
            name=name,
        )

    @property
    def pools_block_input(self) -> bool:
        """Whether the DynamicPReLU layers pool their block's input."""
        return self.hyper_input == "block" and self.dynamic_prelu

    def activate(self, x: tf.Tensor, *, block_input: tf.Tensor, name: str) -> tf.Tensor:
        """The block's RPReLU / DynamicPReLU on `x`.

        Arguments:
            x: the block's output before the activation.
            block_input: the tensor the block's DynamicSign binarizes; with
                `hyper_input="block"`, the DynamicPReLU's hyper function pools it.
            name: the layer's name.
        """
        layer = self.prelu(name)
        return layer([x, block_input]) if self.pools_block_input else layer(x)


def binary_conv(
    filters: int,
    kernel_size: int,
    *,
    strides: int = 1,
    input_quantizer: tf.keras.layers.Layer,
    binary_weights: bool,
    name: str,
    kernel_quantizer: str = "magnitude_aware_sign",
) -> lq.layers.QuantConv2D:
    """A QuantConv2D that LCE converts to LceBconv2d.

    Arguments:
        filters: output channels.
        kernel_size: square kernel size.
        strides: stride.
        input_quantizer: the activation quantizer (RSign / DynamicSign).
        binary_weights: `kernel_quantizer` + `weight_clip` weights (True), or
            real-valued weights (False, step 1 of ReActNet's recipe).
        name: layer name.
        kernel_quantizer: the binary weight quantizer: "magnitude_aware_sign"
            (ReActNet's) or "ste_sign".
    """
    return lq.layers.QuantConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        pad_values=1.0,
        use_bias=False,
        input_quantizer=input_quantizer,
        kernel_quantizer=kernel_quantizer if binary_weights else None,
        kernel_constraint="weight_clip" if binary_weights else None,
        name=name,
    )


def batch_norm(name: str) -> tf.keras.layers.BatchNormalization:
    """BatchNormalization with PyTorch's default momentum and epsilon."""
    return tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


def scaled(channels: int, width_multiplier: float) -> int:
    """Channels after the width multiplier, at least 1."""
    return max(1, int(round(channels * width_multiplier)))
