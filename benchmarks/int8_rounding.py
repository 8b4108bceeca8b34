"""What int8 hyper weights do to the shipped CIFAR-10 DyBNN ReActNet-18, on real images.

Prints, on the first `--images` CIFAR-10 test images: the share of images whose top-1
class changes when the hyper kernels are rounded to the int8 grid
(`round_hyper_weights`), Keras top-1 before and after rounding, and how often the
exported int8 file (the export default) agrees with the rounded Keras model in the LCE
interpreter. These are the figures quoted in docs/guides/export.md.

Usage: python benchmarks/int8_rounding.py [--data ../shared/data/cifar10] [--images 1000]
"""

from __future__ import annotations

import argparse
import sys

import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np

from larq_dybnn_cli import positive_int
from larq_dybnn.converter import convert
from larq_dybnn.converter.int8 import round_hyper_weights
from larq_dybnn.converter import lce_outputs
from larq_dybnn.training import data, preprocessing
from larq_dybnn.zoo import DyBNNReActNet18


def test_images(source: str, images: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `images` CIFAR-10 test images, prepared as for evaluation, and labels."""
    test = data.load(source, split=f"test[:{images}]")
    batches = preprocessing.pipeline(test, training=False, batch_size=250,
                                     preprocess="cifar", image_size=32)
    x = np.concatenate([images.numpy() for images, _ in batches])
    y = np.concatenate([labels.numpy() for _, labels in batches])
    return x, y


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/cifar10",
                        help="the CIFAR-10 folder (image-folder archives)")
    parser.add_argument("--images", type=positive_int, default=1000)
    args = parser.parse_args(argv)
    x, y = test_images(args.data, args.images)
    model = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                            weights="cifar10")
    before = model.predict(x, batch_size=250, verbose=0).argmax(-1)
    int8_file = convert(model).int8_flatbuffer
    round_hyper_weights(model)
    after = model.predict(x, batch_size=250, verbose=0).argmax(-1)
    lce = lce_outputs(int8_file, x).argmax(-1)
    print(f"{len(y)} CIFAR-10 test images: rounding the hyper kernels to int8 changes the "
          f"top-1 class of {np.mean(before != after):.1%}; Keras top-1 "
          f"{np.mean(before == y):.1%} float, {np.mean(after == y):.1%} rounded; the int8 "
          f"file agrees with the rounded Keras model on {np.mean(lce == after):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
