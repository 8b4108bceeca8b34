"""Training runs: ReActNet's recipe on a zoo model, resumable, on any strategy.

`train(TrainConfig(...))` is what `larq-dybnn train` runs. Everything a run makes
goes to one output directory:

    checkpoints/        epoch checkpoints (resume: run again with the same directory)
    logs/               TensorBoard: losses, metrics, learning rate and, under
                        logs/thresholds, per-layer histograms of the dynamic thresholds
    history.csv         one row per epoch
    model.keras         the final model (the student when distilling)
    model.tflite        with `export=True`: the LCE flatbuffer, verified against Keras
    plots/              training_curves.png and thresholds.png
    report.json         configuration, final metrics, conversion figures

In a multi-worker run the chief writes these; every other worker keeps its own
checkpoints and final model under `workers/worker-<id>/`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks, data as data_lib
from larq_dybnn._io import atomic_save_model, atomic_write_bytes
from larq_dybnn.checkpoints import EpochCheckpoints, trim_history
from larq_dybnn.contract import contract_for, read_contract, write_contract
from larq_dybnn.distribute import Worker, data_options, make_strategy, worker_of
from larq_dybnn.monitoring import ThresholdHistograms, ThresholdProbe
from larq_dybnn.timing import EpochTimer
from larq_dybnn.recipe import (
    Distiller,
    SmoothedCrossentropy,
    add_conv_weight_decay,
    linear_decay_adam,
    transfer_weights,
)

__all__ = ["TrainConfig", "TrainResult", "train"]

#: ReActNet's weight decay on conv kernels in step 1 (step 2 uses none).
STEP1_WEIGHT_DECAY = 1e-5


@dataclass(frozen=True)
class TrainConfig:
    """Options of a training run (the flags of `larq-dybnn train`).

    Attributes:
        model: a `larq_dybnn.zoo.MODELS` name ("resnet-18" is the real-valued teacher).
        data: "digits", a tfds name, an image folder or `.tar.gz` archive(s).
        output_dir: where the run writes (see the module docstring).
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
        teacher: a saved Keras model (logits out) for the distribution loss; None
            trains on cross-entropy.
        label_smoothing: cross-entropy label smoothing (without a teacher).
        width_multiplier, dynamic, reduction: model options (see `build_model`).
        image_size: input size; None for the data's own (8 digits, 32 CIFAR) or 224.
        preprocess: "digits", "cifar" or "imagenet"; None picks by data and size.
        seed: seed of initialization, shuffling and augmentation.
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
    teacher: str | None = None
    label_smoothing: float = 0.0
    width_multiplier: float = 1.0
    dynamic: str = "both"
    reduction: int | None = None
    image_size: int | None = None
    preprocess: str | None = None
    seed: int = 0
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


def _check_config(config: TrainConfig) -> None:
    from larq_dybnn.zoo import MODELS

    if config.model not in MODELS:
        raise ValueError(f"`model` must be one of {', '.join(MODELS)}, got {config.model!r}.")
    _checks.positive_int("epochs", config.epochs)
    _checks.positive_int("batch_size", config.batch_size)
    _checks.positive_int("probe_samples", config.probe_samples)
    if _checks.optional_positive_float("learning_rate", config.learning_rate) is None:
        raise ValueError("`learning_rate` must be a positive number, got None.")
    if config.step not in (1, 2):
        raise ValueError(f"`step` must be 1 or 2, got {config.step!r}.")
    if config.weight_decay is not None and config.weight_decay < 0:
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
    if config.preprocess is not None and config.preprocess not in data_lib.PREPROCESSING:
        raise ValueError(
            f"`preprocess` must be one of {sorted(data_lib.PREPROCESSING)}, "
            f"got {config.preprocess!r}."
        )
    for name in ("init_from", "teacher"):
        path = getattr(config, name)
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"`{name}`: no model at '{path}'.")


def _image_size(config: TrainConfig, images: data_lib.LabelledImages) -> int:
    if config.image_size is not None:
        return config.image_size
    first = next(iter(images.dataset.take(1)))[0]
    size = max(int(first.shape[0]), int(first.shape[1]))
    return size if size <= 64 else 224


def _load_keras(path: str, role: str) -> tf.keras.Model:
    from larq_dybnn.converter import load_model

    try:
        return load_model(path)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"`{role}`: {error}") from None


def _first_examples(dataset: tf.data.Dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` (images, labels) of a batched dataset."""
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
        if sum(map(len, images)) >= count:
            break
    return np.concatenate(images)[:count], np.concatenate(labels)[:count]


def _sample_batches(data: data_lib.LabelledImages, preprocess: str, size: int):
    """Evaluation batches without a cache, for taking the first few examples.

    Reading part of a cached dataset discards the partial cache (with a warning);
    this pipeline leaves the evaluation pipeline's cache alone.
    """
    return data_lib.pipeline(data, training=False, batch_size=256, preprocess=preprocess,
                             image_size=size, cache=False)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def train(config: TrainConfig, *, print_fn: Callable[[str], object] = print) -> TrainResult:
    """Run (or resume) a training run.

    Arguments:
        config: the run's options.
        print_fn: receives progress lines (Keras' progress bars go to stdout).

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: for bad options, data whose classes do not fit, a checkpoint of
            another model in `output_dir`, or weights that do not transfer.
        FileNotFoundError: for missing data, `init_from` or `teacher`.
        FloatFallbackError: with `export=True`, if binary layers did not convert.
    """
    from larq_dybnn.zoo import build_model, is_binary

    started = time.perf_counter()
    _check_config(config)
    # The strategy comes first: a multi-worker strategy must exist before other ops.
    strategy = make_strategy(config.strategy, logical_cpus=config.logical_cpus)
    worker = worker_of(strategy)
    tf.keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    root = Path(config.output_dir)
    out = root if worker.is_chief else root / "workers" / f"worker-{worker.task_id}"
    out.mkdir(parents=True, exist_ok=True)
    say = print_fn if worker.is_chief else (lambda _: None)
    if config.restart:
        _clear_run(out)
    _check_same_run(config, out / "config.json")

    train_data = data_lib.load(config.data, split=config.train_split, data_dir=config.data_dir)
    eval_data = data_lib.load(config.data, split=config.eval_split, data_dir=config.data_dir)
    if eval_data.class_names != train_data.class_names:
        raise ValueError(
            f"Splits '{config.train_split}' and '{config.eval_split}' of '{config.data}' "
            "have different classes."
        )
    size = _image_size(config, train_data)
    preprocess = config.preprocess or data_lib.default_preprocess(config.data, size)
    steps = data_lib.steps_per_epoch(train_data, config.batch_size)
    if config.batch_size % worker.replicas:
        raise ValueError(
            f"`batch_size`={config.batch_size} must be divisible by the "
            f"{worker.replicas} replicas of strategy '{config.strategy}'."
        )
    say(
        f"Data: {train_data.source}, {train_data.num_examples} {config.train_split} / "
        f"{eval_data.num_examples} {config.eval_split} images, "
        f"{train_data.num_classes} classes, {size}x{size}, preprocess={preprocess}"
    )

    weight_decay = config.weight_decay
    if weight_decay is None:
        weight_decay = STEP1_WEIGHT_DECAY if config.step == 1 else 0.0
    with strategy.scope():
        model = build_model(
            config.model, input_shape=(size, size, 3), num_classes=train_data.num_classes,
            width_multiplier=config.width_multiplier, binary_weights=config.step == 2,
            dynamic=config.dynamic, reduction=config.reduction,
        )
        train_data.check_num_classes(model.output_shape[-1])
        if config.init_from:
            source = _load_keras(config.init_from, "init_from")
            count = transfer_weights(source, model)
            say(f"Transferred all {count} weights from {config.init_from}")
        decayed = add_conv_weight_decay(model, weight_decay=weight_decay)
        optimizer = linear_decay_adam(
            learning_rate=config.learning_rate, total_steps=config.epochs * steps
        )
        if config.teacher:
            teacher = _load_keras(config.teacher, "teacher")
            if tuple(teacher.input_shape[1:]) != tuple(model.input_shape[1:]):
                raise ValueError(
                    f"`teacher` takes inputs {teacher.input_shape[1:]} but the model "
                    f"takes {model.input_shape[1:]}."
                )
            fitted = Distiller(model, teacher)
            fitted.compile(optimizer, metrics=["accuracy"])
            loss_name = f"distribution loss against {config.teacher}"
        else:
            fitted = model
            fitted.compile(
                optimizer, SmoothedCrossentropy(config.label_smoothing), metrics=["accuracy"]
            )
            loss_name = "cross-entropy" + (
                f" with label smoothing {config.label_smoothing}" if config.label_smoothing
                else ""
            )
        optimizer.build(model.trainable_variables)
        checkpoints = EpochCheckpoints(out / "checkpoints", fitted)
        initial_epoch = checkpoints.restore()

    kind = f"step {config.step}" if is_binary(config.model) else "real-valued"
    say(
        f"Model: {model.name} ({config.model}, {kind}), {model.count_params():,} "
        f"parameters; {loss_name}; Adam lr {config.learning_rate:g} -> 0 over "
        f"{config.epochs * steps} steps; weight decay {weight_decay:g} on {decayed} conv "
        f"kernels; {worker.replicas} replica(s) on {worker.num_workers} worker(s)"
    )
    if initial_epoch:
        say(f"Resuming from the checkpoint after epoch {initial_epoch} of {config.epochs}")

    options = data_options()
    eval_batches = data_lib.pipeline(
        eval_data, training=False, batch_size=config.batch_size, preprocess=preprocess,
        image_size=size,
    )
    # Every worker makes the same callbacks (they create variables, which must be
    # created in the same order everywhere); a non-chief writes into its own folder.
    history_path = out / "history.csv"
    trim_history(history_path, epochs=initial_epoch)
    probe, _ = _first_examples(_sample_batches(eval_data, preprocess, size),
                               config.probe_samples)
    callbacks: list[tf.keras.callbacks.Callback] = [
        EpochTimer(batch_size=config.batch_size),  # first: the loggers record its figures
        tf.keras.callbacks.CSVLogger(str(history_path), append=True),
        tf.keras.callbacks.TensorBoard(
            log_dir=str(out / "logs"), write_graph=False, profile_batch=0
        ),
    ]
    if _has_thresholds(model):
        callbacks.append(ThresholdHistograms(probe, out / "logs"))
    callbacks.append(checkpoints)  # after the CSV row: a redone epoch is trimmed above

    if initial_epoch < config.epochs:
        train_batches = data_lib.pipeline(
            train_data, training=True, batch_size=config.batch_size,
            preprocess=preprocess, image_size=size, seed=config.seed,
            first_epoch=initial_epoch, epochs=config.epochs - initial_epoch,
        )
        say(f"Training epochs {initial_epoch + 1}-{config.epochs}, {steps} steps each, "
            f"batch size {config.batch_size}")
        fitted.fit(
            train_batches.with_options(options), epochs=config.epochs,
            initial_epoch=initial_epoch, steps_per_epoch=steps,
            validation_data=eval_batches.with_options(options), callbacks=callbacks,
            verbose=config.verbose,
        )
    else:
        say(f"All {config.epochs} epochs are already done; evaluating the checkpoint")

    evaluation = fitted.evaluate(eval_batches.with_options(options), verbose=0,
                                 return_dict=True)
    evaluation = {k: float(v) for k, v in evaluation.items()}
    say(f"Evaluation on '{config.eval_split}': " +
        ", ".join(f"{k} {v:.4f}" for k, v in evaluation.items()))
    model_path = atomic_save_model(model, out / "model.keras")
    contract = contract_for(preprocess, image_size=size, class_names=train_data.class_names)
    write_contract(model_path, contract)
    say(f"Saved {model_path} (input contract: {contract.describe()})")
    result = TrainResult(
        output_dir=str(out), model_path=str(model_path), resumed_from=initial_epoch,
        history={}, evaluation=evaluation, worker=worker, seconds=0.0,
    )
    if worker.is_chief:
        _finish(config, result, root, history_path, probe,
                _sample_batches(eval_data, preprocess, size), say)
    result.seconds = time.perf_counter() - started
    return result


#: Options that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = (
    "verbose", "export", "probe_samples", "restart", "output_dir", "deterministic",
)


def _clear_run(out: Path) -> None:
    import shutil

    for name in ("checkpoints", "logs", "plots"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("history.csv", "config.json", "report.json", "model.keras", "model.tflite"):
        (out / name).unlink(missing_ok=True)


def _check_same_run(config: TrainConfig, path: Path) -> None:
    """Record the options of a new run; refuse to resume one with other options."""
    current = {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_CHANGES}
    if path.exists() and (path.parent / "checkpoints").exists():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in current if previous.get(k) != current[k])
        if changed:
            raise ValueError(
                f"'{path.parent}' holds a run with other options ("
                + ", ".join(f"{k}: {previous.get(k)!r} -> {current[k]!r}" for k in changed)
                + "). Resume with the same options, pass --restart to start over, or "
                "use another output directory."
            )
        return
    atomic_write_bytes(path, json.dumps(current, indent=2).encode())


def _has_thresholds(model: tf.keras.Model) -> bool:
    try:
        ThresholdProbe(model)
    except ValueError:
        return False
    return True


def _finish(config, result, root, history_path, probe, sample_batches, say) -> None:
    """The chief's extras: plots, optional export, report.json."""
    from larq_dybnn import plots

    if history_path.exists():
        result.history = plots.read_history(history_path)
    plot_dir = root / "plots"
    plot_dir.mkdir(exist_ok=True)
    if result.history:
        plots.plot_history(result.history, plot_dir / "training_curves.png")
        result.plots.append(str(plot_dir / "training_curves.png"))
    # The plots and the export use the saved file: what users ship is what we check.
    saved = _load_keras(result.model_path, "model")
    if _has_thresholds(saved):
        stats = ThresholdProbe(saved)(probe)
        shown = plots.plot_thresholds(stats, plot_dir / "thresholds.png")
        result.plots.append(str(plot_dir / "thresholds.png"))
        result.threshold_spread = {s.layer: float(s.spread.mean()) for s in stats}
        say("Threshold spread across samples (mean per-channel std) in "
            + ", ".join(f"{name} {result.threshold_spread[name]:.3f}" for name in shown))
    for path in result.plots:
        say(f"Wrote {path}")
    if config.export:
        from larq_dybnn.converter import export_and_verify

        samples, labels = _first_examples(sample_batches, 500)
        tflite_path = root / "model.tflite"
        report = export_and_verify(
            saved, output_path=tflite_path, samples=samples, labels=labels,
            contract=read_contract(result.model_path),
            samples_source=f"{len(samples)} '{config.eval_split}' images",
            benchmark=False, progress=lambda line: say(f"[export] {line}"),
        )
        result.tflite_path = str(tflite_path)
        result.conversion = report.as_dict()
        for line in report.format().splitlines():
            say(line)
    payload = {
        "config": asdict(config),
        "resumed_from": result.resumed_from,
        "evaluation": result.evaluation,
        "history": result.history,
        "model_path": result.model_path,
        "tflite_path": result.tflite_path,
        "conversion": result.conversion,
        "plots": result.plots,
        "threshold_spread": result.threshold_spread,
    }
    atomic_write_bytes(root / "report.json",
                       json.dumps(_json_safe(payload), indent=2).encode())
