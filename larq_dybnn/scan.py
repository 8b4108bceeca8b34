"""Find the DyBNN layers of a model, nested models included.

One walk that the int8 export, the converter's op attribution and the training's
threshold probe share, so that they agree on which layers are dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from larq_dybnn.layers import DynamicPReLU
from larq_dybnn.quantizers import DynamicSign

__all__ = ["DynamicLayers", "dynamic_layers", "hyper_weights", "simulate_int8_hyper_kernels"]


@dataclass(frozen=True)
class DynamicLayers:
    """The DyBNN layers of a model, in model order (depth first).

    Attributes:
        signs: layers (QuantConv2D, QuantDense...) whose `input_quantizer` is a
            `DynamicSign`.
        prelus: `DynamicPReLU` layers.
        owners: for each layer of `signs` and `prelus`, the name of the (possibly
            nested) model whose `layers` hold it.
    """

    signs: tuple[tf.keras.layers.Layer, ...]
    prelus: tuple[DynamicPReLU, ...]
    owners: dict[int, str]

    @property
    def sign_names(self) -> set[str]:
        """Names of the layers in `signs`."""
        return {layer.name for layer in self.signs}

    @property
    def prelu_names(self) -> set[str]:
        """Names of the layers in `prelus`."""
        return {layer.name for layer in self.prelus}

    def owner(self, layer: tf.keras.layers.Layer) -> str:
        """The name of the model whose `layers` hold `layer`."""
        return self.owners[id(layer)]


def dynamic_layers(model: tf.keras.Model, *, active_only: bool = True) -> DynamicLayers:
    """The `DynamicSign` and `DynamicPReLU` layers of `model` and its nested models.

    Arguments:
        model: a tf.keras model; layers that are models themselves (a backbone inside
            a Sequential, a distiller's student and teacher) are searched too.
        active_only: keep only layers whose dynamic term is on (a `DynamicSign` with
            `dynamic_threshold`, a `DynamicPReLU` with `dynamic_shifts`); False also
            returns the static ones (RSign / RPReLU built from the same classes).

    Returns:
        A `DynamicLayers`.

    Raises:
        TypeError: if `model` is not a tf.keras model.
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"`model` must be a tf.keras.Model, got {type(model).__name__}.")
    signs: list[tf.keras.layers.Layer] = []
    prelus: list[DynamicPReLU] = []
    owners: dict[int, str] = {}
    seen: set[int] = set()

    def walk(container: tf.keras.Model) -> None:
        for layer in container.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            quantizer = getattr(layer, "input_quantizer", None)
            if isinstance(quantizer, DynamicSign) and (
                    quantizer.dynamic_threshold or not active_only):
                signs.append(layer)
                owners[id(layer)] = container.name
            elif isinstance(layer, DynamicPReLU) and (layer.dynamic_shifts or not active_only):
                prelus.append(layer)
                owners[id(layer)] = container.name
            elif isinstance(layer, tf.keras.Model):
                walk(layer)

    walk(model)
    return DynamicLayers(tuple(signs), tuple(prelus), owners)


def hyper_weights(model: tf.keras.Model) -> list[tf.Variable]:
    """The trainable weights of the hyper functions of `model`'s dynamic thresholds
    and shifts (the layers of `dynamic_layers`, nested models included).

    Arguments:
        model: a tf.keras model.

    Returns:
        The variables in the order of `model.trainable_variables`; empty for a model
        without dynamic terms.

    Raises:
        TypeError: if `model` is not a tf.keras model.
    """
    found = dynamic_layers(model)
    owners = [layer.input_quantizer for layer in found.signs] + list(found.prelus)
    wanted = {id(v) for owner in owners for v in owner.hyper.trainable_variables}
    return [v for v in model.trainable_variables if id(v) in wanted]


def simulate_int8_hyper_kernels(model: tf.keras.Model, *, enabled: bool = True) -> int:
    """Make the hyper functions of `model` compute with their kernels on the int8 grid.

    The default export stores the hyper functions' fully-connected kernels in int8,
    so the exported file computes the model with those kernels rounded, and a
    binary network turns the small change into other answers for some images (about
    5% for the shipped CIFAR-10 DyBNN). Trained (or fine-tuned) with this switched
    on, the model computes what its int8 file computes: the forward pass uses the
    rounded kernels, the gradients reach the float kernels unchanged
    (straight-through). The setting is saved with the model
    (`int8_hyper_kernels` of `DynamicSign` and `DynamicPReLU`). The model's traced
    `fit`/`evaluate`/`predict` functions are dropped, so they trace the new setting.

    Arguments:
        model: a tf.keras model; nested models are searched.
        enabled: True to simulate, False to compute with the float kernels again.

    Returns:
        How many layers with a hyper function were set.

    Raises:
        TypeError: if `model` is not a tf.keras model.
    """
    found = dynamic_layers(model)
    owners = [layer.input_quantizer for layer in found.signs] + list(found.prelus)
    for owner in owners:
        owner.int8_hyper_kernels = enabled
    # Keras keeps the traced predict/train/test functions: trace them again.
    for traced in (model, *(m for m in model.submodules if isinstance(m, tf.keras.Model))):
        traced.train_function = traced.test_function = traced.predict_function = None
    return len(owners)
