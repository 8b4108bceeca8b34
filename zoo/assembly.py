"""The part every zoo backbone ends with: classifier head, model, weights."""

from __future__ import annotations

import tensorflow as tf

from larq_dybnn.contract import InputContract, attach_contract
from larq_dybnn.zoo.weights import load_weights, registered_entry


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
