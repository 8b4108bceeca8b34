"""Input checks of the zoo models, in the manner of `keras.applications`."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.zoo.weights import check_weights

STEMS = ("imagenet", "cifar")


def model_input(
    *,
    input_shape: Sequence[int | None] | None,
    input_tensor: tf.Tensor | None,
    include_top: bool,
    num_classes: int,
    width_multiplier: float,
    stem: str,
    total_stride: dict[str, int],
    weights: str | None,
    model_name: str,
) -> tuple[tf.Tensor, tuple[int | None, int | None, int]]:
    """Check the common zoo arguments (weights included) and make the model's input.

    Arguments:
        input_shape: `(height, width, 3)` or None for the stem's default size
            (224 for "imagenet", 32 for "cifar").
        input_tensor: optional Keras tensor (or tensor) to build the model on.
        include_top: whether the model ends with pooling and the classifier.
        num_classes: classifier outputs.
        width_multiplier: channel multiplier.
        stem: "imagenet" or "cifar".
        total_stride: the backbone's downsampling factor per stem; the input must be
            at least that large.
        weights: the builder's `weights`, checked without downloading.
        model_name: the builder's weights-registry key.

    Returns:
        `(input layer, input shape)`.

    Raises:
        ValueError: for an unknown stem, a bad `num_classes` or `width_multiplier`,
            an input without 3 channels, a spatial size below the backbone's total
            stride, `include_top=True` with an unspecified height or width, or
            `weights` that are unknown or do not fit `num_classes`.
    """
    if stem not in STEMS:
        raise ValueError(f"`stem` must be one of {STEMS}, got {stem!r}.")
    _checks.positive_int("num_classes", num_classes)
    if _checks.optional_positive_float("width_multiplier", width_multiplier) is None:
        raise ValueError("`width_multiplier` must be a positive number, got None.")
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(tf.keras.backend.int_shape(input_tensor)[1:])
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"`input_shape` must be (height, width, channels), got {input_shape}."
            )
        if input_shape[-1] != 3:
            raise ValueError(
                f"`input_shape` must have 3 (RGB) channels, got {input_shape[-1]} in "
                f"{input_shape}. The zoo models take RGB images."
            )
    min_size = total_stride[stem]
    default_size = 224 if stem == "imagenet" else 32
    from larq_zoo.core import utils as zoo_utils  # on first use (zoo/__init__.py)

    # larq-zoo's (and keras.applications') shape logic: default size, min size,
    # and include_top needs a static shape.
    shape = zoo_utils.obtain_input_shape(
        input_shape,
        default_size=default_size,
        min_size=min_size,
        data_format="channels_last",
        require_flatten=include_top,
        weights=None,
    )
    check_weights(weights, model=model_name, include_top=include_top, num_classes=num_classes)
    return zoo_utils.get_input_layer(shape, input_tensor), shape
