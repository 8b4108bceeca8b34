"""The zoo's catalog: every model by command-line name, its builder and its facts.

`CATALOG` is the one table: each `ModelSpec` holds the builder (taking the options
`train` exposes) and what the package knows about the model. `build_model`,
`model_spec`, `is_binary` and `is_dynamic` read it; an unknown name is an error that
lists the choices, in every one of them. `MODELS` and `SPECS`, the two dicts this
module kept before, work for one release with a `DeprecationWarning`.
"""

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

__all__ = ["CATALOG", "ModelSpec", "model_spec", "build_model", "is_binary", "is_dynamic"]

#: The tiny models' hyper-function reduction when none is given.
TINY_REDUCTION = 4


#: Options only the zoo DyBNN models take (`ModelSpec.hyper_options`), with the value
#: that means "as the paper": how the hyper functions pool and what they are fed.
HYPER_OPTIONS = {"hyper_pool_stride": 1, "hyper_input": "layer"}


def _tiny(dynamic: bool) -> Callable[..., tf.keras.Model]:
    def build(*, input_shape, num_classes, width_multiplier, stem, binary_weights,
              dynamic_parts, reduction):
        del stem  # TinyDyBNN keeps the input resolution
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
              dynamic_parts, reduction, **hyper):
        extra = dict(dynamic=dynamic_parts, reduction=reduction, **hyper) if dynamic else {}
        return builder(
            input_shape=input_shape, num_classes=num_classes,
            width_multiplier=width_multiplier, stem=stem, binary_weights=binary_weights,
            **extra,
        )

    return build


def _float_resnet(*, input_shape, num_classes, width_multiplier, stem, binary_weights,
                  dynamic_parts, reduction):
    del binary_weights, dynamic_parts, reduction  # real-valued throughout
    return ResNet18(
        input_shape=input_shape, num_classes=num_classes,
        width_multiplier=width_multiplier, stem=stem,
    )


@dataclass(frozen=True)
class ModelSpec:
    """A catalog entry: a model's builder and what the package knows about it.

    Attributes:
        name: the command-line name.
        build: the builder, taking keyword-only `input_shape`, `num_classes`,
            `width_multiplier`, `stem`, `binary_weights`, `dynamic_parts`,
            `reduction`, and `HYPER_OPTIONS` when `hyper_options` (use `build_model`).
        binary: a binary network (False: the real-valued teacher).
        dynamic: a DyBNN model (dynamic thresholds by default).
        default_reduction: the hyper-function reduction when none is given (None for
            models without hyper functions).
        records_reduction: `train` records the reduction it builds this model with
            (the zoo DyBNN models, whose default changed once).
        hyper_options: the builder takes `HYPER_OPTIONS` (the zoo DyBNN models).
    """

    name: str
    build: Callable[..., tf.keras.Model]
    binary: bool
    dynamic: bool
    default_reduction: int | None
    records_reduction: bool
    hyper_options: bool = False


#: Every command-line model name and its entry.
CATALOG: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("tiny-dybnn", _tiny(True), True, True, TINY_REDUCTION, False),
    ModelSpec("tiny-reactnet", _tiny(False), True, False, None, False),
    ModelSpec("dybnn-reactnet-18", _zoo(DyBNNReActNet18, True), True, True,
              DEFAULT_REDUCTION, True, hyper_options=True),
    ModelSpec("reactnet-18", _zoo(ReActNet18, False), True, False, None, False),
    ModelSpec("dybnn-reactnet-a", _zoo(DyBNNReActNetA, True), True, True,
              DEFAULT_REDUCTION, True, hyper_options=True),
    ModelSpec("reactnet-a", _zoo(ReActNetA, False), True, False, None, False),
    ModelSpec("resnet-18", _float_resnet, False, False, None, False),
)}

#: The models that take `HYPER_OPTIONS`.
HYPER_MODELS = tuple(name for name, spec in CATALOG.items() if spec.hyper_options)


def __getattr__(name: str):
    if name in ("MODELS", "SPECS"):
        import warnings

        warnings.warn(f"larq_dybnn.zoo.{name} is deprecated and will be removed in the "
                      "next release; use larq_dybnn.zoo.CATALOG (name -> ModelSpec, with "
                      "the builder in ModelSpec.build).", DeprecationWarning, stacklevel=2)
        return ({n: spec.build for n, spec in CATALOG.items()} if name == "MODELS"
                else dict(CATALOG))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_spec(name: str) -> ModelSpec:
    """The facts of a command-line model name.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in CATALOG:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(CATALOG)}.")
    return CATALOG[name]


def is_binary(name: str) -> bool:
    """Whether the named model is a binary network (everything but the teacher).

    Raises:
        ValueError: for an unknown name.
    """
    return model_spec(name).binary


def is_dynamic(name: str) -> bool:
    """Whether the named model is a DyBNN model (dynamic thresholds by default).

    Raises:
        ValueError: for an unknown name.
    """
    return model_spec(name).dynamic


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
    hyper_input: str = "layer",
) -> tf.keras.Model:
    """Build a zoo model by its command-line name.

    Arguments:
        name: a key of `CATALOG`.
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
        hyper_input: zoo DyBNN models only: "layer", "block" or "constant", what
            the hyper functions are fed (see `larq_dybnn.zoo.DyBNNReActNetA`).

    Returns:
        The model (logits out).

    Raises:
        ValueError: for an unknown name, or options the model does not take.
    """
    spec = model_spec(name)  # an unknown name is an error naming the choices
    if stem is None:
        stem = "cifar" if max(input_shape[:2]) <= 64 else "imagenet"
    hyper = {"hyper_pool_stride": hyper_pool_stride, "hyper_input": hyper_input}
    if not spec.hyper_options:
        changed = [option for option, value in hyper.items() if value != HYPER_OPTIONS[option]]
        if changed:
            raise ValueError(f"`{changed[0]}` needs a zoo DyBNN model "
                             f"({', '.join(HYPER_MODELS)}), not {name!r}.")
        hyper = {}
    return spec.build(
        input_shape=tuple(input_shape), num_classes=num_classes,
        width_multiplier=width_multiplier, stem=stem, binary_weights=binary_weights,
        dynamic_parts=dynamic, reduction=reduction, **hyper,
    )
