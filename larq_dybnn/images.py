"""Read a sample of labelled images from an image folder or a .tar.gz of one.

The layout is `.../<class>/<image>` (for example `cifar10/test/cat/0001.jpg`): the
class is the name of an image's folder, and classes are numbered in sorted order.
Used to verify exported models on real images; an unreadable image is an error that
names the file.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGE_SUFFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
)

__all__ = ["read_image_sample", "PREPROCESSING"]


#: Named preprocessing of uint8-range images, to match how a model was trained.
PREPROCESSING: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cifar": lambda x: (x / 255.0 - CIFAR10_MEAN) / CIFAR10_STD,
    "imagenet": lambda x: (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD,
    "unit": lambda x: x / 255.0,
    "signed": lambda x: x / 127.5 - 1.0,
    "none": lambda x: x,
}


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not Path(name).name.startswith(".")


def _listing(path: Path) -> list[tuple[str, str]]:
    """(member name, class) for every image, from a folder or an archive."""
    if path.is_dir():
        return [
            (str(p), p.parent.name)
            for p in sorted(path.rglob("*"))
            if p.is_file() and _is_image(p.name)
        ]
    try:
        with tarfile.open(path, "r:*") as tar:
            return [
                (m.name, Path(m.name).parent.name)
                for m in tar.getmembers()
                if m.isfile() and _is_image(m.name)
            ]
    except (tarfile.TarError, OSError) as error:
        raise ValueError(f"'{path}' is neither an image folder nor a readable tar archive: {error}") from None


def _round_robin(listing: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    by_class: dict[str, list[str]] = {}
    for name, label in listing:
        by_class.setdefault(label, []).append(name)
    chosen: list[tuple[str, str]] = []
    queues = [iter(by_class[label]) for label in sorted(by_class)]
    labels = sorted(by_class)
    while len(chosen) < limit and queues:
        for label, queue in list(zip(labels, queues)):
            name = next(queue, None)
            if name is None:
                index = queues.index(queue)
                del queues[index], labels[index]
                continue
            chosen.append((name, label))
            if len(chosen) == limit:
                break
    return chosen


def read_image_sample(
    path: str | os.PathLike,
    *,
    limit: int = 100,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read up to `limit` images, taken in turn from each class.

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
    chosen = _round_robin(listing, limit)

    def decode(data: bytes, name: str) -> np.ndarray:
        try:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError):
            raise ValueError(f"Cannot decode image '{name}' in '{path}'.") from None
        if size is not None:
            image = tf.image.resize(image, size)
        return np.asarray(image, np.float32)

    images = {}
    if path.is_dir():
        for name, _ in chosen:
            images[name] = decode(Path(name).read_bytes(), name)
    else:
        wanted = {name for name, _ in chosen}
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.name in wanted:
                    images[member.name] = decode(tar.extractfile(member).read(), member.name)
                    if len(images) == len(wanted):
                        break
    shapes = {images[name].shape for name, _ in chosen}
    if len(shapes) > 1:
        raise ValueError(f"Images in '{path}' have different sizes {sorted(shapes)}; pass `size`.")
    x = np.stack([images[name] for name, _ in chosen])
    y = np.array([class_names.index(label) for _, label in chosen])
    return x, y, class_names
