"""`dynamize`: the DyBNN twin of a trained static binary network.

A Larq user with a trained binary model (ReActNet, or their own network with
`ste_sign`/`approx_sign` activations) can add DyBNN's input-conditioned thresholds and
shifts without training from scratch: every sign activation quantizer becomes a
`DynamicSign` and every channel-shared PReLU / RPReLU a `DynamicPReLU`, all weights
are carried over, and the new hyper functions start with zero output heads, so the
twin computes exactly what the static model computed until it is fine-tuned.
"""

from __future__ import annotations

from typing import Sequence

import larq as lq
import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.hyper import DEFAULT_REDUCTION, DYNAMIC_PARTS
from larq_dybnn.initialization import initialize_per_layer, weight_paths
from larq_dybnn.layers import DynamicPReLU
from larq_dybnn.quantizers import DynamicSign

__all__ = ["dynamize", "DYNAMIC_CHOICES"]

#: The `dynamic` values `dynamize` takes: those of `larq_dybnn.hyper.DYNAMIC_PARTS`
#: that make something dynamic.
DYNAMIC_CHOICES = {name: parts for name, parts in DYNAMIC_PARTS.items() if any(parts)}


class _Plan:
    """The options of one `dynamize` call and what it changed."""

    def __init__(self, *, sign: bool, prelu: bool, reduction: int, min_hidden: int,
                 output_bound: float | None, hyper_initializer: object,
                 exclude: Sequence[str]):
        self.sign, self.prelu = sign, prelu
        self.hyper = dict(reduction=reduction, min_hidden=min_hidden,
                          output_bound=output_bound, hyper_initializer=hyper_initializer)
        self.exclude = set(exclude)
        self.signs: list[str] = []  # layers whose input quantizer became dynamic
        self.prelus: list[str] = []
        self.already_dynamic = {"sign": 0, "prelu": 0}  # layers dynamic already

    def _hyper_config(self) -> dict:
        return {**self.hyper, "hyper_initializer": tf.keras.initializers.serialize(
            tf.keras.initializers.get(self.hyper["hyper_initializer"]))}

    # -- quantizers ------------------------------------------------------------------
    def _dynamic_sign(self, layer, quantizer) -> DynamicSign | None:
        """The DynamicSign replacing `layer`'s input quantizer, or None to keep it."""
        name = f"{layer.name}_sign"
        if isinstance(quantizer, DynamicSign):
            if quantizer.dynamic_threshold:
                self.already_dynamic["sign"] += 1
                return None
            config = {**quantizer.get_config(), **self._hyper_config(),
                      "dynamic_threshold": True}
            return DynamicSign.from_config(config)
        if quantizer is lq.quantizers.ste_sign:
            estimator, clip = "ste_sign", 1.0
        elif quantizer is lq.quantizers.approx_sign:
            estimator, clip = "approx_sign", 1.0
        elif type(quantizer) is lq.quantizers.SteSign:
            estimator, clip = "ste_sign", float(quantizer.clip_value)
        elif type(quantizer) is lq.quantizers.ApproxSign:
            estimator, clip = "approx_sign", 1.0
        else:
            described = getattr(quantizer, "__name__", type(quantizer).__name__)
            raise ValueError(
                f"Layer '{layer.name}': its input quantizer {described} is not a sign "
                "that dynamize can make dynamic (ste_sign, approx_sign, SteSign, "
                "ApproxSign or DynamicSign); pass `exclude=['" + layer.name + "']` to "
                "keep it static."
            )
        return DynamicSign(estimator=estimator, clip_value=clip, dynamic_threshold=True,
                           name=name, **self.hyper)

    def _quant_layer(self, layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer | None:
        quantizer = getattr(layer, "input_quantizer", None)
        if quantizer is None or not self.sign:
            return None
        if _input_rank(layer) != 4:
            raise ValueError(
                f"Layer '{layer.name}' ({type(layer).__name__}) binarizes an input of rank "
                f"{_input_rank(layer)}; a dynamic threshold pools over height and width "
                "and needs 4-D NHWC inputs. Pass `exclude=['" + layer.name + "']` to keep "
                "it static."
            )
        replacement = self._dynamic_sign(layer, quantizer)
        if replacement is None:
            return None
        config = layer.get_config()
        config["input_quantizer"] = replacement
        self.signs.append(layer.name)
        return type(layer).from_config(config)

    # -- PReLU -----------------------------------------------------------------------
    def _prelu(self, layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer | None:
        if not self.prelu:
            return None
        if isinstance(layer, DynamicPReLU):
            if layer.dynamic_shifts:
                self.already_dynamic["prelu"] += 1
                return None
            self.prelus.append(layer.name)
            return DynamicPReLU.from_config(
                {**layer.get_config(), **self._hyper_config(), "dynamic_shifts": True})
        if type(layer) is tf.keras.layers.PReLU:
            problems = []
            if _input_rank(layer) != 4:
                problems.append(f"its input has rank {_input_rank(layer)}, not 4 (NHWC)")
            if sorted(layer.shared_axes or []) != [1, 2]:
                problems.append(f"shared_axes={layer.shared_axes}, where a DynamicPReLU "
                                "has one slope per channel (shared_axes=[1, 2])")
            if layer.alpha_regularizer is not None or layer.alpha_constraint is not None:
                problems.append("its slope has a regularizer or constraint")
            if problems:
                raise ValueError(
                    f"Layer '{layer.name}' (PReLU) cannot become a DynamicPReLU: "
                    + "; ".join(problems) + f". Pass `exclude=['{layer.name}']` to keep it.")
            self.prelus.append(layer.name)
            return DynamicPReLU(alpha_initializer=layer.alpha_initializer,
                                dynamic_shifts=True, name=layer.name, **self.hyper)
        return None

    def clone(self, layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        """`clone_model`'s clone function."""
        if isinstance(layer, tf.keras.Model):
            return _clone_model(layer, self)
        if layer.name not in self.exclude:
            replacement = self._quant_layer(layer) or self._prelu(layer)
            if replacement is not None:
                return replacement
        return type(layer).from_config(layer.get_config())


def _input_rank(layer: tf.keras.layers.Layer) -> int | None:
    try:
        shape = layer.input_shape
    except (AttributeError, RuntimeError):
        return None
    return len(shape) if isinstance(shape, tuple) else None


def _clone_model(model: tf.keras.Model, plan: _Plan) -> tf.keras.Model:
    is_graph = isinstance(model, tf.keras.Sequential) or getattr(
        model, "_is_graph_network", False)
    if not is_graph:
        raise ValueError(
            f"Model '{model.name}' ({type(model).__name__}) is a subclassed model; "
            "dynamize rebuilds Functional and Sequential models from their layers.")
    return tf.keras.models.clone_model(model, clone_function=plan.clone)


def dynamize(
    model: tf.keras.Model,
    *,
    dynamic: str = "both",
    reduction: int = DEFAULT_REDUCTION,
    min_hidden: int = 8,
    output_bound: float | None = None,
    hyper_initializer: object = "he_normal",
    exclude: Sequence[str] = (),
    seed: int | None = None,
    name: str | None = None,
) -> tf.keras.Model:
    """The DyBNN twin of a static binary model, with identical outputs until trained.

    Every layer whose `input_quantizer` is a sign (`ste_sign`, `approx_sign`, `SteSign`,
    `ApproxSign`, or a static `DynamicSign`, i.e. ReActNet's RSign) gets a dynamic
    `DynamicSign` with the same gradient estimator and static threshold; every
    `PReLU(shared_axes=[1, 2])` and static `DynamicPReLU` (ReActNet's RPReLU) becomes a
    dynamic `DynamicPReLU` with the same slope and shifts. All weights are copied; the
    new hyper functions' output heads are zero, so each dynamic term is exactly 0 and
    the twin's outputs equal the model's, bit for bit, until it is fine-tuned. Names
    of the layers are kept, so the twin of a zoo ReActNet has the weights and layer
    names of the zoo's DyBNN model of the same options.

    The twin is not compiled: compile it (e.g. with a small learning rate) and call
    `fit`. It saves, loads and converts as any DyBNN model: every binary conv stays
    an `LceBconv2d`.

    ```python
    static = tf.keras.models.load_model("reactnet.keras")
    twin = larq_dybnn.dynamize(static, dynamic="both")
    twin.compile(tf.keras.optimizers.Adam(1e-4), ...)
    twin.fit(...)
    ```

    Arguments:
        model: a built Functional or Sequential Keras model (nested ones are walked).
        dynamic: "both", "sign" (thresholds only) or "prelu" (shifts only).
        reduction: hyper-function reduction `r` (the zoo's default).
        min_hidden: smallest hidden width of a hyper function.
        output_bound: None, or a positive bound of the dynamic terms (`s * tanh`).
        hyper_initializer: initializer of the hyper functions' first FC kernels.
        exclude: names of layers to leave static.
        seed: None, or a seed from which every new hyper-function weight is drawn
            per layer (`larq_dybnn.initialize_per_layer`), for reproducible runs.
        name: the twin's name; None keeps the model's.

    Returns:
        A new `tf.keras.Model`; `model` is not changed.

    Raises:
        ValueError: for a bad option; naming the layer, for a sign quantizer that is
            not a plain sign (e.g. `swish_sign`), a sign on inputs that are not 4-D
            (a `QuantDense`), a PReLU with other shared axes or a constraint; for a
            subclassed model; and when the model has nothing of what `dynamic` asks
            for. Use `exclude` to keep named layers static.
        TypeError: if `model` is not a Keras model.

    References:
        - [Zhang et al., DyBNN, ICASSP 2022](https://arxiv.org/abs/2110.05185)
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"`model` must be a tf.keras.Model, got {type(model).__name__}.")
    if dynamic not in DYNAMIC_CHOICES:
        raise ValueError(f"`dynamic` must be one of {sorted(DYNAMIC_CHOICES)}, got {dynamic!r}.")
    if not model.built:
        raise ValueError(f"`model` '{model.name}' is not built; build or load it first.")
    names = {layer.name for layer in model._flatten_layers(include_self=False)}
    unknown = sorted(set(exclude) - names)
    if unknown:
        raise ValueError(f"`exclude`: model '{model.name}' has no layer {unknown}.")
    sign, prelu = DYNAMIC_CHOICES[dynamic]
    plan = _Plan(
        sign=sign, prelu=prelu, reduction=_checks.positive_int("reduction", reduction),
        min_hidden=_checks.positive_int("min_hidden", min_hidden),
        output_bound=_checks.optional_positive_float("output_bound", output_bound),
        hyper_initializer=hyper_initializer, exclude=exclude,
    )
    twin = _clone_model(model, plan)
    missing = []
    if sign and not plan.signs and not plan.already_dynamic["sign"]:
        missing.append("no sign activation quantizer (ste_sign, approx_sign, RSign)")
    if prelu and not plan.prelus and not plan.already_dynamic["prelu"]:
        missing.append("no PReLU or RPReLU layer")
    if missing:
        hint = {"both": " Pass dynamic='sign' or 'prelu' for the part it has.",
                }.get(dynamic, "")
        raise ValueError(f"Model '{model.name}' has {' and '.join(missing)} to make "
                         f"dynamic (dynamic={dynamic!r}).{hint}")
    new_paths = _copy_weights(model, twin)
    if seed is not None:
        initialize_per_layer(twin, seed=seed, only=new_paths)
    if name is not None:
        twin._name = name
    return twin


def _copy_weights(model: tf.keras.Model, twin: tf.keras.Model) -> set[str]:
    """Copy every weight of `model` to the same path in `twin`; return the paths only
    the twin has (its new thresholds, shifts and hyper functions)."""
    old, new = weight_paths(model), weight_paths(twin)
    lost = sorted(set(old) - set(new))
    if lost:
        raise ValueError(f"dynamize lost weights of '{model.name}': {lost[:10]}")
    for path, (_, weight) in old.items():
        target = new[path][1]
        if tuple(target.shape) != tuple(weight.shape):
            raise ValueError(f"dynamize changed the shape of '{path}': "
                             f"{tuple(weight.shape)} -> {tuple(target.shape)}")
        target.assign(weight)
    for path, (_, weight) in old.items():
        if not np.array_equal(new[path][1].numpy(), weight.numpy()):
            raise ValueError(f"Weight '{path}' did not arrive intact.")
    return set(new) - set(old)
