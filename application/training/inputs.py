"""Labelled images prepared for a model: the one path from data to a model's inputs.

`prepare_split` is where every consumer checks a split against the model's input
contract (class names and order, channels, image size), picks the preprocessing by the
one rule (`preprocessing.resolve_preprocess`) and gets the evaluation pipeline:
`evaluate` streams it; `prepare_inputs` reads a sample of it into memory for
`convert --verify`, `verify-arm --data` and the sweep's test evaluation. Image
folders and archives without splits (`<class>/<image>`) are sampled class by class
(`data.read_image_sample`) and pass the same checks.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.contract import InputContract
from larq_dybnn.training import data as data_lib
from larq_dybnn.training import preprocessing

__all__ = ["PreparedInputs", "PreparedSplit", "prepare_inputs", "prepare_split"]


@dataclass(frozen=True)
class PreparedInputs:
    """Sample images ready for a model, and what was done to them.

    Attributes:
        samples: float32 `(N, H, W, C)`, normalized for the model.
        labels: int64 `(N,)`, indexing `class_names`.
        class_names: the data's class names.
        preprocess: the preprocessing applied (a key of
            `preprocessing.EVALUATION_PREPROCESSING`).
        source: where the images came from and how they were prepared, for reports.
        notes: what a user should be told (a guessed or overridden preprocessing).
        guessed: whether the preprocessing was guessed (no contract, none asked for).
    """

    samples: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    preprocess: str
    source: str
    notes: tuple[str, ...] = ()
    guessed: bool = False


@dataclass(frozen=True)
class PreparedSplit:
    """A split checked against a model, and its evaluation pipeline.

    Attributes:
        images: the split as loaded (resized to the model's size if asked).
        preprocess: the preprocessing chosen.
        batches: `(float32 images, int64 labels)` batches, normalized for the model.
        notes: what a user should be told (a resize, a guessed or overridden
            preprocessing).
        guessed: whether the preprocessing was guessed.
        exact: whether every image must have the model's size (an image of another
            size stops the pipeline; `images.locate_bad_image(size)` names it).
    """

    images: data_lib.LabelledImages
    preprocess: str
    batches: tf.data.Dataset
    notes: tuple[str, ...]
    guessed: bool
    exact: bool


def prepare_split(
    images: data_lib.LabelledImages,
    *,
    model: str | os.PathLike,
    image_size: int,
    contract: InputContract | None,
    preprocess: str | None = None,
    resize: bool = False,
    batch_size: int = 500,
) -> PreparedSplit:
    """Check a loaded split against a model and build its evaluation pipeline.

    Arguments:
        images: from `larq_dybnn.training.data.load`.
        model: the model's path or name, for messages.
        image_size: the model's (square) input size.
        contract: the model's recorded input contract, or None.
        preprocess: the preprocessing asked for, or None (`resolve_preprocess`).
        resize: resize every image to the model's size (bilinear); without it an
            image of another size is an error, except under the ImageNet recipe,
            which resizes by design.
        batch_size: images per batch.

    Returns:
        A `PreparedSplit`.

    Raises:
        ValueError: for an image that does not decode (named), data whose classes,
            channels or image size do not fit the contract, images of another size
            without `resize`, or an unknown `preprocess`.
    """
    size = _checks.positive_int("image_size", image_size)
    try:
        first = next(iter(images.dataset.take(1)))[0]
    except tf.errors.InvalidArgumentError:
        problem = images.locate_bad_image()
        if problem:
            raise ValueError(problem) from None
        raise
    data_size = (int(first.shape[0]), int(first.shape[1]))
    notes = []
    if contract is not None:
        contract.check_classes(images.class_names, source=images.source)
        contract.check_channels(int(first.shape[-1]), source=images.source)
        contract.check_image_size(data_size, source=images.source, resize=resize)
    resolved = preprocessing.resolve_preprocess(
        requested=preprocess, contract=contract, data=images.source, image_size=size,
        model=model)
    if resolved.note:
        notes.append(resolved.note)
    if not resize and resolved.name != "imagenet" and data_size != (size, size):
        raise ValueError(
            f"'{model}' takes {size}x{size} images, but '{images.source}' has "
            f"{data_size[0]}x{data_size[1]} images; pass --resize to resize them (they "
            f"would otherwise be padded or cropped by the '{resolved.name}' recipe).")
    if resize:
        # Every image, not only when the first one differs: sizes may vary.
        if data_size != (size, size):
            notes.append(f"images resized from {data_size[0]}x{data_size[1]} to "
                         f"{size}x{size}")
        images = dataclasses.replace(images, dataset=images.dataset.map(
            lambda x, y: (tf.cast(tf.round(tf.image.resize(x, [size, size])), tf.uint8), y)))
    exact = not resize and resolved.name != "imagenet"
    batches = preprocessing.pipeline(images, training=False, batch_size=batch_size,
                                     preprocess=resolved.name, image_size=size,
                                     cache=False, exact_size=exact)
    return PreparedSplit(images, resolved.name, batches, tuple(notes),
                         resolved.source == "guessed", exact)


def _holds_splits(path: Path, split: str) -> bool:
    """Whether `load` reads `path` by split: a folder with a `<split>/` folder, or a
    folder of archives (a single archive or a `<class>/<image>` folder is read whole)."""
    if not path.is_dir():
        return False
    return (path / data_lib.parse_split(split)[0]).is_dir() or any(
        p.name.endswith((".tar.gz", ".tgz", ".tar")) for p in path.iterdir())


def prepare_inputs(
    source: str | os.PathLike,
    *,
    model: str | os.PathLike,
    image_size: tuple[int, int],
    contract: InputContract | None,
    preprocess: str | None = None,
    resize: bool = False,
    limit: int | None = 100,
    split: str = "test",
    data_dir: str | None = None,
) -> PreparedInputs:
    """Read up to `limit` labelled images of `source` and prepare them for a model.

    Arguments:
        source: an image folder or `.tar`/`.tar.gz` archive laid out
            `<class>/<image>` (at any depth; classes taken in turn, so any `limit`
            is balanced), or any other source of `larq_dybnn.training.data.load`
            ("digits", a TensorFlow Datasets name such as "cifar10", a folder with
            `<split>/<class>/<image>` below it, a folder of such archives), of which
            the first `limit` images of `split` are read.
        model: the model's path or name, for messages.
        image_size: the model's input `(height, width)`.
        contract: the model's recorded input contract, or None.
        preprocess: the preprocessing asked for, or None for the contract's (a
            guess by data and size without one).
        resize: resize images of another size to `image_size` (bilinear). Without
            it, images must have the model's size when the contract says the model
            takes them unresized; models without a contract get them resized.
        limit: how many images at most; None for the whole split of a dataset source
            (folders and archives without splits read at most 100).
        split: the split of a dataset source (sliced as in tensorflow-datasets);
            ignored for folders and archives, which hold one split.
        data_dir: tensorflow-datasets data directory.

    Returns:
        `PreparedInputs`.

    Raises:
        FileNotFoundError: if a path `source` does not exist.
        ValueError: as `prepare_split`, and for images of a folder or archive that do
            not decode (each message names the source or the file).
    """
    limit = None if limit is None else _checks.positive_int("limit", limit)
    size = (int(image_size[0]), int(image_size[1]))
    text = os.fspath(source)
    path = Path(text)
    if not (path.exists() and not _holds_splits(path, split)):
        images = data_lib.load(text, split=split, data_dir=data_dir)
        if limit is not None:
            images = dataclasses.replace(images, dataset=images.dataset.take(limit),
                                         num_examples=min(limit, images.num_examples))
        prepared = prepare_split(images, model=model, image_size=size[0], contract=contract,
                                 preprocess=preprocess, resize=resize or contract is None)
        try:
            pixels, labels = zip(*((x.numpy(), y.numpy()) for x, y in prepared.batches))
        except tf.errors.InvalidArgumentError:
            problem = images.locate_bad_image(size[0] if prepared.exact else None)
            if problem:
                raise ValueError(problem) from None
            raise
        samples = np.concatenate(pixels)
        return PreparedInputs(
            samples=samples, labels=np.concatenate(labels).astype(np.int64),
            class_names=list(images.class_names), preprocess=prepared.preprocess,
            source=f"{len(samples)} images of {text} '{split}', "
                   f"preprocess={prepared.preprocess}",
            notes=prepared.notes, guessed=prepared.guessed)
    keep_size = contract is not None and contract.resize == "none" and not resize
    images, labels, classes = data_lib.read_image_sample(
        path, limit=limit or 100, size=None if keep_size else size)
    if contract is not None:
        contract.check_classes(classes, source=text)
        contract.check_image_size(images.shape[1:3], source=text, resize=resize)
    resolved = preprocessing.resolve_preprocess(
        requested=preprocess, contract=contract, data=text, image_size=size[0], model=model)
    return PreparedInputs(
        samples=resolved.normalize(images),
        labels=np.asarray(labels, np.int64),
        class_names=list(classes),
        preprocess=resolved.name,
        source=f"{len(images)} images from {text}, preprocess={resolved.name}",
        notes=(resolved.note,) if resolved.note else (),
        guessed=resolved.source == "guessed",
    )
