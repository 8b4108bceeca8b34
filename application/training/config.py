"""The options of a training run and what it returns."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from larq_dybnn import _checks
from larq_dybnn.training.distribute import Worker

__all__ = ["TrainConfig", "TrainResult", "check_config", "STEP1_WEIGHT_DECAY", "INIT_SCHEMES",
           "default_int8_hyper_kernels", "train_config_options", "train_arguments"]

#: Initialization schemes: per-layer seeds (pairs static and DyBNN twins), or Keras'
#: global random stream (runs made before per-layer initialization existed).
INIT_SCHEMES = ("per-layer", "global")

#: ReActNet's weight decay on conv kernels in step 1 (step 2 uses none).
STEP1_WEIGHT_DECAY = 1e-5


@dataclass(frozen=True)
class TrainConfig:
    """Options of a training run (the flags of `larq-dybnn train`).

    Attributes:
        model: a `larq_dybnn.zoo.CATALOG` name ("resnet-18" is the real-valued teacher).
        data: "digits", a tfds name, an image folder or `.tar.gz` archive(s).
        output_dir: where the run writes (see `larq_dybnn.training.loop`).
        data_dir: tensorflow-datasets data directory.
        train_split, eval_split: the splits to train and evaluate on.
        epochs: training epochs.
        batch_size: global batch size (split over replicas).
        learning_rate: Adam's initial rate, decayed linearly to 0.
        step: ReActNet step 1 (binary activations, real weights, conv weight decay)
            or 2 (binary weights and activations).
        weight_decay: conv-kernel weight decay; None for the recipe's (1e-5 in step 1,
            0 in step 2).
        init_from: a saved model whose weights are transferred first (step 1 -> 2);
            every weight must carry over.
        unsafe_load: load `init_from` and `teacher` without checking that they run no
            code from outside tf_keras, Larq and larq_dybnn (`larq_dybnn.loading`);
            only for files you trust.
        dynamize: with `init_from`: after the transfer, train the DyBNN twin of the
            model (`larq_dybnn.dynamize` with `dynamic`, `reduction` and the seed):
            a trained static model fine-tuned with dynamic thresholds added.
        teacher: a saved Keras model (logits out) for the distribution loss; None
            trains on cross-entropy.
        label_smoothing: cross-entropy label smoothing (without a teacher).
        width_multiplier, dynamic, reduction: model options (see `build_model`).
        hyper_pool_stride: zoo DyBNN models: the hyper functions pool every
            `hyper_pool_stride`-th row and column (1: global average pooling).
        hyper_input: zoo DyBNN models: what the hyper functions are fed, "layer"
            (the paper's), "block" (one pooling per block) or "constant" (a learned
            constant, an ablation).
        int8_hyper_kernels: train with the hyper functions' kernels on the int8 grid
            of the default export (`larq_dybnn.simulate_int8_hyper_kernels`), so that
            the exported int8 file computes the trained model. True only for models
            with hyper functions; None: `default_int8_hyper_kernels` for a new run (on
            in step 2 of a model whose hyper functions are fed its input), the
            recorded setting when resuming one.
        hyper_lr_multiplier: train the hyper functions' weights (of the dynamic
            thresholds and shifts, `larq_dybnn.hyper_weights`) at this multiple of
            the learning rate (`ScaledStepAdam`); 1 for one rate. Only for models
            with hyper functions (DyBNN models, or `dynamize`).
        image_size: input size; None for the data's own (8 digits, 32 CIFAR) or 224.
        preprocess: "digits", "cifar" or "imagenet"; None picks by data and size.
        seed: seed of initialization, shuffling and augmentation.
        init_scheme: "per-layer" (every weight drawn from the seed and its own path, so
            a static model and its DyBNN twin start from identical shared weights) or
            "global" (Keras' one random stream, as runs made before per-layer
            initialization); None: "per-layer" for a new run, the recorded scheme
            when resuming one.
        strategy: "default", "mirrored" or "multiworker".
        logical_cpus: split the CPU into this many devices (mirrored on CPUs).
        export: also export `model.tflite` through the converter and verify it.
        probe_samples: evaluation images used to measure thresholds across samples.
        deterministic: make TensorFlow's ops deterministic
            (`tf.config.experimental.enable_op_determinism`, process-wide), so that
            a resumed run ends exactly where an uninterrupted one does.
        restart: delete this run's checkpoints, history and logs in `output_dir`
            and start over, instead of resuming.
        verbose: Keras progress mode: "auto" (bars), 1, 2 (a line per epoch) or 0.
    """

    model: str = "tiny-dybnn"
    data: str = "digits"
    output_dir: str = "outputs/train"
    data_dir: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    step: int = 2
    weight_decay: float | None = None
    init_from: str | None = None
    dynamize: bool = False
    unsafe_load: bool = False
    teacher: str | None = None
    label_smoothing: float = 0.0
    width_multiplier: float = 1.0
    dynamic: str = "both"
    reduction: int | None = None
    hyper_lr_multiplier: float = 1.0
    hyper_pool_stride: int = 1
    hyper_input: str = "layer"
    int8_hyper_kernels: bool | None = None
    image_size: int | None = None
    preprocess: str | None = None
    seed: int = 0
    init_scheme: str | None = None
    strategy: str = "default"
    logical_cpus: int | None = None
    export: bool = False
    probe_samples: int = 256
    restart: bool = False
    deterministic: bool = True
    verbose: int | str = "auto"


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        output_dir: where this worker wrote.
        model_path: the final `.keras` model.
        resumed_from: finished epochs found in the checkpoints (0: fresh run).
        history: per-epoch metrics of the whole run (from history.csv; chief only).
        evaluation: loss and accuracy on the evaluation split.
        tflite_path: the exported flatbuffer, if exported.
        conversion: the conversion report as a dict, if exported.
        plots: image files written.
        threshold_spread: per DynamicSign layer, the mean over channels of the
            standard deviation of the threshold across the probe samples.
        worker: this process's role.
        seconds: wall time of this invocation.
    """

    output_dir: str
    model_path: str
    resumed_from: int
    history: dict[str, list[float]]
    evaluation: dict[str, float]
    worker: Worker
    seconds: float
    tflite_path: str | None = None
    conversion: dict | None = None
    plots: list[str] = field(default_factory=list)
    threshold_spread: dict[str, float] = field(default_factory=dict)


#: Bounds of the options that size memory or threads (x8 ReActNet-18 is 700 M
#: parameters; 4096 pixels is 64 x ImageNet's; 256 logical CPUs).
MAX_WIDTH_MULTIPLIER, MAX_IMAGE_SIZE, MAX_LOGICAL_CPUS = 8.0, 4096, 256


def check_config(config: TrainConfig) -> None:
    """Check a run's options before anything is built or read.

    Raises:
        ValueError: naming the first bad option.
        FileNotFoundError: if `init_from` or `teacher` does not exist.
    """
    from larq_dybnn.training.preprocessing import PREPROCESSING
    from larq_dybnn.zoo import CATALOG, is_binary, is_dynamic
    from larq_dybnn.zoo.blocks import HYPER_INPUTS
    from larq_dybnn.zoo.catalog import HYPER_MODELS, HYPER_OPTIONS

    if config.model not in CATALOG:
        raise ValueError(f"`model` must be one of {', '.join(CATALOG)}, got {config.model!r}.")
    _checks.positive_int("epochs", config.epochs)
    _checks.positive_int("batch_size", config.batch_size)
    _checks.positive_int("probe_samples", config.probe_samples)
    _checks.positive_float("learning_rate", config.learning_rate)
    _checks.positive_float("hyper_lr_multiplier", config.hyper_lr_multiplier)
    _checks.positive_int("hyper_pool_stride", config.hyper_pool_stride)
    _checks.one_of("hyper_input", config.hyper_input, HYPER_INPUTS)
    if config.int8_hyper_kernels is not None and not isinstance(config.int8_hyper_kernels, bool):
        raise ValueError("`int8_hyper_kernels` must be true, false or None (the default "
                         f"per run), got {config.int8_hyper_kernels!r}.")
    for option, paper in HYPER_OPTIONS.items():
        if getattr(config, option) != paper and config.model not in HYPER_MODELS:
            raise ValueError(f"`{option}` applies to the zoo DyBNN models "
                             f"({', '.join(HYPER_MODELS)}), not {config.model!r}.")
    _checks.positive_float("width_multiplier", config.width_multiplier)
    for name, high in (("width_multiplier", MAX_WIDTH_MULTIPLIER),
                       ("image_size", MAX_IMAGE_SIZE), ("logical_cpus", MAX_LOGICAL_CPUS)):
        value = getattr(config, name)
        if value is not None and value > high:
            raise ValueError(f"`{name}` must be at most {high}, got {value!r}: it sizes "
                             "memory or threads.")
    if config.step not in (1, 2):
        raise ValueError(f"`step` must be 1 or 2, got {config.step!r}.")
    if config.weight_decay is not None and not 0 <= config.weight_decay < float("inf"):
        raise ValueError(f"`weight_decay` must be >= 0, got {config.weight_decay!r}.")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1), got {config.label_smoothing!r}.")
    if config.teacher and config.label_smoothing:
        raise ValueError(
            "`label_smoothing` applies to cross-entropy; with a `teacher` the loss is "
            "the distribution loss. Give one of them."
        )
    if config.image_size is not None:
        _checks.positive_int("image_size", config.image_size)
    if config.preprocess is not None and config.preprocess not in PREPROCESSING:
        raise ValueError(
            f"`preprocess` must be one of {sorted(PREPROCESSING)}, "
            f"got {config.preprocess!r}."
        )
    if config.init_scheme not in (None, *INIT_SCHEMES):
        raise ValueError(f"`init_scheme` must be one of {', '.join(INIT_SCHEMES)}, "
                         f"got {config.init_scheme!r}.")
    if config.dynamize and not config.init_from:
        raise ValueError("`dynamize` makes the DyBNN twin of the `init_from` model; "
                         "give `init_from` (a trained static model).")
    if config.dynamize and (not is_binary(config.model) or is_dynamic(config.model)):
        raise ValueError(f"`dynamize` needs a static binary `model`, got {config.model!r}.")
    if config.hyper_lr_multiplier != 1.0 and not has_hyper_functions(config):
        raise ValueError(
            "`hyper_lr_multiplier` sets the learning rate of the hyper functions; "
            f"{config.model!r} with dynamic={config.dynamic!r} has none (use a DyBNN "
            "model, or `dynamize` a static one).")
    for name in ("init_from", "teacher"):
        path = getattr(config, name)
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"`{name}`: no model at '{path}'.")


def default_int8_hyper_kernels(config: TrainConfig) -> bool:
    """Whether a new run trains its hyper kernels on the export's int8 grid by default.

    On in step 2 (the model that is exported) of a model whose hyper functions are fed
    its input: a zoo DyBNN model with dynamic terms, or a `dynamize`d one. The default
    export stores their kernels in int8; trained in float, the shipped CIFAR-10 DyBNN's
    int8 file gave the Keras model's top-1 on 94.2-95.5% of the test images, trained on
    the grid on 99.96-99.99%, with test accuracy unchanged (+0.05 +- 0.05 points, 4
    paired seeds; docs/results.md, "Export predicts what was trained"). Off in step 1
    (its model is not exported, and training on the grid there was not measured) and
    for hyper functions fed a learned constant (`hyper_input="constant"`: conversion
    folds them into float constants, so the file has no int8 kernels to match).

    Arguments:
        config: the run's options.

    Returns:
        The setting `int8_hyper_kernels=None` stands for in a new run.
    """
    return (config.step == 2 and has_hyper_functions(config)
            and config.hyper_input != "constant")


def has_hyper_functions(config: TrainConfig) -> bool:
    """Whether the run's model has hyper functions: a zoo DyBNN model with dynamic
    terms, or a `dynamize`d static one."""
    from larq_dybnn.zoo import is_dynamic

    return config.dynamize or (is_dynamic(config.model) and config.dynamic != "none")


# The one mapping between TrainConfig and the `larq-dybnn train` command line.

#: `train` flags that do not carry their TrainConfig field's value as `--<field-name>`:
#: field -> (flag, the field's value from the parsed arguments, the flag's arguments
#: for a value). Every other field is the flag `--<field-name>` with its value (a
#: switch for booleans); `train_config_options` and `train_arguments` are the one
#: mapping `larq-dybnn train` (`larq_dybnn_cli`'s parser) and the sweep use.
_TRAIN_SPECIAL = {
    "deterministic": ("--nondeterministic", lambda args: not args.nondeterministic,
                      lambda value: [] if value else ["--nondeterministic"]),
    "verbose": ("--quiet", lambda args: 2 if args.quiet else 1,
                lambda value: ["--quiet"] if value == 2 else []),
    "int8_hyper_kernels": (
        "--int8-hyper-kernels", lambda args: args.int8_hyper_kernels,
        lambda value: [] if value is None else
        ["--int8-hyper-kernels" if value else "--no-int8-hyper-kernels"]),
}


def train_config_options(args: argparse.Namespace, fields: Sequence[str]) -> dict:
    """The TrainConfig options of parsed `train` arguments.

    Arguments:
        args: from `larq_dybnn_cli.build_parser().parse_args(["train", ...])`.
        fields: TrainConfig's field names.

    Returns:
        `{field: value}` for every field.

    Raises:
        KeyError: naming a field the parser has no flag for.
    """
    options = {}
    for name in fields:
        if name in _TRAIN_SPECIAL:
            options[name] = _TRAIN_SPECIAL[name][1](args)
        elif hasattr(args, name):
            options[name] = getattr(args, name)
        else:
            raise KeyError(f"`larq-dybnn train` has no flag for TrainConfig.{name}")
    return options


def train_arguments(options: dict, *, switches: Sequence[str]) -> list[str]:
    """The `larq-dybnn train` arguments that give TrainConfig `options` (the inverse
    of `train_config_options`; unset (None) options are left out).

    Arguments:
        options: TrainConfig field -> value.
        switches: the boolean fields (flags without a value).
    """
    arguments = []
    for name, value in options.items():
        if name in _TRAIN_SPECIAL:
            arguments += _TRAIN_SPECIAL[name][2](value)
        elif name in switches:
            arguments += ["--" + name.replace("_", "-")] if value else []
        elif value is not None:
            arguments += ["--" + name.replace("_", "-"), str(value)]
    return arguments
