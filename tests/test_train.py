"""`larq_dybnn.training.train` and `evaluate`: the recipe end to end (teacher, step 1,
step 2 with weight transfer, export), what a run writes, and clear errors."""

from __future__ import annotations

import json

import larq as lq
import pytest
import tensorflow as tf

from larq_dybnn_cli import MODEL_NAMES, main
from larq_dybnn.loading import load_model
from larq_dybnn.training.evaluation import evaluate
from larq_dybnn.training import TrainConfig, train
from larq_dybnn.zoo import CATALOG

FAST = dict(data="digits", epochs=2, batch_size=64, verbose=0, deterministic=False,
            probe_samples=64)


def _binary_convs(model):
    return [layer for layer in model.layers if isinstance(layer, lq.layers.QuantConv2D)]


def _event_tags(folder):
    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_cli_model_names_match_the_zoo():
    assert MODEL_NAMES == tuple(CATALOG)


def test_cli_preprocess_names_are_one_set_across_commands():
    from larq_dybnn.contract import RECIPES
    from larq_dybnn.training.preprocessing import (
        ARRAY_PREPROCESSING, EVALUATION_PREPROCESSING, PREPROCESSING)
    from larq_dybnn_cli import PREPROCESS_NAMES, RECIPE_NAMES, build_parser

    assert set(RECIPE_NAMES) == set(RECIPES) == set(PREPROCESSING)
    assert set(PREPROCESS_NAMES) == set(EVALUATION_PREPROCESSING) == set(ARRAY_PREPROCESSING)
    commands = build_parser()._subparsers._group_actions[0].choices
    offered = {name: next(a.choices for a in parser._actions if "--preprocess" in a.option_strings)
               for name, parser in commands.items()
               if any("--preprocess" in a.option_strings for a in parser._actions)}
    assert offered == {"train": RECIPE_NAMES, "evaluate": PREPROCESS_NAMES,
                       "convert": PREPROCESS_NAMES}


def test_teacher_then_step1_then_step2_with_export(tmp_path):
    lines = []
    teacher = train(TrainConfig(model="resnet-18", width_multiplier=0.125, label_smoothing=0.1,
                                output_dir=str(tmp_path / "teacher"), **FAST),
                    print_fn=lines.append)
    assert teacher.evaluation["accuracy"] > 0.2  # chance: 0.1
    assert not _binary_convs(load_model(teacher.model_path))
    assert any("label smoothing 0.1" in line for line in lines)

    lines.clear()
    step1 = train(TrainConfig(step=1, teacher=teacher.model_path,
                              output_dir=str(tmp_path / "step1"), **FAST), print_fn=lines.append)
    assert any("distribution loss against" in line for line in lines)
    assert any("weight decay 1e-05 on 3 conv kernels" in line for line in lines)
    step1_model = load_model(step1.model_path)
    assert all(layer.kernel_quantizer is None for layer in _binary_convs(step1_model))

    lines.clear()
    step2 = train(TrainConfig(step=2, teacher=teacher.model_path, init_from=step1.model_path,
                              export=True, output_dir=str(tmp_path / "step2"), **FAST),
                  print_fn=lines.append)
    assert any(line.startswith("Transferred all") for line in lines)
    assert any("weight decay 0 on" in line for line in lines)
    model = load_model(step2.model_path)
    convs = _binary_convs(model)
    assert len(convs) == 2
    assert all(isinstance(c.kernel_quantizer, lq.quantizers.MagnitudeAwareSign) for c in convs)

    # What the run wrote.
    out = tmp_path / "step2"
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["init_from"] == step1.model_path
    assert len(report["history"]["loss"]) == 2 == len(step2.history["val_accuracy"])
    assert report["conversion"]["binary"]["lce_bconv2d"] == 2
    assert report["conversion"]["parity"]["top1_agreement"] >= 0.99
    assert (out / "model.tflite").stat().st_size > 10_000
    for name in ("training_curves.png", "thresholds.png"):
        assert (out / "plots" / name).read_bytes().startswith(b"\x89PNG")
    assert sorted(step2.threshold_spread) == ["block1_conv", "block2_conv"]
    assert all(v > 0 for v in step2.threshold_spread.values())  # samples differ
    tags = _event_tags(out / "logs" / "thresholds")
    assert {"thresholds/block1_conv", "threshold_spread/block2_conv"} <= tags
    assert "epoch_loss" in _event_tags(out / "logs" / "train")

    # `evaluate` reproduces the run's accuracy, in Keras and in the LCE interpreter.
    # The run records its input contract in the model and in the exported file.
    from larq_dybnn.contract import read_contract

    contract = read_contract(out / "model.keras")
    assert contract.preprocess == "digits" and contract.image_size == (8, 8)
    assert contract.class_names == tuple(str(i) for i in range(10))
    assert read_contract(out / "model.tflite") == contract
    assert report["conversion"]["input_contract"]["preprocess"] == "digits"
    keras = evaluate(out / "model.keras", data="digits")
    assert keras.runtime == "keras" and keras.examples == 360
    assert keras.preprocess == "digits" and keras.notes == ()
    assert keras.accuracy == pytest.approx(step2.evaluation["accuracy"], abs=1e-6)
    lce = evaluate(out / "model.tflite", data="digits")
    assert lce.runtime == "lce" and abs(lce.accuracy - keras.accuracy) <= 0.01
    assert lce.top5_accuracy >= lce.accuracy


def test_a_finished_run_is_not_trained_again(tmp_path):
    config = TrainConfig(model="tiny-reactnet", epochs=1, output_dir=str(tmp_path),
                         **{k: v for k, v in FAST.items() if k != "epochs"})
    first = train(config)
    lines = []
    again = train(config, print_fn=lines.append)
    assert again.resumed_from == 1
    assert any("already done" in line for line in lines)
    assert again.evaluation == pytest.approx(first.evaluation)
    # A static model has thresholds too, the same for every sample.
    assert all(v < 1e-6 for v in first.threshold_spread.values())


def test_resuming_with_other_options_is_refused_and_restart_starts_over(tmp_path):
    config = TrainConfig(**{**FAST, "epochs": 1, "output_dir": str(tmp_path)})
    train(config)
    with pytest.raises(ValueError, match=r"epochs: 1 -> 2.*--restart"):
        train(TrainConfig(**{**FAST, "epochs": 2, "output_dir": str(tmp_path)}))
    with pytest.raises(ValueError, match=r"hyper_lr_multiplier: 1.0 -> 10.0"):
        train(TrainConfig(**{**FAST, "epochs": 1, "output_dir": str(tmp_path),
                             "hyper_lr_multiplier": 10.0}))
    # Restarted with the hyper functions at 10x the rate (ScaledStepAdam; its
    # arithmetic is tested in test_optimizers.py).
    lines = []
    again = train(TrainConfig(**{**FAST, "epochs": 2, "output_dir": str(tmp_path),
                                 "restart": True, "hyper_lr_multiplier": 10.0}),
                  print_fn=lines.append)
    assert again.resumed_from == 0 and len(again.history["loss"]) == 2
    assert not any("Resuming" in line for line in lines)
    assert any("0 over 44 steps, 10x for the 20 hyper-function variables" in line
               for line in lines), lines
    assert json.loads((tmp_path / "config.json").read_text())["hyper_lr_multiplier"] == 10.0


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(model="vgg"), ValueError, "`model` must be one of"),
        (dict(step=3), ValueError, "`step` must be 1 or 2"),
        (dict(epochs=0), ValueError, "`epochs`"),
        (dict(label_smoothing=1.0), ValueError, "`label_smoothing`"),
        (dict(teacher="t.keras", label_smoothing=0.1), ValueError, "Give one of them"),
        (dict(teacher="missing.keras"), FileNotFoundError, "`teacher`: no model"),
        (dict(init_from="missing.keras"), FileNotFoundError, "`init_from`: no model"),
        (dict(data="no/such/folder"), FileNotFoundError, "no/such/folder"),
        (dict(batch_size=5000), ValueError, "`batch_size`=5000 is larger than"),
        (dict(preprocess="mnist"), ValueError, "`preprocess`"),
        (dict(model="tiny-dybnn", dynamic="sign"), ValueError, "turn both DynamicSign"),
        (dict(hyper_lr_multiplier=0.0), ValueError, "`hyper_lr_multiplier` must be a positive"),
        (dict(int8_hyper_kernels="yes"), ValueError,
         "`int8_hyper_kernels` must be true, false or None"),
        (dict(model="tiny-reactnet", hyper_lr_multiplier=10.0), ValueError,
         "`hyper_lr_multiplier` sets the learning rate of the hyper functions; 'tiny-reactnet'"),
    ],
)
def test_bad_options_are_named(tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        train(TrainConfig(**{**FAST, "output_dir": str(tmp_path), **options}))


def test_teacher_with_other_input_size_is_refused(tmp_path):
    teacher = tf.keras.Sequential([tf.keras.Input((16, 16, 3)), tf.keras.layers.Flatten(),
                                   tf.keras.layers.Dense(10)])
    teacher.save(tmp_path / "teacher.keras")
    with pytest.raises(ValueError, match=r"`teacher` takes inputs \(16, 16, 3\)"):
        train(TrainConfig(**{**FAST, "output_dir": str(tmp_path / "run"),
                             "teacher": str(tmp_path / "teacher.keras")}))


def test_evaluate_errors_name_the_problem(tmp_path):
    three = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(3)])
    three.save(tmp_path / "three.keras")
    with pytest.raises(ValueError, match="model has 3 outputs but 'digits' has 10 classes"):
        evaluate(tmp_path / "three.keras", data="digits")
    with pytest.raises(FileNotFoundError, match="No model at"):
        evaluate(tmp_path / "missing.keras", data="digits")


def test_cli_reports_errors_with_exit_status_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.keras"), "--data", "digits"]) == 2
    assert "larq-dybnn evaluate: error: No model at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["train", "--model", "vgg"])
    assert "invalid choice: 'vgg'" in capsys.readouterr().err


def test_runs_record_the_reduction_and_initialization_they_are_built_with(tmp_path):
    """New runs record the zoo's default reduction and per-layer initialization; a run
    recorded before those existed (reduction None, built with r=16; no init_scheme,
    built from Keras' global stream; no int8_hyper_kernels, trained in float) resumes
    with r=16, the global scheme and float kernels, and explicit values that differ
    from the recorded ones are refused."""
    import json
    from dataclasses import replace

    from larq_dybnn.training.config import TrainConfig
    from larq_dybnn.training.loop import _check_same_run, _resolve_recorded
    from larq_dybnn.training.run_folder import RunFolder
    from larq_dybnn.zoo import DEFAULT_REDUCTION

    folder = RunFolder(tmp_path)
    path = folder.config
    config = TrainConfig(model="dybnn-reactnet-18", data="digits", output_dir=str(tmp_path))
    fresh = _resolve_recorded(config, folder)
    assert fresh.reduction == DEFAULT_REDUCTION == 64
    assert fresh.init_scheme == "per-layer"
    assert fresh.int8_hyper_kernels is True  # step 2 of a DyBNN model
    tiny = TrainConfig(model="tiny-dybnn", data="digits", output_dir=str(tmp_path))
    assert _resolve_recorded(tiny, folder).reduction is None  # the tiny models' own default
    (tmp_path / "checkpoints").mkdir()
    legacy = {k: v for k, v in json.loads(json.dumps(config.__dict__)).items()
              if k not in ("init_scheme", "dynamize", "int8_hyper_kernels")}
    path.write_text(json.dumps({**legacy, "reduction": None}))
    resolved = _resolve_recorded(config, folder)
    assert (resolved.reduction, resolved.init_scheme) == (16, "global")
    assert resolved.int8_hyper_kernels is False
    _check_same_run(resolved, folder)  # resumable
    with pytest.raises(ValueError, match="reduction: 16 -> 64"):
        _check_same_run(replace(resolved, reduction=64), folder)
    with pytest.raises(ValueError, match="init_scheme: 'global' -> 'per-layer'"):
        _check_same_run(replace(resolved, init_scheme="per-layer"), folder)
    with pytest.raises(ValueError, match="int8_hyper_kernels: False -> True"):
        _check_same_run(replace(resolved, int8_hyper_kernels=True), folder)


@pytest.mark.parametrize("one_hot", [False, True], ids=["class_indices", "one_hot"])
@pytest.mark.parametrize("created_first", [True, False])
def test_the_training_step_is_traced_once_when_metric_variables_exist(created_first, one_hot):
    """`create_step_variables` (which `train` calls) before `fit`: otherwise Keras
    creates the metric variables while tracing the first step, and TensorFlow traces
    it again. The metrics are the ones Keras picks itself, for either label kind."""
    import numpy as np

    from larq_dybnn.training import create_step_variables
    from larq_dybnn.zoo import TinyDyBNN

    tf.keras.utils.set_random_seed(1)
    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1)
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype(np.float32)
    y = np.arange(8) % 10
    if one_hot:
        y = tf.keras.utils.to_categorical(y, 10)
    loss = (tf.keras.losses.CategoricalCrossentropy if one_hot
            else tf.keras.losses.SparseCategoricalCrossentropy)(from_logits=True)
    model.compile(tf.keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    if created_first:
        create_step_variables(model, labels=y[:1])
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert model.train_function.experimental_get_tracing_count() == (1 if created_first else 2)
    # The accuracy Keras reports is the fraction of right predictions of this kind
    # of label (a wrong kind would report a silently different number).
    expected = "categorical_accuracy" if one_hot else "sparse_categorical_accuracy"
    assert [m.name for m in model.compiled_metrics.metrics] == ["accuracy"]
    assert model.compiled_metrics.metrics[0]._fn.__name__ == expected
    assert 0 <= history.history["accuracy"][0] <= 1


def test_create_step_variables_refuses_what_it_cannot_prepare():
    from larq_dybnn.training import create_step_variables
    from larq_dybnn.zoo import TinyDyBNN

    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1)
    with pytest.raises(ValueError, match="is not compiled"):
        create_step_variables(model, labels=[0])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match="`labels` must hold at least one label"):
        create_step_variables(model, labels=tf.zeros((0,), tf.int64))


def test_every_train_config_field_round_trips_through_the_command_line():
    """One mapping between TrainConfig and `larq-dybnn train`'s flags: a config with
    every field off its default becomes arguments (as the sweep writes them) and
    parses back into the same config. A new field without a flag fails here."""
    import dataclasses

    from larq_dybnn.training import TrainConfig
    from larq_dybnn.training.config import train_arguments, train_config_options
    from larq_dybnn_cli import build_parser

    changed = dict(
        model="reactnet-18", data="some/data", output_dir="out/run", data_dir="tfds",
        train_split="train[:100]", eval_split="train[100:]", epochs=3, batch_size=32,
        learning_rate=0.01, step=1, weight_decay=0.5, init_from="a.keras", dynamize=True,
        unsafe_load=True, teacher="t.keras", label_smoothing=0.1, width_multiplier=0.5,
        dynamic="sign", reduction=8, hyper_lr_multiplier=10.0, hyper_pool_stride=2,
        hyper_input="block",
        int8_hyper_kernels=False,
        image_size=16,
        preprocess="cifar", seed=7,
        init_scheme="global", strategy="mirrored", logical_cpus=2, export=True,
        probe_samples=32, restart=True, deterministic=False, verbose=2,
    )
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(changed) == set(fields), "give the new field a value here"
    assert all(changed[k] != fields[k] for k in fields)
    switches = [k for k, default in fields.items() if isinstance(default, bool)]
    argv = ["train", *train_arguments(changed, switches=switches)]
    parsed = train_config_options(build_parser().parse_args(argv), list(fields))
    assert TrainConfig(**parsed) == TrainConfig(**changed)
    for value in (True, False):  # the switch has three states: on, off, per run (None)
        argv = ["train", *train_arguments({"int8_hyper_kernels": value}, switches=switches)]
        assert train_config_options(build_parser().parse_args(argv), list(fields))[
            "int8_hyper_kernels"] is value
    defaults = train_config_options(build_parser().parse_args(["train"]), list(fields))
    assert {k: v for k, v in defaults.items() if k != "verbose"} == {
        k: v for k, v in fields.items() if k != "verbose"}


def test_a_default_dybnn_run_exports_a_file_that_computes_the_model(tmp_path):
    """Step 2 of a DyBNN model trains on the int8 grid by default, so the default
    (int8 hyper weights) export computes the trained model; the run records it."""
    lines = []
    result = train(TrainConfig(model="tiny-dybnn", export=True,
                               output_dir=str(tmp_path / "int8"), **FAST),
                   print_fn=lines.append)
    assert any("4 hyper functions with their kernels on the int8 grid" in line
               for line in lines)
    conversion = result.conversion
    assert conversion["int8_hyper_weights"]["effect"]["top1_agreement"] == 1.0
    assert conversion["parity"]["top1_agreement"] == 1.0
    assert json.loads((tmp_path / "int8" / "config.json").read_text())[
        "int8_hyper_kernels"] is True
    with pytest.raises(ValueError, match="needs a model with hyper functions"):
        train(TrainConfig(model="tiny-reactnet", int8_hyper_kernels=True,
                          output_dir=str(tmp_path / "static"), **FAST))


@pytest.mark.parametrize("options, on", [
    (dict(model="dybnn-reactnet-18"), True),
    (dict(model="dybnn-reactnet-a", hyper_input="block", hyper_pool_stride=2), True),
    (dict(model="dybnn-reactnet-18", step=1), False),
    (dict(model="dybnn-reactnet-18", dynamic="none"), False),
    (dict(model="dybnn-reactnet-18", hyper_input="constant"), False),
    (dict(model="reactnet-18"), False),
    (dict(model="reactnet-18", init_from="static.keras", dynamize=True), True),
    (dict(model="resnet-18"), False),
])
def test_the_int8_grid_is_the_default_where_the_export_stores_hyper_kernels_in_int8(
        options, on):
    from larq_dybnn.training.config import default_int8_hyper_kernels

    assert default_int8_hyper_kernels(TrainConfig(**options)) is on


@pytest.mark.parametrize("options", [dict(step=1), dict(int8_hyper_kernels=False)])
def test_runs_off_the_int8_grid_record_it_and_resume_with_it(tmp_path, options):
    lines = []
    config = TrainConfig(**{**FAST, "epochs": 1, "model": "tiny-dybnn",
                            "output_dir": str(tmp_path), **options})
    train(config, print_fn=lines.append)
    assert not any("on the int8 grid" in line for line in lines)
    assert json.loads((tmp_path / "config.json").read_text())["int8_hyper_kernels"] is False
    # Resumed with the per-run default (None), the recorded setting is kept.
    again = train(TrainConfig(**{**FAST, "epochs": 1, "model": "tiny-dybnn",
                                 "output_dir": str(tmp_path),
                                 **{k: v for k, v in options.items()
                                    if k != "int8_hyper_kernels"}}))
    assert again.resumed_from == 1
