"""The `larq-dybnn` command line.

This module holds the parser and nothing that imports TensorFlow, so that
`larq-dybnn --help` and `larq-dybnn COMMAND --help` answer at once. It is a top-level
module because importing anything inside `larq_dybnn` runs the package's
`__init__`, which loads TensorFlow to register the custom Keras objects. The
commands themselves are in `larq_dybnn.commands` (and `python -m
larq_dybnn_cli` runs the same command line).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

# The parser stays free of TensorFlow imports (fast --help); tests check that these
# match larq_dybnn.zoo.CATALOG, larq_dybnn.training.distribute.STRATEGIES and
# larq_dybnn.contract.RECIPES.
MODEL_NAMES = (
    "tiny-dybnn", "tiny-reactnet", "dybnn-reactnet-18", "reactnet-18",
    "dybnn-reactnet-a", "reactnet-a", "resnet-18",
)
STRATEGY_NAMES = ("default", "mirrored", "multiworker")
#: What the zoo DyBNN models' hyper functions are fed (`larq_dybnn.zoo.blocks.HYPER_INPUTS`).
HYPER_INPUTS = ("layer", "block", "constant")
#: Every name --preprocess takes (`larq_dybnn.training.preprocessing
#: .EVALUATION_PREPROCESSING`): the training recipes (`larq_dybnn.contract.RECIPES`),
#: which `train` takes, then scalings for evaluating models trained elsewhere.
RECIPE_NAMES = ("cifar", "digits", "imagenet")
PREPROCESS_NAMES = (*RECIPE_NAMES, "unit", "signed", "none")
PREPROCESS_HELP = ("cifar, digits and imagenet are the training recipes' evaluation "
                   "transforms; unit ([0, 1]), signed ([-1, 1]) and none (0..255) "
                   "scale pixels for models trained elsewhere")


#: Where `lce-sources` puts LCE's kernel sources and `verify-arm` finds them.
DEFAULT_LCE_SOURCES = os.path.join(os.path.expanduser("~"), ".cache", "larq-dybnn",
                                   "lce-sources")


def positive_int(text: str) -> int:
    """An argparse type (also the benchmarks'): a positive integer, else a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def bounded_int(high: int):
    """An argparse type: a positive integer of at most `high` (options that size memory
    or threads), else a usage error naming the bound."""
    def parse(text: str) -> int:
        value = positive_int(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"expected at most {high:,}, got {text!r}")
        return value

    parse.__name__ = "bounded_int"
    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _add_unsafe_load(parser) -> None:
    parser.add_argument(
        "--unsafe-load", action="store_true",
        help="load Keras model files without refusing Lambda layers and classes or "
        "functions from outside tf_keras, larq and larq_dybnn (code in the file then "
        "runs: only for files you trust)")


def _add_demo_parser(commands) -> None:
    """Add the `demo` command (the main job)."""
    demo = commands.add_parser(
        "demo",
        help="the main job: train a small DyBNN, evaluate, export to LCE, verify, plot",
        description="Train TinyDyBNN on scikit-learn's digits (embedded, no download) "
        "or on --data (e.g. the CIFAR-10 archives), evaluate it, convert it with Larq "
        "Compute Engine, compare the LCE interpreter with Keras, and plot the training "
        "curves and the thresholds across samples. Exits 1 if a binary conv did not "
        "convert or parity fails.",
    )
    demo.add_argument("--data", default="digits",
                      help="digits, or an image folder / .tar.gz archive(s) such as CIFAR-10")
    demo.add_argument("--epochs", type=positive_int,
                      help="default 20 on digits, 5 otherwise")
    demo.add_argument("--batch-size", type=positive_int, default=64,
                      help="training batch size")
    demo.add_argument("--output-dir", default="outputs/demo",
                      help="where the run, the .tflite file and the plots go")
    demo.add_argument("--seed", type=int, default=0, help="seed of weights and data order")
    demo.add_argument("--quiet", action="store_true", help="one line per epoch")


def _add_train_parser(commands) -> None:
    """Add the `train` command."""
    train = commands.add_parser(
        "train",
        help="train a model with ReActNet's recipe; resumable, any tf.distribute strategy",
        description="Train a zoo model on digits, a tfds dataset, an image folder or "
        ".tar.gz archives with ReActNet's recipe (Adam, learning rate decayed linearly "
        "to 0; step 1: real weights + conv weight decay, step 2: binary weights; "
        "distribution loss against --teacher, or cross-entropy). Writes checkpoints, "
        "TensorBoard logs (with per-layer threshold histograms), history.csv, "
        "model.keras, plots and report.json to --output-dir; with --export also a "
        "verified model.tflite. Run again with the same --output-dir to resume after "
        "an interruption.",
    )
    train.add_argument("--model", choices=MODEL_NAMES, default="tiny-dybnn",
                       help="zoo model; resnet-18 is the real-valued teacher")
    train.add_argument("--data", default="digits",
                       help="digits (embedded), a tfds name (cifar10, imagenet2012), an "
                       "image folder (<split>/<class>/<image>) or .tar.gz archive(s)")
    train.add_argument("--data-dir", help="tensorflow-datasets data directory")
    train.add_argument("--train-split", default="train",
                       help="split to train on; slices like train[:45000] work")
    train.add_argument("--eval-split", default="test",
                       help="split evaluated after every epoch (choose settings on a "
                       "held-out slice such as train[45000:], not on test)")
    train.add_argument("--output-dir", default="outputs/train",
                       help="the run's folder: checkpoints, history, model.keras; an "
                       "existing run there is resumed")
    train.add_argument("--epochs", type=positive_int, default=10, help="epochs to train")
    train.add_argument("--batch-size", type=positive_int, default=64,
                       help="global batch size, split over replicas")
    train.add_argument("--learning-rate", type=float, default=2e-3,
                       help="Adam's learning rate, decayed linearly to 0")
    train.add_argument("--step", type=int, choices=[1, 2], default=2,
                       help="ReActNet step: 1 = binary activations, real weights, weight "
                       "decay; 2 = fully binary (default)")
    train.add_argument("--weight-decay", type=_non_negative_float,
                       help="conv-kernel weight decay (default: 1e-5 in step 1, 0 in step 2)")
    train.add_argument("--init-from", metavar="MODEL",
                       help="transfer every weight from this saved model first (step 1 -> 2)")
    train.add_argument("--dynamize", action="store_true",
                       help="with --init-from (a trained static model): fine-tune its DyBNN "
                       "twin (dynamic thresholds/shifts per --dynamic, starting at 0)")
    train.add_argument("--teacher", metavar="MODEL",
                       help="saved real-valued model for the distribution loss")
    train.add_argument("--int8-hyper-kernels", action=argparse.BooleanOptionalAction,
                       default=None,
                       help="DyBNN models: train with the hyper functions' kernels on the "
                       "int8 grid the default export stores them on (straight-through), "
                       "so that the int8 .tflite computes the trained model (default: on "
                       "in step 2 of a model whose hyper functions are fed its input, "
                       "off otherwise; a resumed run keeps its setting)")
    _add_unsafe_load(train)
    train.add_argument("--label-smoothing", type=_non_negative_float, default=0.0,
                       help="cross-entropy label smoothing (without --teacher)")
    train.add_argument("--width-multiplier", type=float, default=1.0,
                       help="channel multiplier of the model (0.25: a quarter of the "
                       "channels; at most 8)")
    train.add_argument("--dynamic", choices=["both", "sign", "prelu", "none"],
                       default="both", help="DyBNN models: which thresholds are dynamic")
    train.add_argument("--reduction", type=positive_int,
                       help="DyBNN models: hyper-function reduction ratio")
    train.add_argument("--hyper-lr-multiplier", type=float, default=1.0,
                       help="DyBNN models: train the hyper functions at this multiple of "
                       "the learning rate (default 1)")
    train.add_argument("--hyper-pool-stride", type=bounded_int(16), default=1,
                       help="zoo DyBNN models: the hyper functions pool every N-th row "
                       "and column (default 1: global average pooling; 2 is cheaper on "
                       "ARM)")
    train.add_argument("--hyper-input", choices=HYPER_INPUTS, default="layer",
                       help="zoo DyBNN models: what the hyper functions are fed: each "
                       "layer's pooled input (default, the paper's); with 'block', each "
                       "block's input, pooled once for its threshold and its shifts "
                       "(cheaper on ARM); with 'constant', a learned constant (an "
                       "ablation without input dependence)")
    train.add_argument("--image-size", type=bounded_int(4096),
                       help="input size (default: the data's, 224 above 64 pixels)")
    train.add_argument("--preprocess", choices=RECIPE_NAMES,
                       help="input preprocessing recipe, with its augmentation (default: "
                       "chosen from the data and image size; evaluate and convert also "
                       "take unit, signed and none)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the weights, the data order and augmentation")
    train.add_argument("--init-scheme", choices=["per-layer", "global"],
                       help="per-layer: each weight drawn from the seed and its own path, "
                       "so static and DyBNN twins start alike (default for new runs); "
                       "global: Keras' one random stream (runs recorded without a scheme)")
    train.add_argument("--strategy", choices=STRATEGY_NAMES, default="default",
                       help="mirrored: all GPUs (or logical CPUs); multiworker: TF_CONFIG")
    train.add_argument("--logical-cpus", type=bounded_int(256),
                       help="split the CPU into this many devices (mirrored without GPUs)")
    train.add_argument("--export", action="store_true",
                       help="also export model.tflite with LCE and verify its parity")
    train.add_argument("--restart", action="store_true",
                       help="delete this run's checkpoints and logs and start over")
    train.add_argument("--nondeterministic", action="store_true",
                       help="allow non-deterministic TensorFlow ops (faster on GPUs; a "
                       "resumed run then only approximately matches an uninterrupted one)")
    train.add_argument("--quiet", action="store_true", help="one line per epoch")
    train.add_argument("--probe-samples", type=positive_int, default=256,
                       help="evaluation images used to measure thresholds across samples")


def _add_sweep_parser(commands) -> None:
    """Add the `sweep` command."""
    sweep = commands.add_parser(
        "sweep", help="train a grid of configurations x seeds at one budget, evaluate, "
        "aggregate",
        description="Run the experiment campaign described by a TOML sweep file: every "
        "configuration x seed is an ordinary `larq-dybnn train` run in "
        "OUTPUT_DIR/<configuration>/seed-<seed>/. Finished runs are skipped and "
        "unfinished ones resumed, so run the same command again to continue. Finished "
        "runs are evaluated on the test split in Keras and in the LCE interpreter "
        "(float32 and int8 hyper weights), and all evaluated runs are aggregated into "
        "results.csv, results.md and results.png in OUTPUT_DIR. Choices are made on the "
        "validation split (eval_split), never on the test split.",
    )
    sweep.add_argument("spec", help="the sweep's TOML file")
    sweep.add_argument("--output-dir", required=True, help="the sweep's folder")
    sweep.add_argument("--only", metavar="NAMES",
                       help="comma-separated configurations to work on (default: all)")
    sweep.add_argument("--data", help="override the data of every run")
    sweep.add_argument("--skip-training", action="store_true",
                       help="only evaluate finished runs and aggregate")
    sweep.add_argument("--reevaluate", action="store_true",
                       help="evaluate finished runs again, also those already evaluated")
    sweep.add_argument("--skip-evaluation", action="store_true",
                       help="only train; evaluate and aggregate later")
    sweep.add_argument("--results-dir", metavar="DIR",
                       help="also write the results and each run's small record files "
                       "(no weights) there, e.g. a folder to commit")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print each run's state and train command, do nothing")


def _add_evaluate_parser(commands) -> None:
    """Add the `evaluate` command."""
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a .keras model or an LCE .tflite on a dataset",
        description="Top-1/top-5 accuracy and cross-entropy of a saved Keras model, or "
        "of an LCE .tflite run by the LCE interpreter, on a split of a dataset.",
    )
    evaluate.add_argument("model", help=".keras, .h5, SavedModel or .tflite")
    evaluate.add_argument("--data", required=True,
                          help="digits, a tfds name, an image folder or .tar.gz archive(s)")
    evaluate.add_argument("--data-dir", help="tensorflow-datasets data directory")
    evaluate.add_argument("--split", default="test", help="split to evaluate")
    evaluate.add_argument("--batch-size", type=positive_int, default=100,
                          help="images per evaluation batch")
    evaluate.add_argument("--preprocess", choices=PREPROCESS_NAMES,
                          help="override the preprocessing recorded in the model's input "
                          f"contract (default: the recorded one): {PREPROCESS_HELP}")
    evaluate.add_argument("--resize", action="store_true",
                          help="resize images of another size to the model's input size")
    evaluate.add_argument("--limit", type=bounded_int(10_000_000),
                          help="evaluate the first N images (default: all)")
    evaluate.add_argument("--threads", type=bounded_int(256), default=1,
                          help="LCE interpreter threads (.tflite)")
    evaluate.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    _add_unsafe_load(evaluate)


class _HelpWithDefaults(argparse.HelpFormatter):
    """Shows an option's default after its help unless the help names it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and "default" not in text and "%(default)" not in text):
            text += " (default: %(default)s)"
        return text


def _add_convert_parser(commands) -> None:
    """Add the `convert` command."""
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
        "--verify", metavar="DATA",
        help="labelled images for the parity check: an image folder or .tar.gz "
        "(<class>/<image>), or a dataset as train's --data takes it (cifar10 from "
        "TensorFlow Datasets; --verify-split chooses the split); random inputs without it",
    )
    convert.add_argument("--verify-split", default="test",
                         help="the split of a --verify dataset (default: %(default)s)")
    convert.add_argument("--samples", type=positive_int, default=100,
                         help="images to read for --verify (default: %(default)s)")
    convert.add_argument(
        "--preprocess", choices=PREPROCESS_NAMES,
        help="override how the --verify images are prepared (default: the model's "
        "recorded input contract; guessed from the data for a model without one, with "
        f"a warning): {PREPROCESS_HELP}",
    )
    convert.add_argument("--resize", action="store_true",
                         help="resize --verify images of another size to the model's input")
    convert.add_argument("--benchmark", action="store_true",
                         help="time the model in the LCE interpreter (1 and 2 threads)")
    convert.add_argument("--runs", type=positive_int, default=50,
                         help="timed runs per thread count (default 50)")
    convert.add_argument("--allow-float-fallback", action="store_true",
                         help="write the file even if binary layers fell back to float")
    hyper = convert.add_mutually_exclusive_group()
    hyper.add_argument("--int8-hyper-weights", dest="int8_hyper_weights",
                       action="store_true", default=True,
                       help="store the hyper functions' FC weights in int8 (the default: "
                       "about 4x smaller; each weight off by at most 1/254 of its "
                       "kernel's largest weight; parity is checked against the model "
                       "with the same rounding)")
    hyper.add_argument("--float-hyper-weights", dest="int8_hyper_weights",
                       action="store_false",
                       help="keep the hyper functions' FC weights in float32 (the file "
                       "then computes exactly the Keras model)")
    convert.add_argument("--report", metavar="JSON", help="also write the report as JSON")
    _add_unsafe_load(convert)


def _add_verify_arm_parser(commands) -> None:
    """Add the `verify-arm` command."""
    arm = commands.add_parser(
        "verify-arm", help="run a .tflite on LCE's aarch64 kernels (emulated) and compare",
        description="Run an exported .tflite on Larq Compute Engine's aarch64 kernels "
        "(bgemm and indirect bgemm, the code phones and Raspberry Pis run) under "
        "qemu-aarch64, and report its parity with LCE's x86 interpreter and, given "
        "--keras, with Keras; ARM top-1 with --data. Sets up the emulated environment "
        "on first use (Debian, root for apt-get; cached in --arm-dir).",
    )
    arm.add_argument("tflite", help="the exported model")
    arm.add_argument("--data", help="labelled images: an image folder or .tar.gz "
                     "(<class>/<image>), or a dataset as train's --data takes it (cifar10); "
                     "prepared as the model's input contract says. Without it: random "
                     "inputs of the model's shape")
    arm.add_argument("--split", default="test",
                     help="the split of a --data dataset (default: %(default)s)")
    arm.add_argument("--limit", type=bounded_int(100_000), default=64,
                     help="how many images (default 64)")
    arm.add_argument("--keras", metavar="MODEL", help="the Keras model the file came from")
    arm.add_argument("--kernels", default="bgemm,indirect_bgemm",
                     help="comma-separated LCE binary-conv kernels: bgemm, indirect_bgemm, "
                     "reference (default: %(default)s)")
    arm.add_argument("--arm-dir", default=os.path.join(
        os.path.expanduser("~"), ".cache", "larq-dybnn", "arm"),
        help="cache folder of the emulated environment")
    arm.add_argument("--lce-source", default=os.environ.get("LARQ_DYBNN_LCE_SOURCE",
                                                            DEFAULT_LCE_SOURCES),
                     help="LCE's kernel sources and the headers they include, as "
                     "`larq-dybnn lce-sources` prepares them (default: "
                     "$LARQ_DYBNN_LCE_SOURCE, else %(default)s)")
    arm.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    _add_unsafe_load(arm)


def _add_lce_sources_parser(commands) -> None:
    """Add the `lce-sources` command."""
    sources = commands.add_parser(
        "lce-sources", help="assemble LCE's kernel sources from pinned upstream commits",
        description="Download Larq Compute Engine 0.16.0's kernel sources and the headers "
        "they compile against (ruy, flatbuffers, TFLite, gemmlowp) from their upstream "
        "repositories at the commits the project pins, check every file's SHA256 "
        "against the project's manifest, and write them into DIRECTORY (the folder "
        "--lce-source, make test-arm and make wheel-arm build from). Files already "
        "there and correct are kept.")
    sources.add_argument("directory", nargs="?", default=DEFAULT_LCE_SOURCES,
                         help="the folder to fill (created if missing; default: "
                         "%(default)s, where verify-arm looks)")
    sources.add_argument("--mirror", metavar="PATH_OR_URL",
                         help="read MIRROR/OWNER/REPO/COMMIT/PATH instead of upstream "
                         "(an offline copy; default: GitHub and sources.debian.org)")


def _add_inspect_parser(commands) -> None:
    """Add the `inspect` command."""
    inspect = commands.add_parser(
        "inspect", help="print the op table and size of a .tflite",
        description="Print the operators and size of a TFLite flatbuffer.",
    )
    inspect.add_argument("tflite", help="the .tflite file")


def _version() -> str:
    """The installed version, read without importing the package (and TensorFlow)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("larq-dybnn")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `larq-dybnn` command."""
    parser = argparse.ArgumentParser(
        prog="larq-dybnn", formatter_class=_HelpWithDefaults,
        description="Dynamic Binary Neural Networks for Larq and Larq Compute Engine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo_parser, _add_train_parser, _add_sweep_parser,
                _add_evaluate_parser, _add_convert_parser, _add_verify_arm_parser,
                _add_lce_sources_parser, _add_inspect_parser):
        add(commands)
    for command in commands.choices.values():
        command.formatter_class = _HelpWithDefaults
        command.add_argument("--verbose", action="store_true",
                             help="show TensorFlow's start-up and C++ log lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `larq-dybnn` command.

    Parsing (and so `--help`) loads no TensorFlow. A command that loads it hides
    TensorFlow's C++ start-up lines unless `--verbose` is given or the user set
    `TF_CPP_MIN_LOG_LEVEL` themselves.

    Arguments:
        argv: arguments without the program name; defaults to `sys.argv[1:]`.

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from larq_dybnn._gc import fewer_collections
    from larq_dybnn.commands import run

    with fewer_collections():  # graph building: see larq_dybnn._gc
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
