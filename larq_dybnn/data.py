"""Labelled image datasets and their tf.data input pipelines.

Sources, all giving `LabelledImages` (a dataset of `(uint8 image, int64 label)`):

- `"digits"`: scikit-learn's 8x8 digits, embedded (no download), as RGB uint8;
- a tensorflow-datasets name (`"cifar10"`, `"imagenet2012"`, ...), through tfds's
  standard `tfds.load(..., data_dir=...)`: the real loader wherever the data exists;
- an image folder laid out as `<split>/<class>/<image>`;
- a `.tar.gz` archive of that layout, or a folder of such archives (for example the
  CIFAR-10 copy `cifar10-train-jpg.tar.gz` + `cifar10-test-jpg.tar.gz`). Archives are
  read into memory (fine for CIFAR-sized data), nothing is extracted to disk.

Folders and archives are read in class-interleaved order (one image of each class
in turn), so a shuffle buffer smaller than the dataset still mixes all classes.

Splits may be sliced as in tensorflow-datasets: `"train[:45000]"`, `"train[45000:]"`,
`"train[:90%]"`, `"train[-10%:]"`. For folders and archives a slice of the
class-interleaved order keeps the classes balanced, so `"train[:90%]"` and
`"train[90%:]"` are a stratified training / validation split of the training images
(tfds names pass the slice on to tfds).

Unreadable images: listing checks every file's image signature and size and fails
with the file's name; an image that passes the check but cannot be decoded fails in
the pipeline with TensorFlow's decode error.
"""

from __future__ import annotations

import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks

__all__ = [
    "LabelledImages", "load", "pipeline", "steps_per_epoch", "default_preprocess",
    "CIFAR10_MEAN", "CIFAR10_STD", "parse_split", "slice_indices",
]

CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


@dataclass(frozen=True)
class LabelledImages:
    """A split of a labelled image dataset.

    Attributes:
        dataset: elements `(image, label)`: uint8 `(H, W, 3)` and int64 scalar.
        num_examples: number of elements.
        class_names: class names; label `i` is `class_names[i]`.
        source: where the data came from.
    """

    dataset: tf.data.Dataset
    num_examples: int
    class_names: list[str]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check_num_classes(self, num_classes: int) -> None:
        """Raise if a model with `num_classes` outputs does not fit these labels.

        Raises:
            ValueError: naming both counts and the source.
        """
        if num_classes != self.num_classes:
            raise ValueError(
                f"The model has {num_classes} outputs but '{self.source}' has "
                f"{self.num_classes} classes ({', '.join(self.class_names[:5])}"
                f"{', ...' if self.num_classes > 5 else ''}); build the model with "
                f"num_classes={self.num_classes}."
            )


_SLICE = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\]$")


def parse_split(split: str) -> tuple[str, str | None, str | None]:
    """Split `"name[start:stop]"` into its name and bounds (None where absent).

    Bounds are integers (negative counts from the end) or percentages ("90%").

    Raises:
        ValueError: for text that is neither a split name nor a slice of one.
    """
    if not isinstance(split, str) or not split:
        raise ValueError(f"`split` must be a non-empty string, got {split!r}.")
    if "[" not in split and "]" not in split:
        return split, None, None
    match = _SLICE.match(split)
    if match is None:
        raise ValueError(
            f"`split` {split!r} is not a split name or a slice such as 'train[:45000]', "
            "'train[45000:]' or 'train[:90%]'."
        )
    return match["name"], match["start"], match["stop"]


def _bound(text: str | None, count: int, default: int) -> int:
    if text is None:
        return default
    value = round(count * int(text[:-1]) / 100) if text.endswith("%") else int(text)
    if value < 0:
        value += count
    return min(max(value, 0), count)


def slice_indices(split: str, count: int) -> range:
    """The element indices that `split` (maybe sliced) selects from `count` elements.

    Raises:
        ValueError: for a malformed split, or a slice that selects nothing.
    """
    name, start, stop = parse_split(split)
    selected = range(_bound(start, count, 0), _bound(stop, count, count))
    if len(selected) == 0:
        raise ValueError(f"`split` {split!r} selects no images of the {count} in '{name}'.")
    return selected


def _check_image_bytes(data: bytes, name: str) -> None:
    if len(data) < 8 or not data.startswith(_SIGNATURES):
        raise ValueError(f"Unreadable image '{name}': not a JPEG, PNG, GIF or BMP file.")


def _digits_split(split: str) -> LabelledImages:
    from larq_dybnn.datasets import load_digits

    name = parse_split(split)[0]
    if name not in ("train", "test"):
        raise ValueError(f"`split` of digits must be 'train' or 'test', got {split!r}.")
    (x_train, y_train), (x_test, y_test) = load_digits()
    x, y = {"train": (x_train, y_train), "test": (x_test, y_test)}[name]
    keep = np.asarray(slice_indices(split, len(y)))
    x, y = x[keep], y[keep]
    rgb = np.repeat(np.round((x + 1.0) * 127.5).astype(np.uint8), 3, axis=-1)
    dataset = tf.data.Dataset.from_tensor_slices((rgb, y.astype(np.int64)))
    return LabelledImages(dataset, len(y), [str(i) for i in range(10)], "digits")


def _round_robin(per_class: list[list]) -> tuple[list, list[int]]:
    """Items and labels ordered one class after another in turn (a0 b0 c0 a1 b1 ...).

    Folders and archives list images class by class; a shuffle buffer smaller than
    the dataset would then fill batches with one or two classes (and BatchNorm
    would learn from that). Interleaving makes any buffer see every class.
    """
    items, labels = [], []
    for index in range(max((len(c) for c in per_class), default=0)):
        for label, members in enumerate(per_class):
            if index < len(members):
                items.append(members[index])
                labels.append(label)
    return items, labels


def _from_encoded(
    encoded: list[bytes] | list[str], labels: list[int], *, from_files: bool
) -> tf.data.Dataset:
    def decode(item, label):
        data = tf.io.read_file(item) if from_files else item
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return tf.ensure_shape(image, [None, None, 3]), label

    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(encoded), tf.constant(labels, tf.int64))
    )
    return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def _split_folder(root: Path, split: str) -> LabelledImages:
    folder = root / parse_split(split)[0]
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    per_class: list[list[str]] = []
    for name in classes:
        per_class.append([])
        for path in sorted((folder / name).iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                with open(path, "rb") as handle:
                    _check_image_bytes(handle.read(16), str(path))
                per_class[-1].append(str(path))
    files, labels = _round_robin(per_class)
    if not files:
        raise ValueError(f"No images in '{folder}' (expected {folder}/<class>/<image>).")
    keep = slice_indices(split, len(files))
    files, labels = files[keep.start:keep.stop], labels[keep.start:keep.stop]
    return LabelledImages(
        _from_encoded(files, labels, from_files=True), len(files), classes, str(folder)
    )


def _archives(paths: list[Path], split: str) -> LabelledImages:
    full_split = split
    split = parse_split(split)[0]
    found: dict[str, list[tuple[str, bytes]]] = {}
    for archive in paths:
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    parts = PurePosixPath(member.name).parts
                    if (
                        not member.isfile()
                        or len(parts) < 3
                        or parts[-3] != split
                        or not parts[-1].lower().endswith(IMAGE_SUFFIXES)
                    ):
                        continue
                    data = tar.extractfile(member).read()
                    _check_image_bytes(data, f"{archive}:{member.name}")
                    found.setdefault(parts[-2], []).append((member.name, data))
        except tarfile.TarError as error:
            raise ValueError(f"'{archive}' is not a readable tar archive: {error}") from None
    if not found:
        raise ValueError(
            f"No images of split '{split}' (<...>/{split}/<class>/<image>) in "
            + ", ".join(f"'{p}'" for p in paths)
        )
    classes = sorted(found)
    encoded, labels = _round_robin([[data for _, data in sorted(found[c])] for c in classes])
    keep = slice_indices(full_split, len(encoded))
    encoded, labels = encoded[keep.start:keep.stop], labels[keep.start:keep.stop]
    source = ", ".join(str(p) for p in paths)
    return LabelledImages(
        _from_encoded(encoded, labels, from_files=False), len(encoded), classes, source
    )


def _tfds(name: str, split: str, data_dir: str | None) -> LabelledImages:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises DatasetNotFoundError and others
        raise ValueError(f"Unknown dataset '{name}': {error}") from None
    if not tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        raise FileNotFoundError(
            f"tensorflow-datasets has no prepared '{name}' in "
            f"'{builder.data_dir}'. Prepare it with tfds (or pass data_dir=), or give "
            "an image folder or .tar.gz archive instead."
        )
    dataset = builder.as_dataset(split=split, as_supervised=True)
    info = builder.info
    names = info.features["label"].names
    count = info.splits[split].num_examples
    return LabelledImages(
        dataset.map(lambda x, y: (x, tf.cast(y, tf.int64))), count, list(names),
        f"tfds:{name}",
    )


def load(
    source: str | os.PathLike, *, split: str = "train", data_dir: str | None = None
) -> LabelledImages:
    """Load one split of a labelled image dataset.

    Arguments:
        source: "digits", a tensorflow-datasets name, an image folder
            (`<split>/<class>/<image>` below it), a `.tar.gz` of that layout, or a
            folder holding such archives.
        split: "train", "test", or another split name of the source, optionally
            sliced as in tensorflow-datasets ("train[:45000]", "train[90%:]").
        data_dir: tensorflow-datasets data directory (tfds names only).

    Returns:
        `LabelledImages`.

    Raises:
        FileNotFoundError: for a path that does not exist, or a tfds dataset that is
            not prepared in `data_dir`.
        ValueError: for an empty folder, a split that is missing, an unreadable
            image (named), or an unknown dataset name.
    """
    text = os.fspath(source)
    if text == "digits":
        return _digits_split(split)
    path = Path(text)
    looks_like_path = path.exists() or os.sep in text or text.endswith((".tar", ".gz"))
    if not looks_like_path:
        return _tfds(text, split, data_dir)
    if not path.exists():
        raise FileNotFoundError(f"No dataset at '{path}'.")
    if path.is_file():
        return _archives([path], split)
    parse_split(split)  # a malformed split is an error before any reading
    if (path / parse_split(split)[0]).is_dir():
        return _split_folder(path, split)
    archives = sorted(p for p in path.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".tar")))
    if archives:
        return _archives(archives, split)
    raise ValueError(
        f"'{path}' has no '{split}' folder and no .tar.gz archives "
        f"(expected {path}/{split}/<class>/<image>)."
    )


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


PREPROCESSING = {"cifar": _cifar, "imagenet": _imagenet, "digits": _digits_preprocess}


def default_preprocess(source: str | os.PathLike, image_size: int) -> str:
    """The preprocessing that suits a source: "digits" for digits, "cifar" for
    images of at most 64 pixels, "imagenet" above."""
    if os.fspath(source) == "digits":
        return "digits"
    return "cifar" if image_size <= 64 else "imagenet"


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
        preprocess: "cifar", "imagenet" or "digits".
        image_size: output height and width.
        cache: cache decoded images in memory before augmentation.
        shuffle_buffer: shuffle buffer size (training).
        seed: shuffle and augmentation seed (training); None draws one at random.
        first_epoch: index of the first epoch produced (training).
        epochs: how many epochs to produce (training); None repeats forever.
        drop_remainder: drop the last partial batch (evaluation only; training
            always drops it).

    Returns:
        A dataset of `(float32 images (B, S, S, 3), int64 labels (B,))`.

    Raises:
        ValueError: for an unknown `preprocess`, a non-positive size, a negative
            `first_epoch` or a non-positive `epochs`.
    """
    if preprocess not in PREPROCESSING:
        raise ValueError(f"`preprocess` must be one of {sorted(PREPROCESSING)}, got {preprocess!r}.")
    batch_size = _checks.positive_int("batch_size", batch_size)
    image_size = _checks.positive_int("image_size", image_size)
    function = PREPROCESSING[preprocess]
    dataset = data.dataset
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
