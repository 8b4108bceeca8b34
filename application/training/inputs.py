"""Labelled sample images prepared for a model: one path for every command that checks
a model on a few hundred images (`convert --verify`, `verify-arm --data`).

`prepare_inputs` reads the images (an image folder, an archive, or a dataset
`larq_dybnn.training.data.load` knows, such as TensorFlow Datasets' "cifar10"),
checks them against the model's input contract (class names and order, image size),
picks the preprocessing by the one rule (`preprocessing.resolve_preprocess`) and
normalizes them. Evaluation of whole splits streams through
`preprocessing.pipeline` instead, with the same contract checks and rule.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.contract import InputContract
from larq_dybnn.training import data as data_lib
from larq_dybnn.training import preprocessing

__all__ = ["PreparedInputs", "prepare_inputs"]


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


def _from_dataset(source: str, *, split: str, data_dir: str | None, limit: int,
                  size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    images = data_lib.load(source, split=split, data_dir=data_dir)
    pixels, labels = [], []
    for image, label in images.dataset.take(limit):
        if size is not None and tuple(image.shape[:2]) != size:
            image = tf.image.resize(image, size)
        pixels.append(np.asarray(image, np.float32))
        labels.append(int(label))
    if not pixels:
        raise ValueError(f"'{source}' split '{split}' holds no images.")
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise ValueError(f"Images of '{source}' have different sizes {sorted(shapes)}; "
                         "resize them.")
    return np.stack(pixels), np.array(labels, np.int64), list(images.class_names)


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
    limit: int = 100,
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
        limit: how many images at most.
        split: the split of a dataset source (sliced as in tensorflow-datasets);
            ignored for folders and archives, which hold one split.
        data_dir: tensorflow-datasets data directory.

    Returns:
        `PreparedInputs`.

    Raises:
        FileNotFoundError: if a path `source` does not exist.
        ValueError: for images that do not decode, classes other than the
            contract's, images of another size than the contract's without
            `resize`, or an unknown `preprocess` (each message names the source).
    """
    limit = _checks.positive_int("limit", limit)
    size = (int(image_size[0]), int(image_size[1]))
    keep_size = contract is not None and contract.resize == "none" and not resize
    text = os.fspath(source)
    path = Path(text)
    if path.exists() and not _holds_splits(path, split):
        images, labels, classes = data_lib.read_image_sample(
            path, limit=limit, size=None if keep_size else size)
        described = f"{len(images)} images from {text}"
    else:
        images, labels, classes = _from_dataset(
            text, split=split, data_dir=data_dir, limit=limit,
            size=None if keep_size else size)
        described = f"{len(images)} images of {text} '{split}'"
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
        source=f"{described}, preprocess={resolved.name}",
        notes=(resolved.note,) if resolved.note else (),
        guessed=resolved.source == "guessed",
    )
