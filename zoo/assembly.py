"""What every zoo builder shares: its common arguments (`BuilderOptions`), and the
assembly around a backbone (`assemble`: input checks, classifier head, model,
weights), as larq-zoo's model factories share theirs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import tensorflow as tf

from larq_dybnn.contract import InputContract, attach_contract
from larq_dybnn.zoo.inputs import model_input
from larq_dybnn.zoo.weights import load_weights, registered_entry, resolve_num_classes


@dataclass(frozen=True)
class BuilderOptions:
    """The arguments every zoo builder takes: larq-zoo's (`input_shape`,
    `input_tensor`, `weights`, `include_top`, `num_classes`), the width and stem, the
    step-1 switch to real-valued weights, and the model's name."""

    input_shape: Sequence[int | None] | None = None
    input_tensor: tf.Tensor | None = None
    weights: str | None = None
    include_top: bool = True
    num_classes: int | None = None
    width_multiplier: float = 1.0
    stem: str = "imagenet"
    binary_weights: bool = True
    name: str | None = None

    @classmethod
    def of(cls, arguments: dict) -> "BuilderOptions":
        """The shared options among a builder's arguments (its `locals()`)."""
        return cls(**{field.name: arguments[field.name] for field in dataclasses.fields(cls)
                      if field.name in arguments})


def assemble(
    options: BuilderOptions,
    *,
    default_name: str,
    total_stride: int,
    backbone: Callable[[tf.Tensor], tf.Tensor],
    recorded: dict,
) -> tf.keras.Model:
    """Check the inputs, run `backbone` on them, add the head and load the weights.

    Arguments:
        options: the builder's shared options.
        default_name: the builder's model name, also its weights-registry key.
        total_stride: the backbone's total stride (the smallest input it takes).
        backbone: the input tensor -> the last feature map.
        recorded: the builder's own options that named weights must match (beside
            the width, stem and input shape).

    Returns:
        The model.
    """
    num_classes = resolve_num_classes(options.num_classes, options.weights,
                                      model=default_name)
    inputs, _ = model_input(
        input_shape=options.input_shape, input_tensor=options.input_tensor,
        include_top=options.include_top, num_classes=num_classes,
        width_multiplier=options.width_multiplier, stem=options.stem,
        total_stride=total_stride, weights=options.weights, model_name=default_name,
    )
    return finish_model(
        inputs, backbone(inputs), input_tensor=options.input_tensor,
        include_top=options.include_top, num_classes=num_classes, weights=options.weights,
        name=options.name, default_name=default_name,
        options={"width_multiplier": options.width_multiplier, "stem": options.stem,
                 "input_shape": tuple(inputs.shape[1:]), **recorded},
    )


def finish_model(
    inputs: tf.Tensor,
    features: tf.Tensor,
    *,
    input_tensor: tf.Tensor | None,
    include_top: bool,
    num_classes: int,
    weights: str | None,
    name: str | None,
    default_name: str,
    options: dict | None = None,
) -> tf.keras.Model:
    """Add the head (global pooling, float Dense "logits"), make the model, load weights.

    Arguments:
        inputs: the model's input layer.
        features: the backbone's last feature map.
        input_tensor: the user's input tensor, if any (its sources become the inputs).
        include_top: whether to add the head.
        num_classes: outputs of the head.
        weights: as the zoo builders' `weights`; named weights with an input
            contract make the model carry it (`larq_dybnn.contract.attach_contract`).
        name: model name, or None for `default_name`.
        default_name: the builder's model name, also its weights-registry key.
        options: the builder's options, checked against those of named weights.

    Returns:
        The model.
    """
    from larq_zoo.core import utils as zoo_utils  # on first use (zoo/__init__.py)

    x = features
    if include_top:
        # larq-zoo's pooling: AveragePooling2D + Flatten, faster than MEAN in LCE.
        x = zoo_utils.global_pool(x, name="global_pool")
        x = tf.keras.layers.Dense(num_classes, name="logits")(x)
    model_inputs = (
        inputs if input_tensor is None else tf.keras.utils.get_source_inputs(input_tensor)
    )
    model = tf.keras.Model(model_inputs, x, name=name or default_name)
    load_weights(
        model, weights, model_name=default_name, include_top=include_top,
        num_classes=num_classes, options=options,
    )
    entry = registered_entry(weights, model=default_name)
    if entry is not None and entry.input_contract is not None and include_top:
        attach_contract(model, InputContract.from_dict(
            entry.input_contract, source=f"the weights '{weights}' of {default_name}"))
    return model
