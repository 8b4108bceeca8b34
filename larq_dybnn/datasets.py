"""Datasets that need no download: scikit-learn's digits, the embedded default."""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits"]

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
