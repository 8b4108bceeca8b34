"""Per-layer initialization: every weight drawn from a seed and its own path.

Keras draws unseeded initializers from one global random stream, in the order the
layers are built. A DyBNN model builds a hyper function inside every DynamicSign and
DynamicPReLU, so with the same global seed every later layer of the DyBNN model gets
other random values than the same layer of its ReActNet twin, and the whole
seed-to-seed spread enters each paired comparison.

`initialize_per_layer(model, seed=s)` redraws every weight with the initializer its
layer was built with, seeded from `s` and the weight's path in the model
("stage1_block1_conv/stage1_block1_sign/threshold"). Two models whose layers share
names and shapes then start from identical shared weights, whatever extra layers
one of them has.
"""

from __future__ import annotations

import collections.abc
import hashlib
from typing import Iterator

import tensorflow as tf

from larq_dybnn.hyper import HyperFunction
from larq_dybnn.layers import DynamicPReLU

__all__ = ["initialize_per_layer", "weight_paths", "path_seed"]

#: Weight attribute -> initializer attribute (or initializer name), where a layer
#: does not follow Keras' `<weight>_initializer` convention.
_SPECIAL = {
    HyperFunction: {
        "hidden_kernel": "kernel_initializer",
        "hidden_bias": "zeros",
        "head_kernels": "output_initializer",
        "head_biases": "output_initializer",
        "context": "ones",
    },
    DynamicPReLU: {"gamma": "shift_initializer", "zeta": "shift_initializer"},
}
_CONVENTION = {"depthwise_kernel": "depthwise_initializer",
               "pointwise_kernel": "pointwise_initializer"}


def path_seed(seed: int, path: str) -> int:
    """A 31-bit seed from a run's `seed` and a weight's `path` (stable across
    processes and Python versions)."""
    digest = hashlib.sha256(f"{int(seed)}:{path}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _own_weights(layer: tf.keras.layers.Layer) -> list[tf.Variable]:
    return list(layer._trainable_weights) + list(layer._non_trainable_weights)


def _children(layer: tf.keras.layers.Layer) -> list[tf.keras.layers.Layer]:
    if isinstance(layer, tf.keras.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _walk(layer: tf.keras.layers.Layer, prefix: str
          ) -> Iterator[tuple[str, tf.keras.layers.Layer, tf.Variable]]:
    seen: set[int] = set()
    for weight in _own_weights(layer):
        if id(weight) not in seen:
            seen.add(id(weight))
            yield f"{prefix}{_attribute(layer, weight)}", layer, weight
    for child in _children(layer):
        yield from _walk(child, f"{prefix}{child.name}/")


def weight_paths(model: tf.keras.layers.Layer
                 ) -> dict[str, tuple[tf.keras.layers.Layer, tf.Variable]]:
    """Every weight of `model` by its path: layer names from the model down to the
    layer that owns the weight, then the weight's attribute ("kernel",
    "head_kernels[1]").

    Arguments:
        model: a built Keras model or layer.

    Returns:
        `{path: (owning layer, variable)}`, each variable once (a shared layer is
        listed where it is first reached).

    Raises:
        ValueError: if a weight is not held by an attribute of its layer.
    """
    found: dict[str, tuple[tf.keras.layers.Layer, tf.Variable]] = {}
    seen: set[int] = set()
    for path, layer, weight in _walk(model, ""):
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        if path in found:
            raise ValueError(f"Two weights of '{model.name}' have the path '{path}'.")
        found[path] = (layer, weight)
    return found


def _attribute(layer: tf.keras.layers.Layer, weight: tf.Variable) -> str:
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue  # Keras' own bookkeeping lists (_trainable_weights...)
        if value is weight:
            return name
        if isinstance(value, collections.abc.Sequence) and not isinstance(value, str):
            for index, item in enumerate(value):
                if item is weight:
                    return f"{name}[{index}]"
    raise ValueError(
        f"Layer '{layer.name}' ({type(layer).__name__}) holds weight '{weight.name}' in "
        "no attribute, so it cannot be initialized per layer."
    )


def _initializer(layer: tf.keras.layers.Layer, attribute: str):
    base = attribute.split("[")[0]
    special = next((table for cls, table in _SPECIAL.items() if isinstance(layer, cls)), {})
    source = special.get(base) or _CONVENTION.get(base) or f"{base}_initializer"
    if hasattr(layer, source):
        return tf.keras.initializers.get(getattr(layer, source))
    if source in special.values() or base in special:
        return tf.keras.initializers.get(source)
    raise ValueError(
        f"Layer '{layer.name}' ({type(layer).__name__}): no initializer for its weight "
        f"'{attribute}' (looked for the attribute `{source}`)."
    )


def _seeded(initializer, seed: int):
    config = initializer.get_config()
    if "seed" not in config:
        return initializer  # constant initializers: zeros, ones, Constant
    return type(initializer).from_config({**config, "seed": seed})


def initialize_per_layer(
    model: tf.keras.layers.Layer, *, seed: int, only: collections.abc.Container[str] | None = None
) -> int:
    """Redraw the weights of a built model, each from `seed` and its own path.

    Each weight gets the initializer its layer was built with (a Conv2D kernel its
    `kernel_initializer`, a HyperFunction's heads their `output_initializer`...),
    seeded with `path_seed(seed, path)`. Random initializers give the same values for
    the same seed, path and shape in any model and process; constant ones give their
    constants.

    Arguments:
        model: a built Keras model (or layer).
        seed: the run's seed.
        only: paths to initialize (see `weight_paths`); None for every weight.

    Returns:
        How many weights were initialized.

    Raises:
        ValueError: naming the layer and weight whose initializer cannot be found;
            nothing is assigned then.
    """
    if not model.built:
        raise ValueError(f"`model` '{model.name}' is not built yet; build it first.")
    plan = []
    for path, (layer, weight) in weight_paths(model).items():
        if only is not None and path not in only:
            continue
        attribute = path.rsplit("/", 1)[-1]
        plan.append((path, weight, _initializer(layer, attribute)))
    for path, weight, initializer in plan:
        value = _seeded(initializer, path_seed(seed, path))(
            tuple(weight.shape), dtype=weight.dtype)
        weight.assign(value)
    return len(plan)
