"""A real-valued ResNet-18: the teacher for ReActNet's distribution loss.

ReActNet distils from a real-valued ResNet (ResNet-34 on ImageNet). On CIFAR-sized
data a ResNet-18 with the CIFAR stem is the usual teacher; train it with the same
`larq-dybnn train` command (`--model resnet-18`) and pass it as `--teacher`.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from larq_dybnn._gc import fewer_collections
from larq_dybnn.zoo.assembly import BuilderOptions, assemble
from larq_dybnn.zoo.blocks import batch_norm, scaled

__all__ = ["ResNet18"]

STAGE_CHANNELS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2
TOTAL_STRIDE = {"imagenet": 32, "cifar": 8}


def _conv(channels: int, kernel: int, stride: int, name: str) -> tf.keras.layers.Conv2D:
    return tf.keras.layers.Conv2D(
        channels, kernel, strides=stride, padding="same", use_bias=False, name=name
    )


def _block(x: tf.Tensor, *, name: str, channels: int, stride: int) -> tf.Tensor:
    """A basic residual block: 3x3 conv, BN, ReLU, 3x3 conv, BN, + shortcut, ReLU."""
    shortcut = x
    out = _conv(channels, 3, stride, f"{name}_conv1")(x)
    out = batch_norm(f"{name}_bn1")(out)
    out = tf.keras.layers.ReLU(name=f"{name}_relu1")(out)
    out = _conv(channels, 3, 1, f"{name}_conv2")(out)
    out = batch_norm(f"{name}_bn2")(out)
    if stride != 1 or x.shape[-1] != channels:
        shortcut = _conv(channels, 1, stride, f"{name}_shortcut_conv")(shortcut)
        shortcut = batch_norm(f"{name}_shortcut_bn")(shortcut)
    out = tf.keras.layers.Add(name=f"{name}_add")([out, shortcut])
    return tf.keras.layers.ReLU(name=f"{name}_relu2")(out)


@fewer_collections()
def ResNet18(  # noqa: N802 - larq-zoo names models like classes
    *,
    input_shape: Sequence[int | None] | None = None,
    input_tensor: tf.Tensor | None = None,
    weights: str | None = None,
    include_top: bool = True,
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    stem: str = "imagenet",
    name: str | None = None,
) -> tf.keras.Model:
    """The real-valued ResNet-18 of He et al. (2016), a distillation teacher.

    Stem: 7x7 conv with stride 2, BN, ReLU, 3x3 max-pooling with stride 2 (CIFAR
    stem: stride-1 3x3 conv, BN, ReLU). Four stages of 2 basic blocks at 64, 128,
    256 and 512 channels, the first block of stages 2-4 with stride 2 and a 1x1
    conv + BN shortcut. Head: global average pooling and a Dense layer.

    Arguments:
        input_shape: `(height, width, 3)`; None for 224x224 (32x32 with the CIFAR
            stem).
        input_tensor: optional Keras tensor to use as the model's input.
        weights: name of registered weights, a local weights file, or None.
        include_top: whether to add pooling and the classifier.
        num_classes: classifier outputs.
        width_multiplier: channel multiplier.
        stem: "imagenet" or "cifar".
        name: model name; defaults to "resnet_18".

    Returns:
        A `tf.keras.Model` whose outputs are logits.

    Raises:
        ValueError: as `larq_dybnn.zoo.ReActNet18`.

    References:
        - [He et al., Deep Residual Learning, CVPR 2016](https://arxiv.org/abs/1512.03385)
    """
    options = BuilderOptions.of(locals())

    def backbone(inputs: tf.Tensor) -> tf.Tensor:
        base = scaled(STAGE_CHANNELS[0], width_multiplier)
        if stem == "imagenet":
            x = _conv(base, 7, 2, "stem_conv")(inputs)
        else:
            x = _conv(base, 3, 1, "stem_conv")(inputs)
        x = batch_norm("stem_bn")(x)
        x = tf.keras.layers.ReLU(name="stem_relu")(x)
        if stem == "imagenet":
            x = tf.keras.layers.MaxPool2D(3, 2, padding="same", name="stem_pool")(x)
        for stage in range(len(STAGE_CHANNELS)):
            for block in range(BLOCKS_PER_STAGE):
                x = _block(
                    x, name=f"stage{stage + 1}_block{block + 1}",
                    channels=base * 2**stage, stride=2 if stage > 0 and block == 0 else 1,
                )
        return x

    return assemble(options, default_name="resnet_18", total_stride=TOTAL_STRIDE,
                    backbone=backbone, recorded={})
