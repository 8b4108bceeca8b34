"""Training runs: ReActNet's recipe on a zoo model, resumable, on any strategy.

`train(TrainConfig(...))` is what `larq-dybnn train` runs. Everything a run makes
goes to one output directory (`larq_dybnn.training.run_folder.RunFolder` names it):

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

import contextlib
import dataclasses
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_dybnn._gc import fewer_collections
from larq_dybnn.dynamization import dynamize
from larq_dybnn.initialization import initialize_per_layer
from larq_dybnn.loading import load_model
from larq_dybnn.scan import hyper_weights, simulate_int8_hyper_kernels
from larq_dybnn._io import atomic_save_model, atomic_write_bytes, check_writable_target
from larq_dybnn.contract import contract_for, read_contract, write_contract
from larq_dybnn.training import data as data_lib, preprocessing
from larq_dybnn.training.checkpoints import EpochCheckpoints, trim_history
from larq_dybnn.training.compiled import create_step_variables
from larq_dybnn.training.config import (
    INIT_SCHEMES,
    STEP1_WEIGHT_DECAY,
    TrainConfig,
    TrainResult,
    check_config,
    default_int8_hyper_kernels,
)
from larq_dybnn.training.distribute import Worker, data_options, make_strategy, worker_of
from larq_dybnn.training.monitoring import ThresholdHistograms, ThresholdProbe
from larq_dybnn.training.optimizers import ScaledStepAdam
from larq_dybnn.training.run_folder import RunFolder
from larq_dybnn.training.recipe import (
    Distiller,
    SmoothedCrossentropy,
    add_conv_weight_decay,
    linear_decay_adam,
    transfer_weights,
)
from larq_dybnn.training.timing import EpochTimer

__all__ = ["train"]

Say = Callable[[str], object]


def _image_size(config: TrainConfig, images: data_lib.LabelledImages) -> int:
    if config.image_size is not None:
        return config.image_size
    first = next(iter(images.dataset.take(1)))[0]
    size = max(int(first.shape[0]), int(first.shape[1]))
    return size if size <= 64 else 224


def _load_keras(path: str, role: str, *, unsafe: bool = False) -> tf.keras.Model:
    try:
        return load_model(path, unsafe=unsafe)
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
    return preprocessing.pipeline(data, training=False, batch_size=256,
                                  preprocess=preprocess, image_size=size, cache=False)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


@dataclass
class _Data:
    """The run's splits and how they are fed."""

    train: data_lib.LabelledImages
    eval: data_lib.LabelledImages
    size: int
    preprocess: str
    steps: int
    exact_size: bool = False


@dataclass
class _Fitting:
    """The model, what `fit` runs (the model or its distiller) and where it resumes."""

    model: tf.keras.Model
    fitted: tf.keras.Model
    checkpoints: EpochCheckpoints
    initial_epoch: int
    description: str


@dataclass
class _Run:
    """What every stage of a run works with (`_start` makes it)."""

    config: TrainConfig
    strategy: tf.distribute.Strategy
    worker: Worker
    root: RunFolder  # the run's folder (the chief's)
    out: RunFolder  # this worker's folder: `root` on the chief
    say: Say


@fewer_collections()
def train(config: TrainConfig, *, print_fn: Say = print) -> TrainResult:
    """Run (or resume) a training run.

    The stages, in order: check the options, set up the strategy, seeds and output
    directory (`_start`); read the splits (`_read_data`); build the model, loss and
    optimizer and restore the last checkpoint (`_build`); train the remaining epochs
    (`_fit`); evaluate and save the model with its input contract (`_save`); and, on
    the chief, the plots, optional export and report.json (`_finish`).

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
    started = time.perf_counter()
    with contextlib.ExitStack() as held:
        return _train(config, print_fn, held, started)


def _train(config: TrainConfig, print_fn: Say, held: contextlib.ExitStack,
           started: float) -> TrainResult:
    run = _start(config, print_fn, held)
    data = _read_data(run)
    try:
        return _train_on(run, data, started)
    except tf.errors.InvalidArgumentError:
        # A damaged image or one of another size fails inside the input pipeline,
        # whose error names no file: find it, and say which.
        for split in (data.train, data.eval):
            problem = split.locate_bad_image(data.size if data.exact_size else None)
            if problem:
                raise ValueError(problem) from None
        raise


def _train_on(run: _Run, data: _Data, started: float) -> TrainResult:
    fitting = _build(run, data)
    probe = _fit(run, data, fitting)
    evaluation, model_path = _save(run, data, fitting)
    result = TrainResult(
        output_dir=str(run.out.path), model_path=str(model_path),
        resumed_from=fitting.initial_epoch, history={}, evaluation=evaluation,
        worker=run.worker, seconds=0.0,
    )
    if run.worker.is_chief:
        _finish(run, result, probe, _sample_batches(data.eval, data.preprocess, data.size))
    result.seconds = time.perf_counter() - started
    return result


def _start(config: TrainConfig, print_fn: Say,
           held: contextlib.ExitStack | None = None) -> _Run:
    """Check the options; make the strategy, seeds and this worker's output folder,
    locked for this process (the lock is released when `held` closes)."""
    check_config(config)
    # The strategy comes first: a multi-worker strategy must exist before other ops.
    strategy = make_strategy(config.strategy, logical_cpus=config.logical_cpus)
    worker = worker_of(strategy)
    tf.keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    root = RunFolder(config.output_dir)
    out = root if worker.is_chief else root.worker(worker.task_id)
    lock = out.open(options=[field.name for field in dataclasses.fields(TrainConfig)])
    if held is not None:
        held.enter_context(lock)
    else:
        lock.close()
    say = print_fn if worker.is_chief else (lambda _: None)
    if config.restart:
        out.clear(keep=(config.init_from, config.teacher))
    config = _resolve_recorded(config, out)
    _check_same_run(config, out)
    return _Run(config, strategy, worker, root, out, say)


def _resolve_recorded(config: TrainConfig, out: RunFolder) -> TrainConfig:
    """Fill the options a run records how it was built with: the reduction of a zoo
    DyBNN (or dynamized) model and the initialization scheme: the given ones, those of
    the run being resumed, or the current defaults for a new run."""
    from larq_dybnn.zoo import CATALOG, DEFAULT_REDUCTION

    recorded = out.read_record() or {}
    previous = recorded if recorded.get("model") == config.model else {}
    records_reduction = config.model in CATALOG and CATALOG[config.model].records_reduction
    changes = {}
    if config.reduction is None and (records_reduction or config.dynamize):
        changes["reduction"] = previous.get("reduction") or DEFAULT_REDUCTION
    if config.init_scheme is None:
        changes["init_scheme"] = previous.get("init_scheme") or INIT_SCHEMES[0]
    if config.int8_hyper_kernels is None:
        changes["int8_hyper_kernels"] = (
            bool(previous.get("int8_hyper_kernels", _RECORD_DEFAULTS["int8_hyper_kernels"]))
            if previous else default_int8_hyper_kernels(config))
    return replace(config, **changes)


def _read_data(run: _Run) -> _Data:
    """Read both splits and decide image size, preprocessing and steps per epoch."""
    config, worker, say = run.config, run.worker, run.say
    train_data = data_lib.load(config.data, split=config.train_split, data_dir=config.data_dir)
    eval_data = data_lib.load(config.data, split=config.eval_split, data_dir=config.data_dir)
    if eval_data.class_names != train_data.class_names:
        raise ValueError(
            f"Splits '{config.train_split}' and '{config.eval_split}' of '{config.data}' "
            "have different classes."
        )
    try:
        size = _image_size(config, train_data)
    except tf.errors.InvalidArgumentError:
        problem = train_data.locate_bad_image()
        if problem:
            raise ValueError(problem) from None
        raise
    preprocess = config.preprocess or preprocessing.default_preprocess(config.data, size)
    steps = preprocessing.steps_per_epoch(train_data, config.batch_size)
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
    # With the data's own size, every image must have it (not only the first); a
    # size the user asked for (--image-size) pads or crops as the recipe does.
    exact = config.image_size is None and preprocess != "imagenet"
    return _Data(train_data, eval_data, size, preprocess, steps, exact)


def _build(run: _Run, data: _Data) -> _Fitting:
    """Build the model, its loss and optimizer, and restore the last checkpoint."""
    from larq_dybnn.zoo import build_model, is_binary

    config, strategy, worker, say = run.config, run.strategy, run.worker, run.say
    weight_decay = config.weight_decay
    if weight_decay is None:
        weight_decay = STEP1_WEIGHT_DECAY if config.step == 1 else 0.0
    with strategy.scope():
        model = build_model(
            config.model, input_shape=(data.size, data.size, 3),
            num_classes=data.train.num_classes, width_multiplier=config.width_multiplier,
            binary_weights=config.step == 2, dynamic=config.dynamic,
            reduction=config.reduction, hyper_pool_stride=config.hyper_pool_stride,
            hyper_input=config.hyper_input,
        )
        data.train.check_num_classes(model.output_shape[-1])
        if config.init_scheme == "per-layer":
            initialize_per_layer(model, seed=config.seed)
        if config.init_from:
            source = _load_keras(config.init_from, "init_from", unsafe=config.unsafe_load)
            count = transfer_weights(source, model)
            say(f"Transferred all {count} weights from {config.init_from}")
            if config.dynamize:
                model = dynamize(model, dynamic=config.dynamic, reduction=config.reduction,
                                 seed=config.seed)
                say(f"Dynamized ({config.dynamic}, r={config.reduction}): "
                    f"{model.count_params() - source.count_params():,} new hyper weights, "
                    "outputs unchanged until trained")
        if config.int8_hyper_kernels:
            count = simulate_int8_hyper_kernels(model)
            if not count:
                raise ValueError("--int8-hyper-kernels needs a model with hyper functions "
                                 f"(a DyBNN model, or --dynamize); {config.model} has none.")
            say(f"Training {count} hyper functions with their kernels on the int8 grid")
        decayed = add_conv_weight_decay(model, weight_decay=weight_decay)
        optimizer = linear_decay_adam(
            learning_rate=config.learning_rate, total_steps=config.epochs * data.steps,
            scaled_variables=hyper_weights(model), multiplier=config.hyper_lr_multiplier,
        )
        fitted, loss_name = _compile(config, model, optimizer)
        # Before fit, or its first step is traced twice (training/compiled.py).
        create_step_variables(fitted, labels=tf.zeros((1,), tf.int64), model=model)
        checkpoints = EpochCheckpoints(run.out.checkpoints, fitted)
        initial_epoch = checkpoints.restore()
        if checkpoints.fallback:
            say(f"Warning: {checkpoints.fallback}")

    kind = f"step {config.step}" if is_binary(config.model) else "real-valued"
    description = (
        f"Model: {model.name} ({config.model}, {kind}), {model.count_params():,} "
        f"parameters; {loss_name}; Adam lr {config.learning_rate:g} -> 0 over "
        f"{config.epochs * data.steps} steps"
        + (f", {config.hyper_lr_multiplier:g}x for the {optimizer.scaled_count} hyper-function "
           "variables" if isinstance(optimizer, ScaledStepAdam) else "")
        + f"; weight decay {weight_decay:g} on {decayed} "
        f"conv kernels; {worker.replicas} replica(s) on {worker.num_workers} worker(s)"
    )
    say(description)
    if initial_epoch:
        say(f"Resuming from the checkpoint after epoch {initial_epoch} of {config.epochs}")
    return _Fitting(model, fitted, checkpoints, initial_epoch, description)


def _compile(config: TrainConfig, model: tf.keras.Model, optimizer):
    """Compile for the distribution loss against a teacher, or for cross-entropy."""
    if config.teacher:
        teacher = _load_keras(config.teacher, "teacher", unsafe=config.unsafe_load)
        if tuple(teacher.input_shape[1:]) != tuple(model.input_shape[1:]):
            raise ValueError(
                f"`teacher` takes inputs {teacher.input_shape[1:]} but the model "
                f"takes {model.input_shape[1:]}."
            )
        fitted = Distiller(model, teacher)
        fitted.compile(optimizer, metrics=["accuracy"])
        return fitted, f"distribution loss against {config.teacher}"
    model.compile(optimizer, SmoothedCrossentropy(config.label_smoothing), metrics=["accuracy"])
    smoothing = config.label_smoothing
    return model, "cross-entropy" + (f" with label smoothing {smoothing}" if smoothing else "")


def _eval_batches(config: TrainConfig, data: _Data) -> tf.data.Dataset:
    return preprocessing.pipeline(
        data.eval, training=False, batch_size=config.batch_size,
        preprocess=data.preprocess, image_size=data.size, exact_size=data.exact_size,
    ).with_options(data_options())


def _train_batches(config: TrainConfig, data: _Data, *, first_epoch: int) -> tf.data.Dataset:
    """The training batches from `first_epoch` on: their order and augmentation depend
    only on the seed and the epoch, so paired runs (same seed) see the same batches."""
    return preprocessing.pipeline(
        data.train, training=True, batch_size=config.batch_size,
        preprocess=data.preprocess, image_size=data.size, seed=config.seed,
        first_epoch=first_epoch, epochs=config.epochs - first_epoch,
        exact_size=data.exact_size,
    )


def _fit(run: _Run, data: _Data, fitting: _Fitting) -> np.ndarray:
    """Train the epochs not done yet; returns the threshold probe images."""
    config, say = run.config, run.say
    # Every worker makes the same callbacks (they create variables, which must be
    # created in the same order everywhere); a non-chief writes into its own folder.
    history_path = run.out.history
    check_writable_target(history_path)  # Keras' CSVLogger would follow a link
    trim_history(history_path, epochs=fitting.initial_epoch)
    probe, _ = _first_examples(_sample_batches(data.eval, data.preprocess, data.size),
                               config.probe_samples)
    callbacks: list[tf.keras.callbacks.Callback] = [
        EpochTimer(batch_size=config.batch_size),  # first: the loggers record its figures
        tf.keras.callbacks.CSVLogger(str(history_path), append=True),
        tf.keras.callbacks.TensorBoard(
            log_dir=str(run.out.logs), write_graph=False, profile_batch=0
        ),
    ]
    if _has_thresholds(fitting.model):
        callbacks.append(ThresholdHistograms(probe, run.out.logs))
    callbacks.append(fitting.checkpoints)  # after the CSV row: a redone epoch is trimmed
    if fitting.initial_epoch >= config.epochs:
        say(f"All {config.epochs} epochs are already done; evaluating the checkpoint")
        return probe
    train_batches = _train_batches(config, data, first_epoch=fitting.initial_epoch)
    say(f"Training epochs {fitting.initial_epoch + 1}-{config.epochs}, {data.steps} steps "
        f"each, batch size {config.batch_size}")
    fitting.fitted.fit(
        train_batches.with_options(data_options()), epochs=config.epochs,
        initial_epoch=fitting.initial_epoch, steps_per_epoch=data.steps,
        validation_data=_eval_batches(config, data), callbacks=callbacks,
        verbose=config.verbose,
    )
    return probe


def _save(run: _Run, data: _Data, fitting: _Fitting) -> tuple[dict, Path]:
    """Evaluate on the evaluation split; save model.keras with its input contract."""
    config, say = run.config, run.say
    evaluation = fitting.fitted.evaluate(_eval_batches(config, data), verbose=0,
                                         return_dict=True)
    evaluation = {k: float(v) for k, v in evaluation.items()}
    say(f"Evaluation on '{config.eval_split}': " +
        ", ".join(f"{k} {v:.4f}" for k, v in evaluation.items()))
    for weight in fitting.model.weights:
        if not np.all(np.isfinite(weight.numpy())):
            raise ValueError(
                f"Training diverged: weight '{weight.name}' is not finite after the last "
                f"epoch (evaluation: {evaluation}); model.keras is not saved. Lower "
                "--learning-rate, or resume from an earlier checkpoint.")
    model_path = atomic_save_model(fitting.model, run.out.model)
    contract = contract_for(data.preprocess, image_size=data.size,
                            class_names=data.train.class_names)
    write_contract(model_path, contract)
    say(f"Saved {model_path} (input contract: {contract.describe()})")
    return evaluation, model_path


#: What a run recorded before an option existed trained with, where the option's
#: default is no longer that (None now resolves per run: `_resolve_recorded`).
_RECORD_DEFAULTS = {"int8_hyper_kernels": False}

#: Options that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = (
    "verbose", "export", "probe_samples", "restart", "output_dir", "deterministic",
    "unsafe_load",
)


def _check_same_run(config: TrainConfig, out: RunFolder) -> None:
    """Record the options of a new run; refuse to resume one with other options."""
    current = {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_CHANGES}
    previous = out.read_record()
    if previous is not None:
        # An option newer than the record was not recorded: the run used its default
        # (of then: `_RECORD_DEFAULTS`).
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        defaults.update(_RECORD_DEFAULTS)
        changed = sorted(k for k in current if previous.get(k, defaults.get(k)) != current[k])
        if changed:
            raise ValueError(
                f"'{out.path}' holds a run with other options ("
                + ", ".join(f"{k}: {previous.get(k, defaults.get(k))!r} -> {current[k]!r}"
                           for k in changed)
                + "). Resume with the same options, pass --restart to start over, or "
                "use another output directory."
            )
        return
    out.write_record(current)


def _has_thresholds(model: tf.keras.Model) -> bool:
    try:
        ThresholdProbe(model)
    except ValueError:
        return False
    return True


def _finish(run: _Run, result: TrainResult, probe: np.ndarray,
            sample_batches: tf.data.Dataset) -> None:
    """The chief's extras: plots, optional export, report.json."""
    from larq_dybnn.training import plots

    config, say, root, history_path = run.config, run.say, run.root, run.root.history
    if history_path.exists():
        result.history = plots.read_history(history_path)
    plot_dir = root.plots
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
        tflite_path = root.tflite
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
    atomic_write_bytes(root.report,
                       json.dumps(_json_safe(payload), indent=2).encode())
