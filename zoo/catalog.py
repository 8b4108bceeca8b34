"""The zoo's models by command-line name, built from the options `train` exposes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from larq_dybnn.hyper import DEFAULT_REDUCTION
from larq_dybnn.zoo.blocks import scaled
from larq_dybnn.zoo.reactnet_18 import DyBNNReActNet18, ReActNet18
from larq_dybnn.zoo.reactnet_a import DyBNNReActNetA, ReActNetA
from larq_dybnn.zoo.resnet import ResNet18
from larq_dybnn.zoo.tiny import TinyDyBNN

__all__ = ["MODELS", "SPECS", "ModelSpec", "model_spec", "build_model", "is_binary",
           "is_dynamic"]

#: The tiny models' hyper-function reduction when none is given.
TINY_REDUCTION = 4


def _tiny(dynamic: bool) -> Callable[..., tf.keras.Model]:
    def build(*, input_shape, num_classes, width_multiplier, stem, binary_weights,
              dynamic_parts, reduction, hyper_pool_stride=1):
        del stem  # TinyDyBNN keeps the input resolution
        if hyper_pool_stride != 1:
            raise ValueError("`hyper_pool_stride` needs a zoo DyBNN model "
                             "(dybnn-reactnet-18, dybnn-reactnet-a).")
        if dynamic and dynamic_parts not in ("both", "none"):
            raise ValueError(
                "The tiny models turn both DynamicSign and DynamicPReLU on or off; "
                f"`dynamic`={dynamic_parts!r} needs a zoo model (reactnet-18, reactnet-a)."
            )
        return TinyDyBNN(
            input_shape=input_shape, num_classes=num_classes,
            width=scaled(32, width_multiplier), blocks=2,
            dynamic=dynamic and dynamic_parts == "both",
            reduction=reduction or TINY_REDUCTION, binary_weights=binary_weights,
        )

    return build


def _zoo(builder, dynamic: bool) -> Callable[..., tf.keras.Model]:
    def build(*, input_shape, num_classes, width_multiplier, stem, binary_weights,
              dynamic_parts, reduction, hyper_pool_stride=1):
        extra = {}
        if dynamic:
            extra = dict(dynamic=dynamic_parts, reduction=reduction,
                         hyper_pool_stride=hyper_pool_stride)
        elif hyper_pool_stride != 1:
            raise ValueError("`hyper_pool_stride` needs a DyBNN model.")
        return builder(
            input_shape=input_shape, num_classes=num_classes,
            width_multiplier=width_multiplier, stem=stem, binary_weights=binary_weights,
            **extra,
        )

    return build


def _float_resnet(*, input_shape, num_classes, width_multiplier, stem, binary_weights,
                  dynamic_parts, reduction, hyper_pool_stride=1):
    del binary_weights, dynamic_parts, reduction  # real-valued throughout
    if hyper_pool_stride != 1:
        raise ValueError("`hyper_pool_stride` needs a DyBNN model.")
    return ResNet18(
        input_shape=input_shape, num_classes=num_classes,
        width_multiplier=width_multiplier, stem=stem,
    )


#: Command-line model names and their builders.
MODELS: dict[str, Callable[..., tf.keras.Model]] = {
    "tiny-dybnn": _tiny(True),
    "tiny-reactnet": _tiny(False),
    "dybnn-reactnet-18": _zoo(DyBNNReActNet18, True),
    "reactnet-18": _zoo(ReActNet18, False),
    "dybnn-reactnet-a": _zoo(DyBNNReActNetA, True),
    "reactnet-a": _zoo(ReActNetA, False),
    "resnet-18": _float_resnet,
}


@dataclass(frozen=True)
class ModelSpec:
    """What the package knows about a model name: the one place that decides it.

    Attributes:
        name: the command-line name.
        binary: a binary network (False: the real-valued teacher).
        dynamic: a DyBNN model (dynamic thresholds by default).
        default_reduction: the hyper-function reduction when none is given (None for
            models without hyper functions).
        records_reduction: `train` records the reduction it builds this model with
            (the zoo DyBNN models, whose default changed once).
    """

    name: str
    binary: bool
    dynamic: bool
    default_reduction: int | None
    records_reduction: bool


#: Every command-line model name and its facts.
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("tiny-dybnn", True, True, TINY_REDUCTION, False),
    ModelSpec("tiny-reactnet", True, False, None, False),
    ModelSpec("dybnn-reactnet-18", True, True, DEFAULT_REDUCTION, True),
    ModelSpec("reactnet-18", True, False, None, False),
    ModelSpec("dybnn-reactnet-a", True, True, DEFAULT_REDUCTION, True),
    ModelSpec("reactnet-a", True, False, None, False),
    ModelSpec("resnet-18", False, False, None, False),
)}


def model_spec(name: str) -> ModelSpec:
    """The facts of a command-line model name.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in SPECS:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(SPECS)}.")
    return SPECS[name]


def is_binary(name: str) -> bool:
    """Whether the named model is a binary network (everything but the teacher)."""
    return model_spec(name).binary


def is_dynamic(name: str) -> bool:
    """Whether the named model is a DyBNN model (dynamic thresholds by default)."""
    return name in SPECS and SPECS[name].dynamic


def build_model(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    width_multiplier: float = 1.0,
    stem: str | None = None,
    binary_weights: bool = True,
    dynamic: str = "both",
    reduction: int | None = None,
    hyper_pool_stride: int = 1,
) -> tf.keras.Model:
    """Build a zoo model by its command-line name.

    Arguments:
        name: one of `MODELS`.
        input_shape: `(height, width, 3)`.
        num_classes: classifier outputs.
        width_multiplier: channel multiplier (the tiny models scale 32 channels).
        stem: "imagenet" or "cifar"; None picks "cifar" up to 64 pixels.
        binary_weights: False for step 1 of ReActNet's recipe (real-valued weights).
        dynamic: DyBNN models only: "both", "sign", "prelu" or "none".
        reduction: DyBNN models only: hyper-function reduction (None: the model's
            `ModelSpec.default_reduction`, 4 for the tiny models and
            `DEFAULT_REDUCTION` = 64 for the zoo, or that of named weights).
        hyper_pool_stride: zoo DyBNN models only: the hyper functions pool every
            `hyper_pool_stride`-th row and column (1: global average pooling).

    Returns:
        The model (logits out).

    Raises:
        ValueError: for an unknown name, or options the model does not take.
    """
    model_spec(name)  # an unknown name is an error naming the choices
    if stem is None:
        stem = "cifar" if max(input_shape[:2]) <= 64 else "imagenet"
    return MODELS[name](
        input_shape=tuple(input_shape), num_classes=num_classes,
        width_multiplier=width_multiplier, stem=stem, binary_weights=binary_weights,
        dynamic_parts=dynamic, reduction=reduction, hyper_pool_stride=hyper_pool_stride,
    )
