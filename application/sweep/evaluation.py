"""Evaluate a finished training run on the test split: Keras and the LCE interpreter.

`evaluate_run(run_dir)` reads the run's `model.keras` and `config.json`, exports the
model twice (float32 and int8 hyper-function weights, both checked to keep every
binary conv binary), runs the whole test split through Keras and through the LCE
interpreter, and writes `evaluation.json` beside the run's other files:

    test_accuracy              Keras top-1 on the test split
    lce_accuracy               LCE interpreter, float32 hyper weights
    lce_int8_accuracy          LCE interpreter, int8 hyper weights
    lce_agreement              share of test images where Keras and LCE agree on top-1
    lce_int8_agreement         the same for the int8 file
    tflite_bytes, tflite_int8_bytes
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.contract import InputContract

__all__ = ["evaluate_run", "lce_logits", "evaluation_arrays"]


def lce_logits(flatbuffer: bytes, images: np.ndarray, *, threads: int = 1,
               batch: int = 500,
               progress: Callable[[int, int], object] | None = None) -> np.ndarray:
    """Deprecated: use `larq_dybnn.converter.lce_outputs` (the same call)."""
    import warnings

    from larq_dybnn.converter.interpreter import lce_outputs

    warnings.warn("larq_dybnn.sweep.lce_logits is deprecated and will be removed in the "
                  "next release; use larq_dybnn.converter.lce_outputs.",
                  DeprecationWarning, stacklevel=2)
    return lce_outputs(flatbuffer, images, threads=threads, batch=batch, progress=progress)


def _every_fifth(print_fn: Callable[[str], object]) -> Callable[[int, int], None]:
    """An `lce_outputs` progress callback that prints about every fifth of the images."""
    reported = [0]

    def report(done: int, total: int) -> None:
        if done - reported[0] >= max(total // 5, 1) and done < total:
            print_fn(f"    {done}/{total} images")
            reported[0] = done

    return report


def evaluation_arrays(config: dict, split: str, size: int, *,
                contract: InputContract | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A run's images of `split`, preprocessed for its model, in memory.

    Arguments:
        config: the run's `config.json` (its `data`, `data_dir`, `preprocess`).
        split: the split to read.
        size: the model's input size.
        contract: the model's recorded input contract, if any: the split is checked
            against it and prepared by `larq_dybnn.training.inputs.prepare_inputs`.

    Returns:
        `(images, labels)` as NumPy arrays.
    """
    from larq_dybnn.training.inputs import prepare_inputs

    prepared = prepare_inputs(
        config["data"], model=config.get("model", "the run's model"), image_size=(size, size),
        contract=contract, preprocess=config.get("preprocess"), limit=None, split=split,
        data_dir=config.get("data_dir"))
    return prepared.samples, prepared.labels


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    split: str = "test",
    threads: int = 1,
    print_fn: Callable[[str], object] = print,
) -> dict:
    """Evaluate a finished `larq-dybnn train` run on `split` and write evaluation.json.

    Arguments:
        run_dir: the run's output directory (with `config.json` and `model.keras`).
        split: the split to evaluate (the test split; the run chose nothing on it).
        threads: LCE interpreter threads.
        print_fn: receives progress lines.

    Returns:
        The evaluation as a dict (also written to `run_dir/evaluation.json`).

    Raises:
        FileNotFoundError: if the run has no `config.json` or `model.keras`.
        FloatFallbackError: if a binary conv of the model did not convert.
    """
    import tensorflow as tf

    from larq_dybnn.contract import read_contract
    from larq_dybnn.converter import convert, lce_outputs
    from larq_dybnn.loading import load_model
    from larq_dybnn.training.run_folder import RunFolder

    run = RunFolder(run_dir)
    for name in (RunFolder.CONFIG, RunFolder.MODEL):
        if not (run / name).is_file():
            raise FileNotFoundError(f"'{run.path}' is not a finished run: no {name}.")
    config = json.loads(run.config.read_text())
    model = load_model(run.model)
    contract = read_contract(run.model)
    size = int(model.input_shape[1])
    x, y = evaluation_arrays(config, split, size, contract=contract)
    print_fn(f"  {len(y)} '{split}' images; Keras")
    keras = np.concatenate([np.asarray(model(x[i : i + 500], training=False))
                            for i in range(0, len(x), 500)])
    result = {
        "split": split, "examples": int(len(y)),
        "test_accuracy": float(np.mean(keras.argmax(-1) == y)),
        "test_loss": float(np.mean(tf.keras.losses.sparse_categorical_crossentropy(
            y, keras, from_logits=True))),
    }
    conversion = convert(model, contract=contract)  # raises if a binary conv fell back
    for suffix, int8 in (("", False), ("_int8", True)):
        flatbuffer = conversion.flatbuffer(int8_hyper_weights=int8)
        atomic_write_bytes(run.model_int8 if int8 else run.tflite, flatbuffer)
        print_fn(f"  LCE interpreter{' (int8 hyper weights)' if int8 else ''}")
        lce = lce_outputs(flatbuffer, x, threads=threads, progress=_every_fifth(print_fn))
        result[f"lce{suffix}_accuracy"] = float(np.mean(lce.argmax(-1) == y))
        result[f"lce{suffix}_agreement"] = float(np.mean(lce.argmax(-1) == keras.argmax(-1)))
        result[f"tflite{suffix}_bytes"] = len(flatbuffer)
        result["lce_bconv2d"] = conversion.binary.lce_bconv2d
    from larq_dybnn.sweep.provenance import provenance

    # What evaluated it: the int8 file's form changed once (hybrid FC ops, then
    # DEQUANTIZE), so a results table must not mix evaluations of both.
    result["evaluated_with"] = {"commit": provenance()["commit"],
                                "int8_hyper_weights": "dequantize"}
    atomic_write_bytes(run.evaluation, json.dumps(result, indent=2).encode())
    print_fn("  " + ", ".join(
        f"{k} {v:.4f}" for k, v in result.items() if k.endswith(("accuracy", "agreement"))))
    return result
