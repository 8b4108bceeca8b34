"""The main job on the embedded default: train a small DyBNN, export it, verify it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.converter import export_and_verify
from larq_dybnn.datasets import load_digits
from larq_dybnn.profiling import mac_counts, summary
from larq_dybnn.zoo import TinyDyBNN

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo measured.

    Attributes:
        test_accuracy: Keras top-1 accuracy on the held-out digits.
        lce_accuracy: the same, from the LCE interpreter.
        binary_convs: binary QuantConv2D layers in the Keras model.
        lce_bconvs: LceBconv2d ops in the flatbuffer.
        top1_agreement, max_abs_diff, mean_abs_diff: Keras vs LCE parity.
        tflite_path: where the flatbuffer was written.
        passed: all binary convs converted and top-1 agreement >= 99%.
    """

    test_accuracy: float
    lce_accuracy: float
    binary_convs: int
    lce_bconvs: int
    top1_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    tflite_path: str
    passed: bool


def run_demo(
    *,
    epochs: int = 8,
    batch_size: int = 64,
    output_dir: str | os.PathLike = "outputs/demo",
    seed: int = 0,
    verbose: int | str = "auto",
    print_fn=print,
) -> DemoResult:
    """Train TinyDyBNN on digits, evaluate, export to LCE and check parity.

    Arguments:
        epochs: training epochs (about 2 s each on 2 CPU cores).
        batch_size: training batch size.
        output_dir: folder for the `.tflite` file; created if missing.
        seed: seed of the data split, initialisation and shuffling.
        verbose: Keras progress-bar mode for `fit`.
        print_fn: where progress lines go.

    Returns:
        A `DemoResult`.

    Raises:
        ValueError: for a non-positive `epochs` or `batch_size`.
        OSError: if `output_dir` cannot be created or written.
    """
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(seed)

    (x_train, y_train), (x_test, y_test) = load_digits(seed=seed)
    print_fn(
        f"Data: scikit-learn digits (embedded), {len(x_train)} train / {len(x_test)} "
        f"test images of 8x8x1, 10 classes"
    )
    model = TinyDyBNN(input_shape=(8, 8, 1), num_classes=10, width=32, blocks=2, reduction=4)
    counts = mac_counts(model)
    print_fn(
        f"Model: {model.name}, {model.count_params():,} parameters, "
        f"{counts.get(1, 0):,} binary MACs, {counts.get(32, 0):,} float MACs per image"
    )

    print_fn(f"[1/3] Training for {epochs} epochs (Adam, lr 2e-3 decayed linearly to 0)")
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = tf.keras.optimizers.schedules.PolynomialDecay(2e-3, steps, 0.0)
    model.compile(
        tf.keras.optimizers.Adam(schedule),
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
    print_fn(f"      trained in {time.perf_counter() - start:.1f} s")
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print_fn(f"      Keras test accuracy: {test_accuracy:.2%}")
    summary(model, print_fn=print_fn)

    print_fn("[2/3] Converting with Larq Compute Engine")
    tflite_path = output_dir / f"{model.name}_digits.tflite"
    report = export_and_verify(
        model, output_path=tflite_path, samples=x_test, labels=y_test,
        samples_source="digits test images", benchmark=False,
        allow_float_fallback=True,  # the demo reports a fallback as FAIL instead
    )
    binary_convs = len(report.binary.keras_binary_convs)
    print_fn(f"      wrote {tflite_path} ({report.size_bytes / 1024:.1f} KiB)")
    print_fn("      ops: " + ", ".join(f"{n} x{c}" for n, c in sorted(report.ops.items())))
    print_fn(f"      binary convs: {binary_convs} in Keras, {report.binary.lce_bconv2d} LceBconv2d")

    print_fn("[3/3] Parity: Keras vs the LCE interpreter on the test images")
    parity = report.parity
    lce_accuracy = report.accuracy["lce"]
    print_fn(f"      {parity}")
    print_fn(f"      LCE test accuracy: {lce_accuracy:.2%}")
    passed = report.binary.ok and parity.top1_agreement >= 0.99
    print_fn(f"RESULT: {'PASS' if passed else 'FAIL'}")
    return DemoResult(
        test_accuracy=float(test_accuracy),
        lce_accuracy=lce_accuracy,
        binary_convs=binary_convs,
        lce_bconvs=report.binary.lce_bconv2d,
        top1_agreement=parity.top1_agreement,
        max_abs_diff=parity.max_abs_diff,
        mean_abs_diff=parity.mean_abs_diff,
        tflite_path=str(tflite_path),
        passed=passed,
    )
