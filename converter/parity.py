"""Compare a Keras model with its LCE flatbuffer, run by the real LCE interpreter."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf
from larq_dybnn.converter.interpreter import DEFAULT_KERNEL, lce_outputs

__all__ = ["Parity", "compare_with_lce", "run_keras_and_lce", "parity_of", "CLOSE_TOLERANCE"]

#: Relative tolerance under which a sample's outputs count as matching.
CLOSE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Parity:
    """How closely the LCE interpreter reproduces Keras.

    Attributes:
        samples: number of inputs compared.
        top1_agreement: fraction of samples whose arg-max output is the same.
        max_abs_diff: largest absolute difference over all outputs.
        mean_abs_diff: mean absolute difference over all outputs.
        close_fraction: fraction of samples whose outputs all agree within
            `CLOSE_TOLERANCE` x max(1, largest |Keras output|). A sample falls out
            when a rounding-level difference flips one of its binary activations;
            in DyBNN such a flip also moves that sample's pooled context, so it can
            spread through the sample's later thresholds.
        non_finite: samples with a NaN or inf output in Keras or LCE; they count as
            neither agreeing nor close, and the differences are then inf.
        kernel: the LCE binary-conv kernel the outputs came from, when known.
    """

    samples: int
    top1_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    close_fraction: float
    non_finite: int = 0
    kernel: str | None = None

    def as_dict(self) -> dict:
        """The fields as a JSON-serializable dict."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.samples} samples: top-1 agreement {self.top1_agreement:.2%}, "
            f"max |Keras - LCE| {self.max_abs_diff:.3g}, "
            f"mean {self.mean_abs_diff:.3g}, "
            f"samples within tolerance {self.close_fraction:.2%}"
            + (f", LCE kernel {self.kernel}" if self.kernel else "")
        )


def run_keras(model: tf.keras.Model, inputs: np.ndarray) -> np.ndarray:
    """Run `inputs` through a Keras model in inference mode, 32 at a time.

    Arguments:
        model: a tf.keras model.
        inputs: a float32 batch shaped like the model's input.

    Returns:
        The outputs, `(N, ...)`.

    Raises:
        ValueError: if `inputs` is empty or does not match the model's input shape.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if inputs.ndim != len(expected) + 1 or len(inputs) == 0 or any(
        want is not None and want != got for want, got in zip(expected, inputs.shape[1:])
    ):
        raise ValueError(
            f"`inputs` must be a non-empty batch of shape (N, {', '.join(map(str, expected))}), "
            f"got {inputs.shape}."
        )
    # Direct calls in inference mode: no retracing, unlike `predict`.
    return np.concatenate(
        [np.asarray(model(inputs[i : i + 32], training=False)) for i in range(0, len(inputs), 32)]
    )


def run_keras_and_lce(
    model: tf.keras.Model,
    flatbuffer: bytes,
    inputs: np.ndarray,
    *,
    num_threads: int = 1,
    kernel: str = DEFAULT_KERNEL,
) -> tuple[np.ndarray, np.ndarray]:
    """Run `inputs` through Keras (inference mode) and through the LCE interpreter.

    Arguments:
        model: the Keras model that `flatbuffer` was converted from.
        flatbuffer: the LCE TFLite model.
        inputs: a float32 batch shaped like the model's input.
        num_threads: interpreter threads.
        kernel: the LCE kernel (`larq_dybnn.converter.interpreter.KERNELS`).

    Returns:
        `(keras_outputs, lce_outputs)`, each `(N, ...)`.

    Raises:
        ValueError: if `inputs` is empty or does not match the model's input shape.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    keras_out = run_keras(model, inputs)
    return keras_out, lce_outputs(flatbuffer, inputs, kernel=kernel, threads=num_threads)


def parity_of(keras_out: np.ndarray, lce_out: np.ndarray) -> Parity:
    """Compare Keras and LCE outputs of the same samples (see `Parity`)."""
    keras_flat = keras_out.reshape(len(keras_out), -1).astype(np.float64)
    lce_flat = lce_out.reshape(len(lce_out), -1).astype(np.float64)
    finite = np.all(np.isfinite(keras_flat), axis=1) & np.all(np.isfinite(lce_flat), axis=1)
    diff = np.abs(keras_flat - lce_flat)
    diff[~finite] = np.inf  # NaN never compares as close; count it as the worst
    largest = np.abs(keras_flat[finite]).max() if finite.any() else 0.0
    tolerance = CLOSE_TOLERANCE * max(1.0, float(largest))
    agree = (keras_flat.argmax(axis=1) == lce_flat.argmax(axis=1)) & finite
    return Parity(
        samples=int(len(keras_flat)),
        top1_agreement=float(np.mean(agree)),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        close_fraction=float(np.mean((diff.max(axis=1) <= tolerance) & finite)),
        non_finite=int(np.sum(~finite)),
    )


def compare_with_lce(
    model: tf.keras.Model,
    flatbuffer: bytes,
    inputs: np.ndarray,
    *,
    num_threads: int = 1,
) -> Parity:
    """Run `inputs` through Keras and through the LCE interpreter and compare.

    Arguments:
        model: the Keras model that `flatbuffer` was converted from.
        flatbuffer: the LCE TFLite model.
        inputs: a float32 batch shaped like the model's input.
        num_threads: interpreter threads.

    Returns:
        A `Parity`.

    Raises:
        ValueError: if `inputs` is empty or does not match the model's input shape.
    """
    parity = parity_of(*run_keras_and_lce(model, flatbuffer, inputs, num_threads=num_threads))
    return dataclasses.replace(parity, kernel=DEFAULT_KERNEL)
