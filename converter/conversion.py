"""The converter's front door: convert a model once, get everything an export needs.

`convert` runs Larq Compute Engine's converter once and returns both files a DyBNN
model can ship as (hyper weights in float32, and in int8: the default), the check that
every binary conv became an `LceBconv2d`, and the input contract written into both:
one conversion, so that the files a report describes are the files it checked.
`export_tflite` is the plain converter (no binary check, no contract), for
comparisons with LCE's own `convert_keras_model`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.contract import InputContract, add_to_flatbuffer
from larq_dybnn.converter.binary import BinaryCheck, check_binary_layers
from larq_dybnn.converter.export import check_model, lce_flatbuffer
from larq_dybnn.converter.flatbuffer import Operator, read_operators
from larq_dybnn.converter.int8 import Int8Weights, quantize_hyper_weights

__all__ = ["Conversion", "convert", "export_tflite", "weights_digest"]

TARGETS = ("arm", "xcore")


@dataclass(frozen=True)
class Conversion:
    """One conversion of a model by Larq Compute Engine.

    Attributes:
        model: the Keras model's name.
        target: the LCE target it was converted for.
        float_flatbuffer: the file with the hyper functions' weights in float32; it
            computes exactly what the Keras model computes.
        int8_flatbuffer: the file with the hyper functions' FC kernels stored in int8
            (`larq_dybnn.converter.int8`); the same bytes as `float_flatbuffer` for a
            model without hyper functions. The default export.
        int8: what the int8 storage changed (kernels, bytes, largest rounding error).
        binary: every binary conv of the model against the file's `LceBconv2d` ops.
        operators: the ops of `float_flatbuffer` (the int8 file adds DEQUANTIZE ops).
        contract: the input contract written into both files' metadata, or None.
        weights_digest: SHA-256 of the model's weights when it was converted
            (`weights_digest`): `export_and_verify(conversion=...)` checks that it
            is given the same model, unchanged.
    """

    model: str
    target: str
    float_flatbuffer: bytes
    int8_flatbuffer: bytes
    int8: Int8Weights
    binary: BinaryCheck
    operators: tuple[Operator, ...]
    contract: InputContract | None
    weights_digest: str = ""

    def flatbuffer(self, *, int8_hyper_weights: bool = True) -> bytes:
        """The int8 file (the default) or, with `int8_hyper_weights=False`, the float one."""
        return self.int8_flatbuffer if int8_hyper_weights else self.float_flatbuffer


def convert(
    model: tf.keras.Model,
    *,
    target: str = "arm",
    contract: InputContract | None = None,
    allow_float_fallback: bool = False,
) -> Conversion:
    """Convert `model` with Larq Compute Engine once and check the result.

    Arguments:
        model: a tf.keras model built from Larq and larq_dybnn layers.
        target: LCE target, "arm" (phones, Raspberry Pi) or "xcore".
        contract: the input contract to write into the files' metadata; None takes
            the model's own (`model.input_contract`, set by a zoo model with named
            weights), if any. Its class count must match the model's outputs.
        allow_float_fallback: return the conversion even if binary convs fell back to
            float ops (`Conversion.binary` lists them).

    Returns:
        A `Conversion`.

    Raises:
        TypeError: if `model` is not a tf.keras model (a Keras 3 model included).
        ValueError: if `target` is unknown, or `contract` does not fit the model.
        FloatFallbackError: if binary convs did not become `LceBconv2d` and
            `allow_float_fallback` is False; it names the layers and the causes.
    """
    model = check_model(model)
    if target not in TARGETS:
        raise ValueError(f"`target` must be 'arm' or 'xcore', got {target!r}.")
    if contract is None:
        contract = getattr(model, "input_contract", None)
    if contract is not None:
        contract.check_outputs(int(model.output_shape[-1]), source=f"model '{model.name}'")
        contract.check_inputs(model.input_shape, source=f"model '{model.name}'")
    plain = lce_flatbuffer(model, target=target)
    operators = tuple(read_operators(plain))
    binary = check_binary_layers(model, operators)
    if not binary.ok and not allow_float_fallback:
        raise binary.error()
    int8_file, int8 = quantize_hyper_weights(plain, model)
    if contract is not None:
        plain = add_to_flatbuffer(plain, contract)
        int8_file = add_to_flatbuffer(int8_file, contract)
    return Conversion(model=model.name, target=target, float_flatbuffer=plain,
                      int8_flatbuffer=int8_file, int8=int8, binary=binary,
                      operators=operators, contract=contract,
                      weights_digest=weights_digest(model))


def weights_digest(model: tf.keras.Model) -> str:
    """SHA-256 over the names, shapes and values of `model`'s weights (hex)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{weight.name}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def export_tflite(
    model: tf.keras.Model,
    *,
    path: str | os.PathLike | None = None,
    target: str = "arm",
    int8_hyper_weights: bool = True,
) -> bytes:
    """Convert `model` with Larq Compute Engine's converter and return one file.

    The float file is byte for byte what `larq_compute_engine.convert_keras_model`
    returns (`larq_dybnn.converter.export.lce_flatbuffer`, in a quarter to a half of
    the time for the zoo's models). Unlike `convert`, binary convs that fell back to
    float ops are not an error here, and no contract is written: this is the plain
    converter; `convert` and `export_and_verify` are the checked ones.

    Arguments:
        model: a tf.keras model built from Larq and larq_dybnn layers.
        path: where to write the `.tflite` file, atomically; None to only return it.
        target: LCE target, "arm" (phones, Raspberry Pi) or "xcore".
        int8_hyper_weights: store the hyper functions' FC weights in int8 (one
            symmetric scale per kernel, restored to float32 once when the
            interpreter loads the file; see `larq_dybnn.converter.int8`): about 4x
            smaller hyper functions, each weight off by at most 1/254 of its
            kernel's largest |weight|. The default; False keeps them float32, so
            the file computes exactly the Keras model.

    Returns:
        The flatbuffer bytes.

    Raises:
        TypeError: if `model` is not a tf.keras model.
        ValueError: if `target` is unknown.
        OSError: if `path` cannot be written; no partial file is left.
    """
    model = check_model(model)
    if target not in TARGETS:
        raise ValueError(f"`target` must be 'arm' or 'xcore', got {target!r}.")
    flatbuffer = lce_flatbuffer(model, target=target)
    if int8_hyper_weights:
        flatbuffer, _ = quantize_hyper_weights(flatbuffer, model)
    if path is not None:
        atomic_write_bytes(path, flatbuffer)
    return flatbuffer
