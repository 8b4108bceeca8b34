"""ReActNet-A (MobileNetV1 backbone) and its DyBNN version."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from larq_dybnn._gc import fewer_collections
from larq_dybnn.zoo.blocks import Thresholds, batch_norm, binary_conv, scaled
from larq_dybnn.zoo.assembly import BuilderOptions, assemble

__all__ = ["ReActNetA", "DyBNNReActNetA"]

#: Output channels of the stem and the 13 blocks (official `stage_out_channel`).
STAGE_CHANNELS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
TOTAL_STRIDE = {"imagenet": 32, "cifar": 16}


def _block(
    x: tf.Tensor, *, index: int, out_channels: int, stride: int,
    thresholds: Thresholds, binary_weights: bool,
) -> tf.Tensor:
    """One ReActNet-A block (official `BasicBlock`)."""
    name = f"block{index}"
    channels = x.shape[-1]
    shortcut = x
    out = binary_conv(
        channels, 3, strides=stride, input_quantizer=thresholds.sign(f"{name}_sign3x3"),
        binary_weights=binary_weights, name=f"{name}_conv3x3",
    )(x)
    out = batch_norm(f"{name}_bn3x3")(out)
    if stride == 2:
        shortcut = tf.keras.layers.AveragePooling2D(2, 2, name=f"{name}_pool")(shortcut)
    out = tf.keras.layers.Add(name=f"{name}_add3x3")([shortcut, out])
    out = thresholds.activate(out, block_input=x, name=f"{name}_prelu3x3")

    # Where channels double, the official code has two C->C 1x1 convs on the same
    # binarized input, each with its own BN and each added to `out`, concatenated.
    # One C->2C conv is the same computation (weights, magnitude scaling and BN are
    # all per output channel), with the one shared RSign of the official code.
    pointwise = binary_conv(
        out_channels, 1, input_quantizer=thresholds.sign(f"{name}_sign1x1"),
        binary_weights=binary_weights, name=f"{name}_conv1x1",
    )(out)
    pointwise = batch_norm(f"{name}_bn1x1")(pointwise)
    residual = out
    if out_channels == 2 * channels:
        residual = tf.keras.layers.Concatenate(name=f"{name}_concat")([out, out])
    elif out_channels != channels:
        raise ValueError(f"{name}: channels must stay or double, got {channels}->{out_channels}")
    block_input = out
    out = tf.keras.layers.Add(name=f"{name}_add1x1")([residual, pointwise])
    return thresholds.activate(out, block_input=block_input, name=f"{name}_prelu1x1")


@fewer_collections()
def _reactnet_a(thresholds: Thresholds, default_name: str,
                options: BuilderOptions) -> tf.keras.Model:
    def backbone(inputs: tf.Tensor) -> tf.Tensor:
        channels = [scaled(STAGE_CHANNELS[0], options.width_multiplier)]
        for previous, current in zip(STAGE_CHANNELS, STAGE_CHANNELS[1:]):
            channels.append(channels[-1] * 2 if current == 2 * previous else channels[-1])
        x = tf.keras.layers.Conv2D(
            channels[0], 3, strides=2 if options.stem == "imagenet" else 1, padding="same",
            use_bias=False, name="stem_conv",
        )(inputs)
        x = batch_norm("stem_bn")(x)
        for index in range(1, len(STAGE_CHANNELS)):
            doubles = STAGE_CHANNELS[index] != STAGE_CHANNELS[index - 1]
            # Official rule: stride 2 where the channel count changes, except 32 -> 64.
            stride = 2 if doubles and STAGE_CHANNELS[index] != 64 else 1
            x = _block(
                x, index=index, out_channels=channels[index], stride=stride,
                thresholds=thresholds, binary_weights=options.binary_weights,
            )
        return x

    return assemble(options, default_name=default_name, total_stride=TOTAL_STRIDE,
                    backbone=backbone,
                    recorded={"binary_weights": options.binary_weights,
                              **thresholds.options()})


def ReActNetA(  # noqa: N802 - larq-zoo names models like classes
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
    """ReActNet-A: the MobileNetV1-based binary network of Liu et al. (2020).

    Stem: real-valued 3x3 conv (stride 2; stride 1 for the CIFAR stem) to 32 channels
    and BN. Then 13 blocks to 64, 128, 128, 256, 256, 512 x6, 1024, 1024 channels,
    stride 2 where the channel count changes except 32 -> 64. Each block: RSign,
    binary 3x3 conv, BN, + shortcut (2x2 average pooling at stride 2), RPReLU, RSign,
    binary 1x1 conv, BN, + residual, RPReLU. Binary weights use
    `magnitude_aware_sign` with `weight_clip`; convs pad with 1.0 so that LCE makes
    each of them one LceBconv2d. Head: global average pooling and a float Dense.

    At 224x224: 4,816,896,000 binary MACs and 11,862,016 float MACs
    (paper: 4.82e9 BOPs, 0.12e8 FLOPs). RSign and RPReLU are `DynamicSign` and
    `DynamicPReLU` with their dynamic terms off.

    Arguments:
        input_shape: `(height, width, 3)`; None for 224x224 (32x32 with the CIFAR
            stem). Height and width must be at least 32 (16 with the CIFAR stem).
        input_tensor: optional Keras tensor to use as the model's input.
        weights: None, the path of an `.h5` weights file, or a registered name
            (see `larq_dybnn.zoo.weights`).
        include_top: whether to include pooling and the classifier; without it the
            model returns the last feature map.
        num_classes: classifier outputs; None for those of the named `weights`, else
            1000.
        width_multiplier: multiplies every channel count (e.g. 0.25 for quick CPU
            experiments).
        stem: "imagenet" (stride-2 stem) or "cifar" (stride-1 stem for 32x32).
        binary_weights: False gives real-valued conv weights with binary
            activations (step 1 of the ReActNet training recipe).
        name: model name; defaults to "reactnet_a".

    Returns:
        A `tf.keras.Model`.

    Raises:
        ValueError: for inputs without 3 channels, too small a spatial size,
            `include_top` with unspecified height or width, a `num_classes` that
            does not match `weights`, or unknown `weights` or `stem`.

    References:
        - [Liu et al., ReActNet, ECCV 2020](https://arxiv.org/abs/2003.03488)
    """
    return _reactnet_a(Thresholds(), "reactnet_a", BuilderOptions.of(locals()))


def DyBNNReActNetA(  # noqa: N802
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
    """DyBNN ReActNet-A: ReActNet-A with input-conditioned thresholds.

    The same network as `ReActNetA`, layer for layer, with every RSign replaced by
    `DynamicSign` and every RPReLU by `DynamicPReLU` (Zhang et al., 2022). The binary
    MACs are unchanged; each hyper function adds `C*hidden*(1 + heads)` float MACs
    per image.

    Arguments:
        input_shape: as in `ReActNetA`.
        input_tensor: as in `ReActNetA`.
        weights: as in `ReActNetA`.
        include_top: as in `ReActNetA`.
        num_classes: as in `ReActNetA`.
        width_multiplier: as in `ReActNetA`.
        stem: as in `ReActNetA`.
        binary_weights: as in `ReActNetA`.
        dynamic: which parts are dynamic, for ablations: "both" (the paper),
            "sign" (DySign only), "prelu" (DyPReLU only) or "none" (= ReActNet-A).
        reduction: hyper-function reduction ratio `r` (hidden width
            `max(C // r, 8)`); None for the reduction the named `weights` were
            trained with, or else `DEFAULT_REDUCTION` (64).
        output_bound: None, or a bound `s` for the dynamic terms (`s * tanh`).
        hyper_pool_stride: the hyper functions pool every `hyper_pool_stride`-th row
            and column (1: global average pooling, as the paper; 2: a quarter of the
            elements, cheaper on ARM).
        hyper_input: what the hyper functions are fed: "layer" (each layer's own
            pooled input, as the paper), "block" (each RPReLU's hyper function pools
            the tensor its block's DynamicSign binarizes, so conversion pools once
            per block instead of twice: cheaper on ARM) or "constant" (a learned
            constant: the same parameters without input dependence, an ablation;
            it converts to a static model).
        name: model name; defaults to "dybnn_reactnet_a".

    Returns:
        A `tf.keras.Model`.

    Raises:
        ValueError: as `ReActNetA`, and for an unknown `dynamic` or `hyper_input`,
            or a bad `reduction`, `output_bound` or `hyper_pool_stride`.

    References:
        - [Zhang et al., DyBNN, ICASSP 2022](https://arxiv.org/abs/2110.05185)
    """
    arguments = locals()
    return _reactnet_a(Thresholds.of(arguments, model="dybnn_reactnet_a"), "dybnn_reactnet_a",
                BuilderOptions.of(arguments))
