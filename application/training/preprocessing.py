"""Preprocessing of labelled images and the batched tf.data input pipelines.

Three recipes, each a graph function for tf.data and a NumPy form for arrays of
0..255 pixels (`ARRAY_PREPROCESSING`, used to check exported models on sample images):

- "cifar": pad-4 random crop and horizontal flip for training; per-channel
  normalization with CIFAR-10's mean and std;
- "imagenet": random resized crop and flip for training, short-side resize and centre
  crop for evaluation; ImageNet's mean and std;
- "digits": a one-pixel random shift for training, scaled to [-1, 1].

`resolve_preprocess` is the one rule that picks a model's preprocessing (asked for,
else recorded in its input contract, else guessed). `pipeline` batches a split from `larq_dybnn.training.data.load` with one of them;
its training order and augmentation depend only on the seed and the epoch, which
makes resumed runs bit-exact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.contract import RECIPES, InputContract
from larq_dybnn.training.data import LabelledImages

__all__ = [
    "pipeline", "steps_per_epoch", "default_preprocess", "resolve_preprocess",
    "ResolvedPreprocess", "PREPROCESSING",
    "ARRAY_PREPROCESSING", "CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_MEAN", "IMAGENET_STD",
]

# The numbers come from the input contract's recipes, the one place they are written:
# what a model records is what it was trained with.
CIFAR10_MEAN = np.array(RECIPES["cifar"][0], np.float32)
CIFAR10_STD = np.array(RECIPES["cifar"][1], np.float32)
IMAGENET_MEAN = np.array(RECIPES["imagenet"][0], np.float32)
IMAGENET_STD = np.array(RECIPES["imagenet"][1], np.float32)

#: The evaluation-time preprocessing as NumPy functions of 0..255 pixel arrays (plus
#: "unit", "signed" and "none" scalings for models trained elsewhere).
ARRAY_PREPROCESSING: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cifar": lambda x: (x / 255.0 - CIFAR10_MEAN) / CIFAR10_STD,
    "imagenet": lambda x: (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD,
    "digits": lambda x: x / 127.5 - 1.0,
    "unit": lambda x: x / 255.0,
    "signed": lambda x: x / 127.5 - 1.0,
    "none": lambda x: x,
}


def _normalize(image: tf.Tensor, mean: np.ndarray, std: np.ndarray) -> tf.Tensor:
    return (tf.cast(image, tf.float32) / 255.0 - mean) / std


def _seeds(seed: tf.Tensor | None, count: int) -> list[tf.Tensor | None]:
    if seed is None:
        return [None] * count
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, count)))


def _shifted_crop(image: tf.Tensor, size: int, pad: int, seed: tf.Tensor) -> tf.Tensor:
    image = tf.image.resize_with_crop_or_pad(image, size + 2 * pad, size + 2 * pad)
    return tf.image.stateless_random_crop(image, [size, size, 3], seed=seed)


def _cifar(image, label, training: bool, size: int, seed=None):
    image = tf.image.resize_with_crop_or_pad(image, size, size)
    if training:
        crop, flip = _seeds(seed, 2)
        image = _shifted_crop(image, size, 4, crop)
        image = tf.image.stateless_random_flip_left_right(image, seed=flip)
    return _normalize(image, CIFAR10_MEAN, CIFAR10_STD), label


def _digits_preprocess(image, label, training: bool, size: int, seed=None):
    image = tf.image.resize_with_crop_or_pad(image, size, size)
    if training:  # a shift of at most one pixel; no flip (digits are not symmetric)
        image = _shifted_crop(image, size, 1, _seeds(seed, 1)[0])
    return tf.cast(image, tf.float32) / 127.5 - 1.0, label


def _imagenet(image, label, training: bool, size: int, seed=None):
    if training:
        box, flip = _seeds(seed, 2)
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([0, 0, 4], tf.float32), seed=box,
            area_range=(0.08, 1.0), aspect_ratio_range=(3 / 4, 4 / 3),
            min_object_covered=0.0, use_image_if_no_bounding_boxes=True,
        )
        image = tf.slice(image, begin, crop_size)
        image = tf.image.resize(image, [size, size])
        image = tf.image.stateless_random_flip_left_right(image, seed=flip)
    else:
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = (size / 0.875) / tf.reduce_min(shape)  # resize short side to 256
        image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
        image = tf.image.resize_with_crop_or_pad(image, size, size)
    return _normalize(image, IMAGENET_MEAN, IMAGENET_STD), label


#: The training recipes: augmentation for training, the matching evaluation transform.
PREPROCESSING = {"cifar": _cifar, "imagenet": _imagenet, "digits": _digits_preprocess}


def _scaling(name: str):
    scale = ARRAY_PREPROCESSING[name]

    def function(image, label, training: bool, size: int, seed=None):
        del training, seed  # evaluation only (`pipeline` refuses them for training)
        image = tf.image.resize_with_crop_or_pad(image, size, size)
        return scale(tf.cast(image, tf.float32)), label

    return function


#: Every name `--preprocess` takes: the recipes, and scalings for evaluating models
#: trained elsewhere ("unit": [0, 1], "signed": [-1, 1], "none": raw 0..255 pixels).
EVALUATION_PREPROCESSING = {
    **PREPROCESSING, **{name: _scaling(name) for name in ("unit", "signed", "none")}}


def default_preprocess(source: str | os.PathLike, image_size: int) -> str:
    """The preprocessing that suits a source: "digits" for digits, "cifar" for
    images of at most 64 pixels, "imagenet" above."""
    if os.fspath(source) == "digits":
        return "digits"
    return "cifar" if image_size <= 64 else "imagenet"


@dataclass(frozen=True)
class ResolvedPreprocess:
    """The preprocessing chosen for a model and its data, and why.

    Attributes:
        name: "cifar", "imagenet" or "digits" (a key of `PREPROCESSING`).
        source: "recorded" (the model's input contract), "given" (asked for, no
            record or the record agrees), "override" (asked for against the record)
            or "guessed" (no record, nothing asked: by data and input size).
        note: what a user should be told ("override", "guessed"), or None.
    """

    name: str
    source: str
    note: str | None = None

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """Apply it to a batch of 0..255 images in memory (float32 out)."""
        return ARRAY_PREPROCESSING[self.name](np.asarray(images, np.float32)).astype(np.float32)


def resolve_preprocess(
    *,
    requested: str | None,
    contract: InputContract | None,
    data: str | os.PathLike,
    image_size: int,
    model: str | os.PathLike,
) -> ResolvedPreprocess:
    """The one rule every command uses to pick a model's preprocessing.

    The preprocessing asked for wins (with a note when it overrides the record);
    else the one recorded in the model's input contract; else a guess by data and
    input size (`default_preprocess`), with a note saying so. Used by `evaluate`,
    `convert --verify` and the sweep's test evaluation.

    Arguments:
        requested: the preprocessing asked for (`--preprocess`), or None.
        contract: the model's recorded input contract, or None.
        data: the data source (a guess needs it: "digits" has its own).
        image_size: the model's input size (a guess needs it).
        model: the model's path or name, for the notes.

    Returns:
        A `ResolvedPreprocess`.

    Raises:
        ValueError: if `requested` is not a known preprocessing.
    """
    if requested is not None and requested not in EVALUATION_PREPROCESSING:
        raise ValueError(f"`preprocess` must be one of {sorted(EVALUATION_PREPROCESSING)}, "
                         f"got {requested!r}.")
    if requested is not None:
        if contract is not None and requested != contract.preprocess:
            return ResolvedPreprocess(requested, "override", f"--preprocess {requested} "
                                      f"overrides the recorded '{contract.preprocess}'")
        return ResolvedPreprocess(requested, "given")
    if contract is not None:
        return ResolvedPreprocess(contract.preprocess, "recorded")
    guess = default_preprocess(data, image_size)
    return ResolvedPreprocess(guess, "guessed", f"'{model}' records no input contract; the "
                              f"preprocessing '{guess}' was guessed from the data and the "
                              "input size")


def steps_per_epoch(data: LabelledImages, batch_size: int) -> int:
    """Full batches per training epoch (training pipelines drop the remainder).

    Raises:
        ValueError: if the split has fewer examples than one batch.
    """
    batch_size = _checks.positive_int("batch_size", batch_size)
    steps = data.num_examples // batch_size
    if steps == 0:
        raise ValueError(
            f"`batch_size`={batch_size} is larger than '{data.source}' "
            f"({data.num_examples} examples)."
        )
    return steps


def pipeline(
    data: LabelledImages,
    *,
    training: bool,
    batch_size: int,
    preprocess: str = "cifar",
    image_size: int = 32,
    cache: bool = True,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    first_epoch: int = 0,
    epochs: int | None = None,
    drop_remainder: bool | None = None,
    exact_size: bool = False,
) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline with the recipe's preprocessing.

    "cifar": pad-4 random crop and horizontal flip for training; per-channel
    normalization with CIFAR-10's mean and std. "imagenet": random resized crop
    (8%-100% area, 3/4-4/3 aspect) and flip for training, resize of the short side to
    `image_size / 0.875` and centre crop for evaluation; ImageNet mean and std.
    "digits": pad-1 random crop for training (no flip), scaled to [-1, 1].

    A training pipeline yields epoch after epoch (`first_epoch`, `first_epoch + 1`,
    ...), each `steps_per_epoch(data, batch_size)` full batches long; fit it with
    `steps_per_epoch=`. The order and augmentation of an epoch depend only on `seed`
    and the epoch's index (stateless random ops), so a run resumed at epoch k sees
    exactly the batches an uninterrupted run sees from epoch k on.

    Arguments:
        data: from `load`.
        training: augment and shuffle (training) or not (evaluation).
        batch_size: batch size.
        preprocess: "cifar", "imagenet" or "digits" (a key of `PREPROCESSING`); for
            evaluation also "unit", "signed" or "none" (`EVALUATION_PREPROCESSING`).
        image_size: output height and width.
        cache: cache decoded images in memory before augmentation.
        shuffle_buffer: shuffle buffer size (training).
        seed: shuffle and augmentation seed (training); None draws one at random.
        first_epoch: index of the first epoch produced (training).
        epochs: how many epochs to produce (training); None repeats forever.
        drop_remainder: drop the last partial batch (evaluation only; training
            always drops it).
        exact_size: refuse (InvalidArgumentError) any image that is not
            `image_size` x `image_size`, instead of padding or cropping it.

    Returns:
        A dataset of `(float32 images (B, S, S, 3), int64 labels (B,))`.

    Raises:
        ValueError: for an unknown `preprocess`, a non-positive size, a negative
            `first_epoch` or a non-positive `epochs`.
    """
    known = PREPROCESSING if training else EVALUATION_PREPROCESSING
    if preprocess not in known:
        raise ValueError(f"`preprocess` must be one of {sorted(known)}"
                         f"{' for training' if training else ''}, got {preprocess!r}.")
    batch_size = _checks.positive_int("batch_size", batch_size)
    image_size = _checks.positive_int("image_size", image_size)
    function = known[preprocess]
    dataset = data.dataset
    if exact_size:
        # Every image, not only the first, must have the size: a smaller or larger
        # one would be padded or cropped without a word. An error names the file
        # (`LabelledImages.locate_bad_image`).
        dataset = dataset.map(lambda image, label: (
            tf.ensure_shape(image, [image_size, image_size, None]), label))
    if cache:
        dataset = dataset.cache()
    if not training:
        dataset = dataset.map(
            lambda image, label: function(image, label, False, image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        dataset = dataset.batch(batch_size, drop_remainder=bool(drop_remainder))
        return dataset.prefetch(tf.data.AUTOTUNE)

    if first_epoch < 0:
        raise ValueError(f"`first_epoch` must be >= 0, got {first_epoch!r}.")
    if epochs is not None:
        epochs = _checks.positive_int("epochs", epochs)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    base = tf.constant(int(seed) % 2**31, tf.int64)

    graph_seed = int(seed) % (2**31 - 2) + 1  # never 0: TF treats (0, 0) specially

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        # The graph-level seed of this traced function only: shuffling then depends
        # on `seed` and the epoch, not on the process's global seed.
        tf.compat.v1.set_random_seed(graph_seed)
        epoch_seed = base * 1_000_003 + epoch
        shuffled = dataset.shuffle(
            shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False
        )

        def augment(index, element):
            image, label = element
            return function(image, label, True, image_size, tf.stack([epoch_seed, index]))

        augmented = shuffled.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        return augmented.batch(batch_size, drop_remainder=True)

    if epochs is None:
        indices = tf.data.Dataset.counter(first_epoch)
    else:
        indices = tf.data.Dataset.range(first_epoch, first_epoch + epochs)
    return indices.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)
