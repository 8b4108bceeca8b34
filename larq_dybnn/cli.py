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

    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
