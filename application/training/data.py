"""Loading labelled images: every source the package reads images and labels from.

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

`read_image_sample` reads a class-balanced sample of a `<class>/<image>` folder or
archive into arrays (to check an exported model on real images), and `load_digits`
gives the embedded digits as arrays. Preprocessing and batching are in
`larq_dybnn.training.preprocessing`.

Unreadable images: listing checks every file's image signature and size and fails
with the file's name; an image that passes the check but cannot be decoded fails in
the pipeline with TensorFlow's decode error.
"""

from __future__ import annotations

import lzma
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks

__all__ = [
    "LabelledImages", "load", "load_digits", "read_image_sample", "parse_split",
    "slice_indices", "IMAGE_SUFFIXES",
]


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
    names: tuple[str, ...] = ()
    encoded: tuple = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def locate_bad_image(self, size: int | None = None) -> str | None:
        """Find the first image that does not decode, or (with `size`) is not
        `size` x `size`: what to say when the pipeline fails on one.

        Decodes every image eagerly, so call it only after a failure.

        Returns:
            A message naming the file and what is wrong, or None when every image
            is fine (or the source keeps no per-image names, as tfds).
        """
        for name, item in zip(self.names, self.encoded):
            try:
                data = tf.io.read_file(item) if isinstance(item, str) else item
                check_image_dimensions(bytes(data.numpy() if hasattr(data, "numpy")
                                             else data), name)
                image = tf.io.decode_image(data, channels=3, expand_animations=False)
            except ValueError as error:
                if "declares" in str(error):
                    return str(error)
                return f"Cannot decode image '{name}' of '{self.source}' (damaged file?)."
            except tf.errors.InvalidArgumentError:
                return f"Cannot decode image '{name}' of '{self.source}' (damaged file?)."
            if size is not None and tuple(image.shape[:2]) != (size, size):
                return (f"Image '{name}' of '{self.source}' is {image.shape[0]}x"
                        f"{image.shape[1]}, not {size}x{size} like the others; resize the "
                        "data (or pass --resize / --image-size).")
        return None

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
    if text.endswith("%"):
        percent = int(text[:-1])
        if not -100 <= percent <= 100:
            raise ValueError(f"A split bound of {text} is outside -100%..100%.")
        value = round(count * percent / 100)
    else:
        value = int(text)
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


#: The largest archive member read as an image (no JPEG, PNG, GIF or BMP a data set
#: holds comes near it; a 1 GiB member in a 1 MB archive is a compression bomb).
MAX_IMAGE_BYTES = 64 * 2**20


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: object) -> bytes:
    """An image member's bytes, checked before it is read: its declared size must be
    at most `MAX_IMAGE_BYTES` and its first bytes an image signature.

    Raises:
        ValueError: naming the archive and member.
    """
    name = f"{archive}:{member.name}"
    if member.size > MAX_IMAGE_BYTES:
        raise ValueError(f"Archive member '{name}' declares {member.size:,} bytes, more "
                         f"than any image ({MAX_IMAGE_BYTES:,}); refusing to read it.")
    handle = tar.extractfile(member)
    if handle is None:
        raise ValueError(f"Archive member '{name}' is not a regular file.")
    head = handle.read(16)
    _check_image_bytes(head, name)
    return head + handle.read(member.size - len(head))


#: What reading a damaged archive raises (tar headers, gzip/bzip2/xz streams, EOF).
#: Most pixels an image may declare: decoding allocates them all before anything
#: else can look (a 1.2 MB PNG declaring 20000x20000 pixels took 6.45 GB).
MAX_IMAGE_PIXELS = 64 * 2**20


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(height, width) an image's header declares (JPEG, PNG, GIF, BMP), read without
    decoding; None when the header does not say (the decoder then reports it)."""
    import struct

    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return height, width
        if data.startswith(b"GIF8"):
            width, height = struct.unpack("<HH", data[6:10])
            return height, width
        if data.startswith(b"BM"):
            width, height = struct.unpack("<ii", data[18:26])
            return abs(height), abs(width)
        if data.startswith(b"\xff\xd8"):
            at = 2
            while at + 9 < len(data):
                if data[at] != 0xFF:
                    return None
                marker = data[at + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    at += 2
                    continue
                length = struct.unpack(">H", data[at + 2:at + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    height, width = struct.unpack(">HH", data[at + 5:at + 9])
                    return height, width
                at += 2 + length
    except struct.error:
        return None
    return None


def _declares_few_pixels(data: bytes) -> np.bool_:
    size = image_dimensions(bytes(data))
    return np.bool_(size is None or size[0] * size[1] <= MAX_IMAGE_PIXELS)


def check_image_dimensions(data: bytes, name: str) -> None:
    """Raise, naming the image, if its header declares more than `MAX_IMAGE_PIXELS`.

    Raises:
        ValueError: naming `name` and the declared size.
    """
    size = image_dimensions(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ValueError(f"Image '{name}' declares {size[0]}x{size[1]} pixels, more than "
                         f"the {MAX_IMAGE_PIXELS:,} an image may have; refusing to decode it.")


ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def _digits_split(split: str) -> LabelledImages:
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
        # The header's size first: decoding allocates every declared pixel.
        small = tf.numpy_function(_declares_few_pixels, [data], tf.bool, stateful=False)
        with tf.control_dependencies([tf.debugging.Assert(small, [
                "an image declares more than MAX_IMAGE_PIXELS pixels"])]):
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
        _from_encoded(files, labels, from_files=True), len(files), classes, str(folder),
        names=tuple(files), encoded=tuple(files),
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
                    data = read_member(tar, member, archive)
                    found.setdefault(parts[-2], []).append((member.name, data))
        except ARCHIVE_ERRORS as error:
            raise ValueError(f"'{archive}' is not a readable tar archive (damaged or "
                             f"truncated?): {type(error).__name__}: {error}") from None
    if not found:
        raise ValueError(
            f"No images of split '{split}' (<...>/{split}/<class>/<image>) in "
            + ", ".join(f"'{p}'" for p in paths)
        )
    classes = sorted(found)
    items, labels = _round_robin([sorted(found[c]) for c in classes])
    keep = slice_indices(full_split, len(items))
    items, labels = items[keep.start:keep.stop], labels[keep.start:keep.stop]
    encoded = [data for _, data in items]
    source = ", ".join(str(p) for p in paths)
    return LabelledImages(
        _from_encoded(encoded, labels, from_files=False), len(encoded), classes, source,
        names=tuple(name for name, _ in items), encoded=tuple(encoded),
    )


def _tfds(name: str, split: str, data_dir: str | None, download: bool) -> LabelledImages:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises DatasetNotFoundError and others
        raise ValueError(f"Unknown dataset '{name}': {error}") from None
    if not tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        if not download:
            raise FileNotFoundError(
                f"tensorflow-datasets has no prepared '{name}' in "
                f"'{builder.data_dir}'. Load it with download=True, prepare it with "
                "tfds (or pass data_dir=), or give an image folder or .tar.gz archive "
                "instead."
            )
        try:
            builder.download_and_prepare()
        except Exception as error:  # network, disk and checksum errors of every kind
            raise RuntimeError(
                f"tensorflow-datasets could not download and prepare '{name}' in "
                f"'{builder.data_dir}': {error}. Without network access, give an image "
                "folder or .tar.gz archive instead."
            ) from error
    dataset = builder.as_dataset(split=split, as_supervised=True)
    info = builder.info
    names = info.features["label"].names
    count = info.splits[split].num_examples
    return LabelledImages(
        dataset.map(lambda x, y: (x, tf.cast(y, tf.int64))), count, list(names),
        f"tfds:{name}",
    )


def load(
    source: str | os.PathLike,
    *,
    split: str = "train",
    data_dir: str | None = None,
    download: bool = True,
) -> LabelledImages:
    """Load one split of a labelled image dataset.

    Arguments:
        source: "digits", a tensorflow-datasets name, an image folder
            (`<split>/<class>/<image>` below it), a `.tar.gz` of that layout, or a
            folder holding such archives.
        split: "train", "test", or another split name of the source, optionally
            sliced as in tensorflow-datasets ("train[:45000]", "train[90%:]").
        data_dir: tensorflow-datasets data directory (tfds names only; tfds' default,
            `~/tensorflow_datasets`, if None).
        download: whether a tfds dataset that is not prepared in `data_dir` is
            downloaded and prepared there first, as `tfds.load` does.

    Returns:
        `LabelledImages`.

    Raises:
        FileNotFoundError: for a path that does not exist, or, with `download=False`,
            a tfds dataset that is not prepared in `data_dir`.
        RuntimeError: if tfds cannot download or prepare the dataset.
        ValueError: for an empty folder, a split that is missing, an unreadable
            image (named), or an unknown dataset name.
    """
    text = os.fspath(source)
    if text == "digits":
        return _digits_split(split)
    path = Path(text)
    looks_like_path = path.exists() or os.sep in text or text.endswith((".tar", ".gz"))
    if not looks_like_path:
        return _tfds(text, split, data_dir, download)
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


Split = tuple[np.ndarray, np.ndarray]


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """Load scikit-learn's 8x8 handwritten digits as NHWC float32 arrays.

    The 1,797 images ship inside scikit-learn, so this works offline. Pixels (0..16)
    are scaled to [-1, 1]; the split is stratified and fixed by `seed`.

    Arguments:
        test_fraction: share of the images held out for testing, in (0, 1).
        seed: seed of the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, images shaped `(N, 8, 8, 1)` and
        integer labels 0..9.

    Raises:
        ValueError: if `test_fraction` is not strictly between 0 and 1.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}.")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = (digits.images.astype(np.float32) / 8.0 - 1.0)[..., None]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return (x_train, y_train), (x_test, y_test)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not Path(name).name.startswith(".")


def _listing(path: Path) -> list[tuple[str, str]]:
    """(member name, class) for every image below a folder or in an archive."""
    if path.is_dir():
        return [(str(p), p.parent.name) for p in sorted(path.rglob("*"))
                if p.is_file() and _is_image(p.name)]
    try:
        with tarfile.open(path, "r:*") as tar:
            return [(m.name, PurePosixPath(m.name).parent.name) for m in tar.getmembers()
                    if m.isfile() and _is_image(m.name)]
    except ARCHIVE_ERRORS as error:
        raise ValueError(
            f"'{path}' is neither an image folder nor a readable tar archive: {error}"
        ) from None


def read_image_sample(
    path: str | os.PathLike,
    *,
    limit: int = 100,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read up to `limit` images of a `<class>/<image>` folder or archive into arrays.

    Images are taken one class after another in turn, so any `limit` is balanced.

    Arguments:
        path: an image folder (`<class>/<image>` below it, at any depth) or a tar
            archive (.tar, .tar.gz) of one.
        limit: how many images at most.
        size: `(height, width)` to resize to (bilinear), or None to keep sizes (they
            must then all be equal).

    Returns:
        `(images, labels, class_names)`: float32 images in 0..255 shaped
        `(N, H, W, 3)`, integer labels indexing the sorted `class_names`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if it holds no images, is not a folder or tar archive, or an
            image cannot be decoded (the message names the file).
    """
    limit = _checks.positive_int("limit", limit)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No image folder or archive at '{path}'.")
    listing = _listing(path)
    if not listing:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) found in '{path}'.")
    class_names = sorted({label for _, label in listing})
    names, labels = _round_robin(
        [[name for name, label in listing if label == c] for c in class_names])
    names, labels = names[:limit], labels[:limit]

    def decode(data: bytes, name: str) -> np.ndarray:
        check_image_dimensions(data, f"{path}:{name}" if path.is_file() else name)
        try:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError):
            raise ValueError(f"Cannot decode image '{name}' in '{path}'.") from None
        if size is not None:
            image = tf.image.resize(image, size)
        return np.asarray(image, np.float32)

    images: dict[str, np.ndarray] = {}
    if path.is_dir():
        for name in names:
            images[name] = decode(Path(name).read_bytes(), name)
    else:
        wanted = set(names)
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.name in wanted:
                        images[member.name] = decode(read_member(tar, member, path),
                                                     member.name)
                        if len(images) == len(wanted):
                            break
        except ARCHIVE_ERRORS as error:
            raise ValueError(f"'{path}' is not a readable tar archive (damaged or "
                             f"truncated?): {type(error).__name__}: {error}") from None
    shapes = {images[name].shape for name in names}
    if len(shapes) > 1:
        raise ValueError(f"Images in '{path}' have different sizes {sorted(shapes)}; pass `size`.")
    return np.stack([images[name] for name in names]), np.array(labels), class_names
