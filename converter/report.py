"""Export a model to LCE and prove the file right: binary layers, ops, size, parity,
latency, in one report."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.contract import InputContract, read_contract
from larq_dybnn.converter.binary import BinaryCheck
from larq_dybnn.converter.conversion import Conversion, convert, weights_digest
from larq_dybnn.converter.export import check_model
from larq_dybnn.converter.flatbuffer import Operator, layer_of, read_operators
from larq_dybnn.converter.int8 import Int8Weights, round_hyper_weights
from larq_dybnn.converter.latency import Latency, measure_latency
from larq_dybnn.converter.interpreter import DEFAULT_KERNEL
from larq_dybnn.converter.parity import Parity, parity_of, run_keras, run_keras_and_lce
from larq_dybnn.scan import dynamic_layers

__all__ = ["ConversionReport", "export_and_verify", "load_model", "threshold_ops"]

from larq_dybnn.loading import load_model  # noqa: E402  (re-exported)

# Ops a static RSign / RPReLU already has; the dynamic versions add the rest.
_STATIC_SIGN_OPS = collections.Counter({"SUB": 1})
_STATIC_PRELU_OPS = collections.Counter({"SUB": 1, "PRELU": 1, "ADD": 1})
_BINARY_OPS = ("LceQuantize", "LceBconv2d", "LceDequantize")


def _check_finite_weights(model: tf.keras.Model) -> None:
    bad = [w.name for w in model.weights if not np.all(np.isfinite(w.numpy()))]
    if bad:
        raise ValueError(
            f"Model '{model.name}' has non-finite weights (NaN or inf) in "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; a diverged model "
            "is not exported.")


def _checked_labels(labels, model: tf.keras.Model, samples) -> np.ndarray:
    labels = np.asarray(labels)
    classes = int(model.output_shape[-1])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`labels` must be a 1-D array of class indices, got shape "
                         f"{labels.shape} of {labels.dtype}.")
    if samples is not None and len(labels) != len(samples):
        raise ValueError(f"`labels` has {len(labels)} entries for {len(samples)} samples.")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"`labels` must be class indices in [0, {classes}) for a model "
                         f"with {classes} outputs, got values from {labels.min()} to "
                         f"{labels.max()}.")
    return labels


def threshold_ops(model: tf.keras.Model, operators: Sequence[Operator]) -> dict:
    """Attribute float ops to the model's dynamic threshold layers.

    Ops are attributed by the layer name in their output tensor's name.

    Returns:
        A dict with `dynamic_sign_layers`, `dynamic_prelu_layers`, `ops` (all float
        ops of those layers), `added_ops` (what the dynamic terms add over static
        RSign/RPReLU), `per_dynamic_sign` (each DynamicSign's ops) and `minimal`
        (every DynamicSign adds only MEAN, FULLY_CONNECTED with fused ReLU,
        FULLY_CONNECTED, and one SUB).
    """
    found = dynamic_layers(model)
    signs, prelus = found.sign_names, found.prelu_names
    per_layer: dict[str, list[Operator]] = collections.defaultdict(list)
    for op in operators:
        owner = layer_of(op.outputs[0], signs | prelus) if op.outputs else None
        # DEQUANTIZE ops only unpack int8-stored weights (once, when the file loads).
        if owner is not None and op.name not in _BINARY_OPS and op.name != "DEQUANTIZE":
            per_layer[owner].append(op)
    ops = collections.Counter(op.name for layer_ops in per_layer.values() for op in layer_ops)
    static = collections.Counter()
    for _ in signs:
        static += _STATIC_SIGN_OPS
    for _ in prelus:
        static += _STATIC_PRELU_OPS
    per_sign = {name: per_layer.get(name, []) for name in sorted(signs)}

    def minimal(layer_ops: list[Operator]) -> bool:
        names = collections.Counter(op.name for op in layer_ops)
        fcs = [op for op in layer_ops if op.name == "FULLY_CONNECTED"]
        # A MEAN over a 1x1 map is the identity and the converter drops it.
        return (
            set(names) <= {"MEAN", "FULLY_CONNECTED", "SUB"}
            and names["MEAN"] <= 1 and names["SUB"] == 1 and len(fcs) == 2
            and fcs[0].fused_activation == "RELU" and fcs[1].fused_activation is None
        )

    return {
        "dynamic_sign_layers": len(signs),
        "dynamic_prelu_layers": len(prelus),
        "ops": dict(ops),
        "added_ops": dict(ops - static),
        "per_dynamic_sign": {
            name: [op.name + (f"+{op.fused_activation}" if op.fused_activation else "")
                   for op in layer_ops]
            for name, layer_ops in per_sign.items()
        },
        "minimal": all(minimal(layer_ops) for layer_ops in per_sign.values()),
    }


@dataclass
class ConversionReport:
    """Everything `export_and_verify` found out about an exported model.

    Attributes:
        model: Keras model name.
        output_path: where the `.tflite` was written, or None.
        binary: binary QuantConv2D layers against LceBconv2d ops.
        ops: op histogram of the flatbuffer.
        thresholds: float ops of the dynamic threshold layers (see `threshold_ops`).
        size_bytes: size of the `.tflite` file.
        float32_bytes: size of all the model's weights at 32 bits.
        parity: Keras against the LCE interpreter.
        parity_inputs: "random" or where the samples came from.
        latency: LCE interpreter latency, or None when not benchmarked.
        accuracy: `{"keras": ..., "lce": ...}` top-1 when labels were given.
        int8: what int8 hyper weights changed, or None for float32 hyper weights.
            With int8 hyper weights, `parity` compares the file with the Keras model
            whose hyper kernels are rounded to the same int8 grid (what the file
            computes), and `int8_effect` says what the rounding changed.
        int8_effect: with int8 hyper weights, `{"top1_agreement": ...}` of the float
            Keras model with the file, plus `keras_float` top-1 when labels were given;
            None otherwise.
        contract: the input contract written into the file's metadata, or None.
    """

    model: str
    output_path: str | None
    binary: BinaryCheck
    ops: dict[str, int]
    thresholds: dict
    size_bytes: int
    float32_bytes: int
    parity: Parity
    parity_inputs: str
    latency: Latency | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    int8: Int8Weights | None = None
    int8_effect: dict[str, float] | None = None
    contract: InputContract | None = None

    def as_dict(self) -> dict:
        """The report as JSON-serializable data."""
        return {
            "model": self.model,
            "output_path": self.output_path,
            "binary": self.binary.as_dict(),
            "ops": dict(sorted(self.ops.items())),
            "thresholds": self.thresholds,
            "size_bytes": self.size_bytes,
            "float32_bytes": self.float32_bytes,
            "compression": self.float32_bytes / max(self.size_bytes, 1),
            "parity": {**self.parity.as_dict(), "inputs": self.parity_inputs},
            "latency": self.latency.as_dict() if self.latency else None,
            "accuracy": self.accuracy,
            "int8_hyper_weights": (
                {**self.int8.as_dict(), "effect": self.int8_effect} if self.int8 else None
            ),
            "input_contract": self.contract.as_dict() if self.contract else None,
        }

    def to_json(self, **kwargs) -> str:
        """The report as a JSON string."""
        return json.dumps(self.as_dict(), **{"indent": 2, **kwargs})

    def format(self) -> str:
        """A human-readable summary."""
        b = self.binary
        lines = [
            f"model            {self.model}" + (f" -> {self.output_path}" if self.output_path else ""),
            f"binary convs     {b.lce_bconv2d} LceBconv2d / {len(b.keras_binary_convs)} "
            f"binary QuantConv2D "
            + ("(FELL BACK TO FLOAT)" if not b.ok else "(all binary)" if b.keras_binary_convs
               else "(the model has no binary convolution)"),
        ]
        lines += [f"  fell back: {name}: {cause}" for name, cause in b.fell_back]
        if b.float_quantized:
            lines.append(f"float in LCE     {len(b.float_quantized)} quantized layers are not "
                         "binary and run as float ops:")
            lines += [f"  {name}: {why}" for name, why in b.float_quantized]
        t = self.thresholds
        lines.append(
            f"thresholds       {t['dynamic_sign_layers']} DynamicSign, "
            f"{t['dynamic_prelu_layers']} DynamicPReLU; they add "
            + (", ".join(f"{k} x{v}" for k, v in sorted(t["added_ops"].items())) or "nothing")
            + (" (minimal per DynamicSign)" if t["dynamic_sign_layers"] and t["minimal"] else "")
        )
        lines.append("ops              " + ", ".join(f"{k} x{v}" for k, v in sorted(self.ops.items())))
        lines.append(
            f"size             {self.size_bytes / 1024:,.1f} KiB (float-32 weights: "
            f"{self.float32_bytes / 1024:,.1f} KiB, {self.float32_bytes / max(self.size_bytes, 1):.1f}x)"
        )
        if self.int8:
            lines.append(
                f"hyper weights    int8, {self.int8.tensors} FC kernels: "
                f"{self.int8.float32_bytes / 1024:,.1f} -> {self.int8.int8_bytes / 1024:,.1f} KiB"
                " (parity is against the Keras model with these kernels rounded)"
            )
            if self.int8_effect:
                lines.append(
                    "int8 rounding    top-1 agreement with the float Keras model "
                    f"{self.int8_effect['top1_agreement']:.2%}"
                    + (f"; float Keras top-1 {self.int8_effect['keras_float']:.2%}"
                       if "keras_float" in self.int8_effect else "")
                    + (" (on random inputs, which hide it: real images disagree more "
                       "often; pass samples)" if self.parity_inputs == "random normal inputs"
                       else "")
                )
        lines.append(
            "input contract   " + (self.contract.describe() if self.contract else
                                   "none recorded (consumers must guess the preprocessing)")
        )
        lines.append(f"parity           {self.parity} ({self.parity_inputs})")
        if self.accuracy:
            lines.append(
                "accuracy         "
                + ", ".join(f"{k} {v:.2%}" for k, v in self.accuracy.items())
            )
        if self.latency:
            medians = ", ".join(
                f"{t} thread{'s' if t > 1 else ''}: {ms:.2f} ms ({self.latency.kernel[t]})"
                for t, ms in self.latency.median_ms.items()
            )
            lines.append(f"latency          median of {self.latency.runs} runs, {medians}")
            lines.append(f"                 {self.latency.note}")
        return "\n".join(lines)


def _check_conversion(conversion: Conversion, model: tf.keras.Model,
                      contract: InputContract | None, allow_float_fallback: bool) -> None:
    if not isinstance(conversion, Conversion):
        raise TypeError(f"`conversion` must be a Conversion from `convert`, got "
                        f"{type(conversion).__name__}.")
    if conversion.model != model.name or conversion.weights_digest != weights_digest(model):
        raise ValueError(
            f"`conversion` was made from other weights than those of `model` "
            f"('{conversion.model}' then, '{model.name}' now): another model, or the "
            "model changed after `convert`. Convert it again.")
    if contract is not None and contract != conversion.contract:
        raise ValueError("`contract` differs from the `conversion`'s; give it to "
                         "`convert` instead.")
    if not conversion.binary.ok and not allow_float_fallback:
        raise conversion.binary.error()


def export_and_verify(
    model: tf.keras.Model | str | os.PathLike,
    *,
    output_path: str | os.PathLike | None = None,
    samples: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    samples_source: str = "given samples",
    random_samples: int = 16,
    benchmark: bool = True,
    runs: int = 50,
    threads: Sequence[int] = (1, 2),
    allow_float_fallback: bool = False,
    int8_hyper_weights: bool = True,
    contract: InputContract | None = None,
    conversion: Conversion | None = None,
    progress: Callable[[str], object] | None = None,
) -> ConversionReport:
    """Convert a model to LCE, check it and optionally time it.

    Arguments:
        model: a tf.keras model, or the path of a `.keras` or `.h5` file (loaded with
            `larq_dybnn.loading.load_model`; load a SavedModel you trust yourself).
        output_path: where to write the `.tflite` (atomically, only after the binary
            check passed); None to write nothing.
        samples: inputs for the parity check; None for `random_samples` random
            normal inputs.
        labels: optional integer labels of `samples`, to report top-1 accuracy.
        samples_source: how the report describes `samples`.
        random_samples: how many random inputs when `samples` is None.
        benchmark: whether to measure latency.
        runs: timed runs per thread count.
        threads: thread counts to time.
        allow_float_fallback: export even if binary layers fell back to float ops.
        int8_hyper_weights: store the hyper functions' FC weights in int8 (see
            `export_tflite`); parity then compares the file with the Keras model
            with its hyper kernels rounded to int8 (`round_hyper_weights`, applied
            to the weights for the check and restored after), and the report's
            `int8_effect` compares it with the float model.
        contract: the input contract to write into the file's metadata; None reads
            it from `model` when that is a path (`larq_dybnn.contract`).
        conversion: `convert(model, ...)` done already, to check and write instead of
            converting again (when you also want its other file: a notebook that
            ships the int8 file and compares the float one). `contract` is then the
            conversion's own.
        progress: receives one line per step.

    Returns:
        A `ConversionReport`.

    Raises:
        TypeError: if `model` is not a tf.keras model (a Keras 3 model included).
        FileNotFoundError, ValueError: for a model path that does not load.
        ValueError: for a model with non-finite weights, non-finite `samples`,
            `labels` that are not class indices of the model, samples whose outputs
            are not finite, or a `conversion` of another model or with another
            `contract`; nothing is written then.
        FloatFallbackError: if binary layers did not become LceBconv2d and
            `allow_float_fallback` is False; it lists the layers and causes.
        OSError: if `output_path` cannot be written; no partial file is left.
    """
    say = progress or (lambda _: None)
    if isinstance(model, (str, os.PathLike)):
        say(f"loading {model}")
        path, model = model, load_model(model)
        if contract is None:
            contract = read_contract(path)
    model = check_model(model)
    if output_path is not None and not Path(output_path).parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write '{output_path}': folder '{Path(output_path).parent}' does not exist."
        )
    _check_finite_weights(model)
    if samples is not None:
        samples = np.asarray(samples, dtype=np.float32)
        if not np.all(np.isfinite(samples)):
            raise ValueError(f"`samples` holds {int(np.sum(~np.isfinite(samples)))} "
                             "non-finite values (NaN or inf); parity needs finite inputs.")
    if labels is not None:
        labels = _checked_labels(labels, model, samples)
    if conversion is None:
        say(f"converting {model.name} with Larq Compute Engine")
        conversion = convert(model, contract=contract, allow_float_fallback=allow_float_fallback)
    else:
        _check_conversion(conversion, model, contract, allow_float_fallback)
    contract = conversion.contract
    flatbuffer = conversion.flatbuffer(int8_hyper_weights=int8_hyper_weights)
    int8 = conversion.int8 if int8_hyper_weights else None
    if int8 is not None:
        say(f"hyper weights to int8: {int8.tensors} FC kernels")
    operators = read_operators(flatbuffer)
    binary = conversion.binary
    if binary.float_quantized:
        import warnings

        listed = "; ".join(f"{name} ({why})" for name, why in binary.float_quantized)
        warnings.warn(
            f"{len(binary.float_quantized)} quantized layers of {model.name} are not binary "
            f"and run as float ops in LCE: {listed}", stacklevel=2,
        )
        say(f"{len(binary.float_quantized)} quantized layers are not binary: float ops in LCE")
    if samples is None:
        shape = [random_samples, *model.input_shape[1:]]
        if any(d is None for d in shape):
            raise ValueError(
                f"Model input shape {model.input_shape} has unknown dimensions; give "
                "`samples` for the parity check."
            )
        samples = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        samples_source = "random normal inputs"
    say(f"parity on {len(samples)} samples ({samples_source})")
    int8_effect = None
    if int8 is not None and int8.tensors:
        float_out = run_keras(model, samples)
        saved = model.get_weights()
        try:
            round_hyper_weights(model)
            keras_out, lce_out = run_keras_and_lce(model, flatbuffer, samples)
        finally:
            model.set_weights(saved)
        int8_effect = {"top1_agreement": float(np.mean(
            float_out.argmax(axis=-1) == lce_out.argmax(axis=-1)))}
    else:
        keras_out, lce_out = run_keras_and_lce(model, flatbuffer, samples)
    parity = dataclasses.replace(parity_of(keras_out, lce_out), kernel=DEFAULT_KERNEL)
    if parity.non_finite:
        raise ValueError(
            f"{parity.non_finite} of {parity.samples} samples give non-finite outputs "
            f"(Keras or LCE) for {model.name}; not exported as verified.")
    if output_path is not None:
        atomic_write_bytes(output_path, flatbuffer)
        say(f"wrote {output_path} ({len(flatbuffer) / 1024:,.1f} KiB)")
    accuracy = {}
    if labels is not None:
        accuracy = {
            "keras": float(np.mean(keras_out.argmax(axis=-1) == labels)),
            "lce": float(np.mean(lce_out.argmax(axis=-1) == labels)),
        }
        if int8_effect is not None:
            int8_effect["keras_float"] = float(np.mean(float_out.argmax(axis=-1) == labels))
    latency = None
    if benchmark:
        say(f"timing {runs} runs per thread count {tuple(threads)} in the LCE interpreter")
        latency = measure_latency(flatbuffer, threads=threads, runs=runs)
    return ConversionReport(
        model=model.name,
        output_path=None if output_path is None else str(output_path),
        binary=binary,
        ops=dict(collections.Counter(op.name for op in operators)),
        thresholds=threshold_ops(model, operators),
        size_bytes=len(flatbuffer),
        float32_bytes=4 * int(sum(np.prod(w.shape) for w in model.weights)),
        parity=parity,
        parity_inputs=samples_source,
        latency=latency,
        accuracy=accuracy,
        int8=int8,
        int8_effect=int8_effect,
        contract=contract,
    )
