"""ReActNet-18 (ResNet-18 / Bi-Real backbone) and its DyBNN version."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from larq_dybnn._gc import fewer_collections
from larq_dybnn.zoo.blocks import Thresholds, batch_norm, binary_conv, scaled
from larq_dybnn.zoo.assembly import BuilderOptions, assemble

__all__ = ["ReActNet18", "DyBNNReActNet18"]

STAGE_CHANNELS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 4
TOTAL_STRIDE = {"imagenet": 32, "cifar": 8}


def _block(
    x: tf.Tensor, *, name: str, channels: int, stride: int, thresholds: Thresholds,
    binary_weights: bool,
) -> tf.Tensor:
    """One Bi-Real/ReActNet-18 block: RSign, binary 3x3 conv, BN, + shortcut, RPReLU."""
    shortcut = x
    out = binary_conv(
        channels, 3, strides=stride, input_quantizer=thresholds.sign(f"{name}_sign"),
        binary_weights=binary_weights, name=f"{name}_conv",
    )(x)
    out = batch_norm(f"{name}_bn")(out)
    if stride != 1 or x.shape[-1] != channels:
        # Real-valued downsampling shortcut: 2x2 average pooling, 1x1 conv, BN.
        shortcut = tf.keras.layers.AveragePooling2D(
            stride, stride, name=f"{name}_shortcut_pool"
        )(shortcut)
        shortcut = tf.keras.layers.Conv2D(
            channels, 1, use_bias=False, name=f"{name}_shortcut_conv"
        )(shortcut)
        shortcut = batch_norm(f"{name}_shortcut_bn")(shortcut)
    out = tf.keras.layers.Add(name=f"{name}_add")([out, shortcut])
    return thresholds.activate(out, block_input=x, name=f"{name}_prelu")


@fewer_collections()
def _reactnet_18(thresholds: Thresholds, default_name: str,
                 options: BuilderOptions) -> tf.keras.Model:
    def backbone(inputs: tf.Tensor) -> tf.Tensor:
        base = scaled(STAGE_CHANNELS[0], options.width_multiplier)
        if options.stem == "imagenet":
            x = tf.keras.layers.Conv2D(
                base, 7, strides=2, padding="same", use_bias=False, name="stem_conv"
            )(inputs)
            x = batch_norm("stem_bn")(x)
            x = tf.keras.layers.MaxPool2D(3, 2, padding="same", name="stem_pool")(x)
        else:
            x = tf.keras.layers.Conv2D(
                base, 3, strides=1, padding="same", use_bias=False, name="stem_conv"
            )(inputs)
            x = batch_norm("stem_bn")(x)
        for stage in range(len(STAGE_CHANNELS)):
            channels = base * 2**stage
            for block in range(BLOCKS_PER_STAGE):
                stride = 2 if stage > 0 and block == 0 else 1
                x = _block(
                    x, name=f"stage{stage + 1}_block{block + 1}", channels=channels,
                    stride=stride, thresholds=thresholds,
                    binary_weights=options.binary_weights,
                )
        return x

    return assemble(options, default_name=default_name, total_stride=TOTAL_STRIDE,
                    backbone=backbone,
                    recorded={"binary_weights": options.binary_weights,
                              **thresholds.options()})


def ReActNet18(  # noqa: N802 - larq-zoo names models like classes
    *,
    input_shape: Sequence[int | None] | None = None,
    input_tensor: tf.Tensor | None = None,
    weights: str | None = None,
    include_top: bool = True,
    num_classes: int | None = None,
    width_multiplier: float = 1.0,
    stem: str = "imagenet",
    binary_weights: bool = True,
    name: str | None = None,
) -> tf.keras.Model:
    """ReActNet-18: the ResNet-18 (Bi-Real Net) binary network of Liu et al. (2020).

    Stem: 7x7 conv with stride 2, BN, 3x3 max-pooling with stride 2 (CIFAR stem:
    stride-1 3x3 conv and BN, no pooling). Four stages of 4 blocks at 64, 128, 256
    and 512 channels; the first block of stages 2-4 has stride 2. Each block: RSign,
    binary 3x3 conv, BN, + shortcut, RPReLU. The downsampling shortcut is
    real-valued: 2x2 average pooling, 1x1 conv, BN. Head: global average pooling
    and a float Dense.

    At 224x224: 1,676,279,808 binary MACs and 137,793,536 float MACs.

    Arguments:
        input_shape: `(height, width, 3)`; None for 224x224 (32x32 with the CIFAR
            stem). Height and width must be at least 32 (8 with the CIFAR stem).
        input_tensor: as in `larq_dybnn.zoo.ReActNetA`.
        weights: as in `larq_dybnn.zoo.ReActNetA`.
        include_top: as in `larq_dybnn.zoo.ReActNetA`.
        num_classes: as in `larq_dybnn.zoo.ReActNetA`.
        width_multiplier: as in `larq_dybnn.zoo.ReActNetA`.
        binary_weights: as in `larq_dybnn.zoo.ReActNetA`.
        stem: "imagenet" or "cifar".
        name: model name; defaults to "reactnet_18".

    Returns:
        A `tf.keras.Model`.

    Raises:
        ValueError: as `larq_dybnn.zoo.ReActNetA`.

    References:
        - [Liu et al., ReActNet, ECCV 2020](https://arxiv.org/abs/2003.03488)
        - [Liu et al., Bi-Real Net, ECCV 2018](https://arxiv.org/abs/1808.00278)
    """
    return _reactnet_18(Thresholds(), "reactnet_18", BuilderOptions.of(locals()))


def DyBNNReActNet18(  # noqa: N802
    *,
    input_shape: Sequence[int | None] | None = None,
    input_tensor: tf.Tensor | None = None,
    weights: str | None = None,
    include_top: bool = True,
    num_classes: int | None = None,
    dynamic: str = "both",
    reduction: int | None = None,
    output_bound: float | None = None,
    hyper_pool_stride: int = 1,
    hyper_input: str = "layer",
    width_multiplier: float = 1.0,
    stem: str = "imagenet",
    binary_weights: bool = True,
    name: str | None = None,
) -> tf.keras.Model:
    """DyBNN ReActNet-18: ReActNet-18 with input-conditioned thresholds.

    `ReActNet18` layer for layer, with every RSign replaced by `DynamicSign` and
    every RPReLU by `DynamicPReLU`. It takes the arguments of
    `larq_dybnn.zoo.DyBNNReActNetA`; `name` defaults to "dybnn_reactnet_18".

    Returns:
        A `tf.keras.Model`.

    Raises:
        ValueError: as `larq_dybnn.zoo.DyBNNReActNetA`.

    References:
        - [Zhang et al., DyBNN, ICASSP 2022](https://arxiv.org/abs/2110.05185)
    """
    arguments = locals()
    return _reactnet_18(Thresholds.of(arguments, model="dybnn_reactnet_18"), "dybnn_reactnet_18",
                BuilderOptions.of(arguments))
