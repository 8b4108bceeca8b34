"""Evaluate a trained model, Keras or LCE flatbuffer, on a labelled dataset."""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.training import data as data_lib, inputs
from larq_dybnn.contract import read_contract

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Accuracy of a model on a split.

    Attributes:
        model: the model file.
        runtime: "keras" or "lce" (the LCE interpreter, for a `.tflite`).
        data: the dataset source and split.
        examples: number of images evaluated.
        accuracy: top-1 accuracy.
        top5_accuracy: top-5 accuracy (None with fewer than 6 classes).
        loss: mean cross-entropy of the logits.
        preprocess: the preprocessing applied.
        notes: what was overridden or guessed (see `evaluate`).
    """

    model: str
    runtime: str
    data: str
    examples: int
    accuracy: float
    top5_accuracy: float | None
    loss: float
    preprocess: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        """The fields as a JSON-serializable dict."""
        return asdict(self)

    def __str__(self) -> str:
        top5 = "" if self.top5_accuracy is None else f", top-5 {self.top5_accuracy:.2%}"
        notes = "".join(f"\nnote: {note}" for note in self.notes)
        return (
            f"{self.model} ({self.runtime}) on {self.data}: {self.examples} images, "
            f"preprocess '{self.preprocess}', top-1 {self.accuracy:.2%}{top5}, "
            f"loss {self.loss:.4f}{notes}"
        )


def _predictor(path: Path, threads: int, unsafe_load: bool):
    if path.suffix.lower() == ".tflite":
        from larq_dybnn.converter.interpreter import lce_interpreter

        # The package's default kernel, checked file (a cut file can crash TFLite).
        interpreter = lce_interpreter(path.read_bytes(), threads=threads,
                                      source=f"'{path}'")
        shape = tuple(interpreter.input_shapes[0][1:])
        return "lce", shape, lambda x: np.asarray(interpreter.predict(x))
    from larq_dybnn.loading import load_model

    model = load_model(path, unsafe=unsafe_load)
    shape = tuple(model.input_shape[1:])
    return "keras", shape, lambda x: np.asarray(model(x, training=False))


def evaluate(
    model_path: str | os.PathLike,
    *,
    data: str | os.PathLike,
    split: str = "test",
    data_dir: str | None = None,
    batch_size: int = 100,
    preprocess: str | None = None,
    resize: bool = False,
    limit: int | None = None,
    threads: int = 1,
    unsafe_load: bool = False,
    progress: Callable[[str], object] | None = None,
) -> Evaluation:
    """Evaluate a `.keras` / `.h5` / SavedModel or an LCE `.tflite` on a split.

    Arguments:
        model_path: the model; a `.tflite` runs in the LCE interpreter.
        data: a source of `larq_dybnn.training.data.load`.
        split: the split to evaluate.
        data_dir: tensorflow-datasets data directory.
        batch_size: images per batch.
        preprocess: "digits", "cifar" or "imagenet"; None applies the preprocessing
            recorded in the model's input contract (`larq_dybnn.contract`). A model
            without a record gets a guess by data and input size, with a warning.
        resize: resize images of another size to the model's input (bilinear);
            without it such images are an error for a model whose contract says
            they must have its size.
        limit: evaluate only the first `limit` images.
        threads: LCE interpreter threads.
        unsafe_load: load a Keras model without checking that it runs no code from
            outside tf_keras, Larq and larq_dybnn (`larq_dybnn.loading`).
        progress: receives a line about every tenth of the images (with the running
            top-1), for evaluations that take a while.

    Returns:
        An `Evaluation`.

    Raises:
        FileNotFoundError: for a missing model or data.
        ValueError: for a model that does not load, a model without a fixed square
            input size, data whose classes do not fit the model's outputs, or data
            that does not fit the recorded contract (other class names or order,
            other image size without `resize`); the message names what the model
            expects and what the data has.
    """
    path = Path(model_path)
    if not path.exists():
        raise FileNotFoundError(f"No model at '{path}'.")
    batch_size = _checks.positive_int("batch_size", batch_size)
    if limit is not None:
        limit = _checks.positive_int("limit", limit)
    runtime, shape, predict = _predictor(path, _checks.positive_int("threads", threads),
                                         unsafe_load)
    if len(shape) != 3 or shape[0] is None or shape[0] != shape[1]:
        raise ValueError(f"'{path}' must take square images of a fixed size, takes {shape}.")
    images = data_lib.load(data, split=split, data_dir=data_dir)
    size = int(shape[0])
    prepared = inputs.prepare_split(images, model=path, image_size=size,
                                    contract=read_contract(path), preprocess=preprocess,
                                    resize=resize, batch_size=batch_size)
    images, preprocess, notes = prepared.images, prepared.preprocess, list(prepared.notes)
    if prepared.guessed:
        warnings.warn(notes[0], stacklevel=2)
    exact = prepared.exact
    batches = prepared.batches
    logits, labels = [], []
    seen, correct = 0, 0
    total = images.num_examples if limit is None else min(limit, images.num_examples)
    step, reported = max(total // 10, 1), 0
    batches = iter(batches)
    while True:
        try:
            x, y = next(batches)
        except StopIteration:
            break
        except tf.errors.InvalidArgumentError:
            problem = images.locate_bad_image(size if exact else None)
            if problem:
                raise ValueError(problem) from None
            raise
        if limit is not None and seen >= limit:
            break
        out = predict(x.numpy())
        if not logits:
            images.check_num_classes(out.shape[-1])
        logits.append(out)
        labels.append(y.numpy())
        seen += len(out)
        correct += int(np.sum(out.argmax(-1) == labels[-1]))
        if progress is not None and seen - reported >= step and seen < total:
            progress(f"{seen}/{total} images, running top-1 {correct / seen:.2%}")
            reported = seen
    logits = np.concatenate(logits)[:limit]
    labels = np.concatenate(labels)[:limit]
    loss = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    top5 = None
    if logits.shape[-1] > 5:
        top5 = float(np.mean(tf.math.in_top_k(labels, logits, 5).numpy()))
    return Evaluation(
        model=str(path), runtime=runtime, data=f"{images.source} [{split}]",
        examples=int(len(labels)), accuracy=float(np.mean(logits.argmax(-1) == labels)),
        top5_accuracy=top5, loss=float(np.mean(loss)), preprocess=preprocess,
        notes=tuple(notes),
    )
