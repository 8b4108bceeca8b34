"""Convert a Keras model to a Larq Compute Engine flatbuffer."""

from __future__ import annotations

import os

import larq_compute_engine as lce
import tensorflow as tf

from larq_dybnn._io import atomic_write_bytes

__all__ = ["check_model", "export_tflite"]


def check_model(model: object) -> tf.keras.Model:
    """Return `model` if it is a tf.keras model, else raise a TypeError naming why."""
    if isinstance(model, tf.keras.Model):
        return model
    module = type(model).__module__
    if module.startswith("keras") and not module.startswith("keras_"):
        raise TypeError(
            f"`model` is a Keras 3 model ({type(model).__name__} from '{module}'); "
            "Larq Compute Engine converts tf.keras (tf-keras) models only. Build it "
            "with tf.keras after importing larq_dybnn."
        )
    raise TypeError(f"`model` must be a tf.keras.Model, got {type(model).__name__}.")


def export_tflite(
    model: tf.keras.Model,
    *,
    path: str | os.PathLike | None = None,
    target: str = "arm",
    int8_hyper_weights: bool = True,
) -> bytes:
    """Convert `model` with `larq_compute_engine.convert_keras_model`.

    Arguments:
        model: a tf.keras model built from Larq and larq_dybnn layers.
        path: where to write the `.tflite` file, atomically; None to only return it.
        target: LCE target, "arm" (phones, Raspberry Pi) or "xcore".
        int8_hyper_weights: store the hyper functions' FC weights in int8 (one
            symmetric scale per kernel, restored to float32 once when the
            interpreter loads the file; see `larq_dybnn.converter.int8`): about 4x
            smaller hyper functions, each weight off by at most 1/254 of its
            kernel's largest |weight|. The default (README, "Defaults"); False
            keeps them float32, so the file computes exactly the Keras model.

    Returns:
        The flatbuffer bytes.

    Raises:
        TypeError: if `model` is not a tf.keras model.
        ValueError: if `target` is unknown.
        OSError: if `path` cannot be written; no partial file is left.
    """
    model = check_model(model)
    if target not in ("arm", "xcore"):
        raise ValueError(f"`target` must be 'arm' or 'xcore', got {target!r}.")
    flatbuffer = lce.convert_keras_model(model, target=target)
    if int8_hyper_weights:
        # Imported here: the int8 module uses this module's `check_model`.
        from larq_dybnn.converter.int8 import quantize_hyper_weights

        flatbuffer, _ = quantize_hyper_weights(flatbuffer, model)
    if path is not None:
        atomic_write_bytes(path, flatbuffer)
    return flatbuffer
