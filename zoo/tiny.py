"""A few-block ReActNet-style DyBNN for quick experiments, demos and tests."""

from __future__ import annotations

import tensorflow as tf

from larq_dybnn._gc import fewer_collections
from larq_dybnn import _checks
from larq_dybnn.zoo.blocks import Thresholds, batch_norm, binary_conv

__all__ = ["TinyDyBNN"]


@fewer_collections()
def TinyDyBNN(  # noqa: N802 - larq-zoo names models like classes
    *,
    input_shape: tuple[int, int, int] | None = None,
    input_tensor: tf.Tensor | None = None,
    num_classes: int = 10,
    include_top: bool = True,
    width: int = 32,
    blocks: int = 2,
    dynamic: bool = True,
    reduction: int = 8,
    output_bound: float | None = None,
    kernel_quantizer: str = "magnitude_aware_sign",
    binary_weights: bool = True,
    name: str | None = None,
) -> tf.keras.Model:
    """A small binary network: a float stem, then `blocks` ReActNet basic blocks.

    Each block is DynamicSign -> binary 3x3 QuantConv2D (binary weights,
    weight_clip, pad_values=1.0) -> BatchNorm -> + shortcut ->
    DynamicPReLU, built by the zoo's block factories (`larq_dybnn.zoo.blocks`, so
    BatchNorm has the zoo's momentum 0.9 and epsilon 1e-5); the head is global
    average pooling and a float Dense layer.

    Arguments:
        input_shape: `(height, width, channels)`; required unless `input_tensor`.
        input_tensor: optional Keras tensor to use as the model's input.
        num_classes: number of classes of the top layer.
        include_top: whether to add the pooling and Dense head.
        width: channels of the stem and of every block.
        blocks: number of binary blocks.
        dynamic: True for DynamicSign/DynamicPReLU, False for ReActNet's static
            RSign/RPReLU (the same layers with their dynamic terms off).
        reduction: hyper-function reduction ratio.
        output_bound: bound of the dynamic terms (`s * tanh`), None for unbounded.
        kernel_quantizer: binary weight quantizer, "magnitude_aware_sign" (ReActNet)
            or "ste_sign".
        binary_weights: False keeps the conv weights real-valued (step 1 of
            ReActNet's recipe); the layer names stay the same, so
            `larq_dybnn.training.recipe.transfer_weights` carries step 1 into step 2.
        name: model name; defaults to "tiny_dybnn" or "tiny_reactnet".

    Returns:
        A `tf.keras.Model`.

    Raises:
        ValueError: if neither `input_shape` nor `input_tensor` is given, or a size
            argument is not a positive integer.
    """
    width = _checks.positive_int("width", width)
    blocks = _checks.positive_int("blocks", blocks)
    num_classes = _checks.positive_int("num_classes", num_classes)
    if input_tensor is None:
        if input_shape is None:
            raise ValueError("Give `input_shape` (height, width, channels) or `input_tensor`.")
        inputs = tf.keras.Input(shape=input_shape)
    else:
        inputs = input_tensor
    thresholds = Thresholds(dynamic_sign=dynamic, dynamic_prelu=dynamic,
                            reduction=_checks.positive_int("reduction", reduction),
                            output_bound=output_bound)
    x = tf.keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = batch_norm("stem_bn")(x)
    for block in range(1, blocks + 1):
        shortcut = x
        x = binary_conv(width, 3, input_quantizer=thresholds.sign(f"block{block}_sign"),
                        binary_weights=binary_weights, kernel_quantizer=kernel_quantizer,
                        name=f"block{block}_conv")(x)
        x = batch_norm(f"block{block}_bn")(x)
        x = tf.keras.layers.Add(name=f"block{block}_add")([x, shortcut])
        x = thresholds.prelu(f"block{block}_prelu")(x)
    if include_top:
        x = tf.keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
        x = tf.keras.layers.Dense(num_classes, name="logits")(x)
    default_name = "tiny_dybnn" if dynamic else "tiny_reactnet"
    return tf.keras.Model(inputs, x, name=name or default_name)
