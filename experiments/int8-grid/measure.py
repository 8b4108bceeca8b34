"""Does the shipped DyBNN lose anything when its hyper kernels are put on the int8 grid?

The default export stores the hyper functions' kernels in int8, so the file computes
the model with those kernels rounded; the float model the weights came from gets
another top-1 on about 5% of test images. If the shipped weights themselves lie on
the int8 grid, the file computes the shipped model, and the two can only differ by
LCE's own arithmetic. This script measures, for the shipped DyBNN ReActNet-18 x0.25:
Keras top-1 of the float and of the rounded model on the validation split the
weights were chosen on (`train[45000:]`) and on the test split, how often their top-1
differ, and how often the int8 file agrees with each in the LCE interpreter (test).
It writes the figures as JSON. `--model` measures a saved model instead (a
fine-tuned one, say), whose "float" forward pass is whatever it computes.

    python experiments/int8-grid/measure.py --data ../shared/data/cifar10 \
        --json experiments/int8-grid/measured.json
"""

from __future__ import annotations

import argparse
import json
import sys

import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.converter import convert, lce_outputs
from larq_dybnn.converter.int8 import round_hyper_weights
from larq_dybnn.training import data, preprocessing
from larq_dybnn.zoo import DyBNNReActNet18


def split(source: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    images = data.load(source, split=name)
    batches = preprocessing.pipeline(images, training=False, batch_size=500,
                                     preprocess="cifar", image_size=32, cache=False)
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in batches))
    return np.concatenate(xs), np.concatenate(ys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10",
                        help="CIFAR-10: a tfds name, or the image-folder archives")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--model", help="a saved .keras model (default: the shipped DyBNN)")
    args = parser.parse_args(argv)
    if args.model:
        from larq_dybnn import load_model

        float_model, rounded = load_model(args.model), load_model(args.model)
    else:
        build = dict(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                     weights="cifar10")
        float_model, rounded = DyBNNReActNet18(**build), DyBNNReActNet18(**build)
    kernels = round_hyper_weights(rounded)
    conversion = convert(float_model)
    result = {"model": args.model or "shipped weights='cifar10'", "kernels_rounded": kernels, "int8_file_bytes": len(conversion.flatbuffer()),
              "rounded_int8_file_identical": convert(rounded).flatbuffer()
              == conversion.flatbuffer()}
    for name, split_name in (("validation", "train[45000:]"), ("test", "test")):
        x, y = split(args.data, split_name)
        top1 = {label: model.predict(x, batch_size=500, verbose=0).argmax(-1)
                for label, model in (("float", float_model), ("rounded", rounded))}
        figures = {"images": int(len(y)),
                   "keras_float_top1": float(np.mean(top1["float"] == y)),
                   "keras_rounded_top1": float(np.mean(top1["rounded"] == y)),
                   "float_vs_rounded_changed": float(np.mean(top1["float"] != top1["rounded"]))}
        if name == "test":
            lce = lce_outputs(conversion.flatbuffer(), x).argmax(-1)
            figures.update(
                lce_int8_top1=float(np.mean(lce == y)),
                lce_int8_agrees_with_float=float(np.mean(lce == top1["float"])),
                lce_int8_agrees_with_rounded=float(np.mean(lce == top1["rounded"])))
        result[name] = figures
        print(name, json.dumps(figures), flush=True)
    if args.json:
        atomic_write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
