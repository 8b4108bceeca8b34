"""The main job: train a small DyBNN, evaluate it, export it to LCE, verify, plot."""

from __future__ import annotations

import os
from dataclasses import dataclass

from larq_dybnn import _checks
from larq_dybnn.training import TrainConfig, train

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo measured.

    Attributes:
        test_accuracy: Keras top-1 accuracy on the held-out split.
        lce_accuracy: the same, from the LCE interpreter (on up to 500 images).
        binary_convs: binary QuantConv2D layers in the Keras model.
        lce_bconvs: LceBconv2d ops in the flatbuffer.
        top1_agreement, max_abs_diff, mean_abs_diff: Keras vs LCE parity.
        threshold_spread: per DynamicSign layer, the mean over channels of the
            standard deviation of the threshold across samples.
        tflite_path: where the flatbuffer was written.
        plots: the image files written.
        passed: all binary convs converted and top-1 agreement >= 99%.
    """

    test_accuracy: float
    lce_accuracy: float
    binary_convs: int
    lce_bconvs: int
    top1_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    threshold_spread: dict[str, float]
    tflite_path: str
    plots: list[str]
    passed: bool


def run_demo(
    *,
    data: str = "digits",
    epochs: int | None = None,
    batch_size: int = 64,
    output_dir: str | os.PathLike = "outputs/demo",
    seed: int = 0,
    verbose: int | str = 1,
    print_fn=print,
) -> DemoResult:
    """Train TinyDyBNN, evaluate, export to LCE, check parity, plot, report.

    A demo run always starts over (`restart=True`) in `output_dir`.

    Arguments:
        data: "digits" (embedded) or any source of `larq_dybnn.training.data.load`, e.g. the
            folder holding the CIFAR-10 `.tar.gz` archives.
        epochs: training epochs; None for 20 on digits (about 1 s each on 2 CPU
            cores) and 5 otherwise.
        batch_size: training batch size.
        output_dir: where the run writes (see `larq_dybnn.training.loop`).
        seed: seed of initialization, shuffling and augmentation.
        verbose: Keras progress mode: 1 progress bars, 2 one line per epoch.
        print_fn: where report lines go.

    Returns:
        A `DemoResult`.

    Raises:
        ValueError: for a non-positive `epochs` or `batch_size`, or bad data.
        FileNotFoundError: for data that does not exist.
        OSError: if `output_dir` cannot be written.
    """
    if epochs is None:
        epochs = 20 if os.fspath(data) == "digits" else 5
    epochs = _checks.positive_int("epochs", epochs)
    config = TrainConfig(
        model="tiny-dybnn", data=os.fspath(data), output_dir=os.fspath(output_dir),
        epochs=epochs, batch_size=batch_size, seed=seed, export=True, restart=True,
        verbose=verbose,
    )
    print_fn("== larq-dybnn main job: train, evaluate, export to LCE, verify ==")
    result = train(config, print_fn=lambda line: print_fn(f"  {line}"))
    conversion = result.conversion
    parity = conversion["parity"]
    binary = conversion["binary"]
    spread = result.threshold_spread
    binary_convs = len(binary["keras_binary_convs"])
    passed = binary["lce_bconv2d"] == binary_convs and parity["top1_agreement"] >= 0.99
    history = result.history
    lines = [
        "== Report ==",
        f"data                {config.data} ({config.train_split} -> {config.eval_split})",
        f"training            {epochs} epochs in {result.seconds:.0f} s (whole job); "
        f"train accuracy {history['accuracy'][0]:.1%} -> {history['accuracy'][-1]:.1%}",
        f"Keras accuracy      {result.evaluation['accuracy']:.2%} on the {config.eval_split} split",
        f"LCE accuracy        {conversion['accuracy']['lce']:.2%} (Keras "
        f"{conversion['accuracy']['keras']:.2%}) on {parity['samples']} images"
        + (" (int8 hyper weights; Keras with the same rounding)"
           if conversion.get("int8_hyper_weights") else ""),
        f"binary convs        {binary['lce_bconv2d']} LceBconv2d / {binary_convs} binary QuantConv2D",
        f"parity              top-1 agreement {parity['top1_agreement']:.2%}, max |diff| "
        f"{parity['max_abs_diff']:.3g}",
        f"model size          {conversion['size_bytes'] / 1024:.1f} KiB ({result.tflite_path})",
        "threshold spread    " + ", ".join(f"{k} {v:.3f}" for k, v in spread.items())
        + " (mean std across samples; 0 would mean static thresholds)",
        "plots               " + ", ".join(result.plots),
        f"RESULT: {'PASS' if passed else 'FAIL'}",
    ]
    for line in lines:
        print_fn(line)
    return DemoResult(
        test_accuracy=result.evaluation["accuracy"],
        lce_accuracy=conversion["accuracy"]["lce"],
        binary_convs=binary_convs,
        lce_bconvs=binary["lce_bconv2d"],
        top1_agreement=parity["top1_agreement"],
        max_abs_diff=parity["max_abs_diff"],
        mean_abs_diff=parity["mean_abs_diff"],
        threshold_spread=spread,
        tflite_path=result.tflite_path,
        plots=result.plots,
        passed=passed,
    )
