"""Photo in, label out: classify images with a `.tflite` file and its input contract.

`Classifier` reads the input contract larq-dybnn stores in the file, decodes each image
with Pillow, brings it to the contract's size as the contract says, normalizes it with
the contract's mean and std, runs it on LCE's kernels and names the top classes.
`main` is the `larq-dybnn-run` console script.

Decoders differ: Pillow's JPEG decoder and TensorFlow's (which `larq-dybnn evaluate`
uses) can round a pixel differently, and Pillow's bilinear resize filters where
TensorFlow's samples, so a photo may get other logits than on the PC; the project's
emulated-aarch64 test measures how many CIFAR-10 test images change their top-1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from larq_dybnn_runtime import KERNELS, Runner
from larq_dybnn_runtime.check import printable
from larq_dybnn_runtime.tflite_file import ContractError, read_contract

__all__ = ["Classifier", "Classification", "prepare_image", "main", "MAX_IMAGE_PIXELS"]

#: Most pixels an image may declare (checked in its header, before decoding).
MAX_IMAGE_PIXELS = 64 * 2**20


@dataclass(frozen=True)
class Classification:
    """One image's result.

    Attributes:
        path: the image file.
        index: the top-1 class index.
        label: its name.
        probabilities: every class's probability, in the model's output order.
    """

    path: str
    index: int
    label: str
    probabilities: tuple[float, ...]

    def top(self, count: int, class_names: Sequence[str]) -> list[tuple[str, float]]:
        """The `count` most probable (name, probability) pairs."""
        order = np.argsort(self.probabilities)[::-1][:count]
        return [(class_names[i], float(self.probabilities[i])) for i in order]

    def as_dict(self) -> dict:
        return {"path": self.path, "index": self.index, "label": self.label,
                "probabilities": [float(p) for p in self.probabilities]}


def prepare_image(path: str, contract: dict, *, resize: bool = False) -> np.ndarray:
    """Decode an image and prepare it as the contract says: `(H, W, 3)` float32.

    Contract `resize` "none": the image must have the contract's size (a CIFAR model
    takes 32x32 images) unless `resize` is True; "short_side_centre_crop" (and
    `resize=True`): the short side is resized (bilinear) to size / 0.875 and the centre
    cropped, as larq-dybnn's evaluation does. Then `(pixel / 255 - mean) / std`.

    Raises:
        ValueError: naming the file, for a file that is not an image, an image that
            declares more than `MAX_IMAGE_PIXELS`, or one of another size.
    """
    from PIL import Image, UnidentifiedImageError

    height, width = (int(v) for v in contract["image_size"])
    try:
        with Image.open(path) as image:
            columns, rows = image.size  # from the header: nothing decoded yet
            if columns * rows > MAX_IMAGE_PIXELS:
                raise ValueError(f"'{path}' declares {rows}x{columns} pixels, more than "
                                 f"{MAX_IMAGE_PIXELS:,}; refusing to decode it.")
            image = image.convert("RGB")
            if contract["resize"] == "short_side_centre_crop" or (
                    resize and (rows, columns) != (height, width)):
                scale = (max(height, width) / 0.875) / min(rows, columns)
                size = (max(width, round(columns * scale)), max(height, round(rows * scale)))
                image = image.resize(size, Image.BILINEAR)
                left, top = (size[0] - width) // 2, (size[1] - height) // 2
                image = image.crop((left, top, left + width, top + height))
            pixels = np.asarray(image, dtype=np.float32)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"'{path}' is not an image Pillow can decode "
                         f"({type(error).__name__}: {error}).") from None
    if pixels.shape[:2] != (height, width):
        raise ValueError(
            f"'{path}' is {pixels.shape[0]}x{pixels.shape[1]}; the model takes "
            f"{height}x{width} images (contract '{contract['preprocess']}', resize "
            "'none'). Pass --resize (resize=True) to resize and centre-crop it.")
    mean = np.asarray(contract["mean"], np.float32)
    std = np.asarray(contract["std"], np.float32)
    return (pixels / 255.0 - mean) / std


def _probabilities(outputs: np.ndarray) -> np.ndarray:
    outputs = outputs.astype(np.float64)
    if outputs.min() >= 0 and abs(outputs.sum() - 1.0) < 1e-3:
        return outputs  # a softmax output already
    exp = np.exp(outputs - outputs.max())
    return exp / exp.sum()


class Classifier:
    """A `.tflite` classifier with its input contract, on LCE's kernels.

    Arguments:
        model_path: the `.tflite` file (exported by larq-dybnn, so it holds a contract).
        library: LCE's op library; None for the one installed with this package.
        kernel: a `KERNELS` key ("bgemm" is what LCE runs on devices).
        threads: interpreter threads.
        xnnpack: let tflite-runtime run the float ops on XNNPACK.

    Raises:
        FileNotFoundError: for a missing model or library.
        ValueError: naming the file, for a file with no or a damaged contract, or one
            that needs ops the library lacks.
    """

    def __init__(self, model_path: str, *, library: str | None = None, kernel: str = "bgemm",
                 threads: int = 1, xnnpack: bool = True):
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"No model at '{model_path}'.")
        with open(model_path, "rb") as handle:
            self.contract = read_contract(handle.read(), source=f"'{model_path}'")
        self.class_names = [str(n) for n in self.contract["class_names"]]
        try:
            self.runner = Runner(model_path, library=library, kernel=kernel, threads=threads,
                                 xnnpack=xnnpack)
        except (RuntimeError, ValueError) as error:
            # The file check and bad arguments say what is wrong themselves; an op the
            # library lacks surfaces from the interpreter.
            text = str(error).lower()
            if not any(hint in text for hint in ("unresolved", "didn't find op",
                                                 "custom op", "registration")):
                raise
            raise ValueError(f"'{model_path}' cannot run on this LCE op library: "
                             f"{error}") from None
        height, width = (int(v) for v in self.contract["image_size"])
        if self.runner.input_shape != (height, width, 3):
            raise ContractError(f"'{model_path}': its contract says {height}x{width}x3, but "
                                f"the model takes {self.runner.input_shape}.")

    def prepare(self, paths: Sequence[str], *, resize: bool = False) -> np.ndarray:
        """The images as the model's prepared samples, `(N, H, W, 3)`."""
        return np.stack([prepare_image(p, self.contract, resize=resize) for p in paths])

    def classify(self, paths: Sequence[str], *, resize: bool = False) -> list[Classification]:
        """Classify image files.

        Raises:
            ValueError: naming the first image that cannot be used.
        """
        paths = [str(p) for p in paths]
        outputs = self.runner.predict(self.prepare(paths, resize=resize))
        results = []
        for path, output in zip(paths, outputs):
            if len(output) != len(self.class_names):
                raise ContractError(f"The model has {len(output)} outputs but its contract "
                                    f"names {len(self.class_names)} classes.")
            probabilities = _probabilities(np.asarray(output).reshape(-1))
            index = int(np.argmax(probabilities))
            results.append(Classification(path, index, self.class_names[index],
                                          tuple(float(p) for p in probabilities)))
        return results

    def benchmark(self, sample: np.ndarray, *, runs: int, warmup: int = 3) -> dict:
        """Latency of one inference: median and p90 over `runs` after `warmup`, in ms."""
        batch = np.asarray(sample, np.float32)[None]
        for _ in range(warmup):
            self.runner.predict(batch)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.runner.predict(batch)
            times.append((time.perf_counter() - started) * 1000)
        return {"runs": runs, "median_ms": float(np.median(times)),
                "p90_ms": float(np.percentile(times, 90))}


def _bounded(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high:,}, got {value}")
        return value
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """`larq-dybnn-run MODEL IMAGE...`: print each image's top classes.

    Returns:
        The exit status (2 for bad arguments, files or images).
    """
    parser = argparse.ArgumentParser(
        prog="larq-dybnn-run", description="Classify images with a larq-dybnn .tflite file "
        "on Larq Compute Engine's kernels, prepared as the file's input contract says.")
    parser.add_argument("model", help="the .tflite file exported by larq-dybnn")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--top", type=_bounded(1, 1000), default=3,
                        help="classes to print per image (default 3)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list: per image path, index, label, probabilities")
    parser.add_argument("--benchmark", type=_bounded(1, 100_000), metavar="N",
                        help="also time N inferences of the first image after warm-up "
                        "(median and p90)")
    parser.add_argument("--threads", type=_bounded(1, 256), default=1,
                        help="interpreter threads (default 1)")
    parser.add_argument("--kernel", choices=[*sorted(KERNELS), "indirect"], default="bgemm",
                        help="LCE's binary-convolution kernel (default bgemm, what LCE "
                        "runs on devices)")
    parser.add_argument("--resize", action="store_true",
                        help="resize and centre-crop images whose size the contract does "
                        "not take (by default they are an error)")
    parser.add_argument("--no-xnnpack", action="store_true",
                        help="run float ops on TFLite's builtin kernels, not XNNPACK")
    parser.add_argument("--library", help="LCE's op library (default: the one installed "
                        "with this package)")
    args = parser.parse_args(argv)
    try:
        classifier = Classifier(args.model, library=args.library, kernel=args.kernel,
                                threads=args.threads, xnnpack=not args.no_xnnpack)
        results = classifier.classify(args.images, resize=args.resize)
        timing = None
        if args.benchmark:
            timing = classifier.benchmark(classifier.prepare(args.images[:1],
                                                             resize=args.resize)[0],
                                          runs=args.benchmark)
    except (OSError, ValueError) as error:
        print(f"larq-dybnn-run: error: {printable(str(error))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        for result in results:
            tops = ", ".join(f"{printable(name)} {p:.1%}"
                             for name, p in result.top(args.top, classifier.class_names))
            print(f"{printable(result.path)}: {tops}")
    if timing is not None:
        print(f"latency over {timing['runs']} runs ({args.kernel}, {args.threads} thread"
              f"{'s' if args.threads > 1 else ''}): median {timing['median_ms']:.2f} ms, "
              f"p90 {timing['p90_ms']:.2f} ms", file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
