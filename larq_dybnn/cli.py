"""The `larq-dybnn` command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def _demo(args: argparse.Namespace) -> int:
    from larq_dybnn.demo import run_demo

    result = run_demo(
        epochs=args.epochs, batch_size=args.batch_size, output_dir=args.output_dir,
        seed=args.seed, verbose=2 if args.quiet else "auto",
    )
    return 0 if result.passed else 1


def _convert(args: argparse.Namespace) -> int:
    from larq_dybnn.converter import export_and_verify, load_model
    from larq_dybnn.images import PREPROCESSING, read_image_sample

    def say(line: str) -> None:
        print(f"[convert] {line}", flush=True)

    model = load_model(args.model)
    samples = labels = None
    source = "given samples"
    if args.verify:
        height, width = model.input_shape[1:3]
        if height is None or width is None:
            raise ValueError(
                f"{args.model} has no fixed input size; --verify needs one to resize "
                "the images"
            )
        say(f"reading up to {args.samples} images from {args.verify}")
        images, labels, classes = read_image_sample(
            args.verify, limit=args.samples, size=(height, width)
        )
        samples = PREPROCESSING[args.preprocess](images).astype("float32")
        source = f"{len(images)} images from {args.verify}, preprocess={args.preprocess}"
        if model.output_shape[-1] != len(classes):
            say(f"{len(classes)} classes in the images, {model.output_shape[-1]} model "
                "outputs: accuracy not reported")
            labels = None
    report = export_and_verify(
        model,
        output_path=args.output,
        samples=samples,
        labels=labels,
        samples_source=source,
        benchmark=args.benchmark,
        runs=args.runs,
        allow_float_fallback=args.allow_float_fallback,
        progress=say,
    )
    print(report.format())
    if args.report:
        from larq_dybnn._io import atomic_write_bytes

        atomic_write_bytes(args.report, report.to_json().encode())
        say(f"wrote report {args.report}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import collections
    from pathlib import Path

    from larq_dybnn.converter import read_operators

    path = Path(args.tflite)
    if not path.is_file():
        raise FileNotFoundError(f"no file '{path}'")
    operators = read_operators(path.read_bytes())
    counts = collections.Counter(
        op.name + (f" (fused {op.fused_activation})" if op.fused_activation else "")
        for op in operators
    )
    print(f"{path}: {path.stat().st_size / 1024:,.1f} KiB, {len(operators)} ops")
    width = max(len(name) for name in counts)
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {name:<{width}}  {count:>5}")
    custom = [n for n in counts if n.startswith("Lce")]
    if custom:
        print("Needs Larq Compute Engine's runtime (plain TFLite cannot run "
              + ", ".join(sorted(custom)) + ").")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `larq-dybnn` command."""
    parser = argparse.ArgumentParser(
        prog="larq-dybnn",
        description="Dynamic Binary Neural Networks for Larq and Larq Compute Engine.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a small DyBNN on embedded digits, export to LCE, check parity",
        description="Train TinyDyBNN on scikit-learn's digits (no download), evaluate "
        "it, convert it with Larq Compute Engine and compare the LCE interpreter with "
        "Keras. Exits 1 if a binary conv did not convert or parity fails.",
    )
    demo.add_argument("--epochs", type=_positive_int, default=8)
    demo.add_argument("--batch-size", type=_positive_int, default=64)
    demo.add_argument("--output-dir", default="outputs/demo")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="one line per epoch")
    demo.set_defaults(run=_demo)

    convert = commands.add_parser(
        "convert",
        help="export a Keras model to LCE .tflite and verify it",
        description="Convert a .keras, .h5 or SavedModel to a Larq Compute Engine "
        ".tflite, check that every binary conv became LceBconv2d, compare the LCE "
        "interpreter with Keras, and optionally time it. The file is written "
        "atomically, and only if every binary conv converted.",
    )
    convert.add_argument("model", help="a .keras, .h5 or SavedModel path")
    convert.add_argument("-o", "--output", required=True, help="the .tflite to write")
    convert.add_argument(
        "--verify", metavar="IMAGES",
        help="image folder or .tar.gz (<class>/<image> layout) for the parity check; "
        "random inputs without it",
    )
    convert.add_argument("--samples", type=_positive_int, default=100,
                         help="images to read for --verify (default 100)")
    convert.add_argument(
        "--preprocess", choices=["cifar", "imagenet", "unit", "signed", "none"],
        default="cifar", help="how the model expects images scaled (default cifar)",
    )
    convert.add_argument("--benchmark", action="store_true",
                         help="time the model in the LCE interpreter (1 and 2 threads)")
    convert.add_argument("--runs", type=_positive_int, default=50,
                         help="timed runs per thread count (default 50)")
    convert.add_argument("--allow-float-fallback", action="store_true",
                         help="write the file even if binary layers fell back to float")
    convert.add_argument("--report", metavar="JSON", help="also write the report as JSON")
    convert.set_defaults(run=_convert)

    inspect = commands.add_parser(
        "inspect", help="print the op table and size of a .tflite",
        description="Print the operators and size of a TFLite flatbuffer.",
    )
    inspect.add_argument("tflite")
    inspect.set_defaults(run=_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `larq-dybnn` command.

    Arguments:
        argv: arguments without the program name; defaults to `sys.argv[1:]`.

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow loads)
    import tensorflow as tf

    # Larq's QuantizedVariable makes AutoGraph print a harmless warning per layer.
    tf.get_logger().setLevel("ERROR")

    from larq_dybnn.converter import FloatFallbackError

    try:
        return args.run(args)
    except (FileNotFoundError, FloatFallbackError, ValueError, TypeError, OSError) as error:
        print(f"larq-dybnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
