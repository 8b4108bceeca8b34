"""The main job: `larq-dybnn demo` trains, exports and verifies on embedded data."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from larq_dybnn_cli import main
from larq_dybnn.training.data import load_digits
from larq_dybnn.training.demo import run_demo


def test_digits_are_normalized_and_stratified():
    (x_train, y_train), (x_test, y_test) = load_digits(seed=0)
    assert x_train.shape[1:] == (8, 8, 1) and len(x_train) + len(x_test) == 1797
    assert x_train.min() == -1.0 and x_train.max() == 1.0
    assert set(y_test) == set(range(10))


def test_demo_command_trains_evaluates_exports_verifies_and_plots(tmp_path):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command quiets TensorFlow by itself
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "larq_dybnn_cli", "demo", "--epochs", "5", "--quiet",
         "--output-dir", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # No TensorFlow start-up lines or warnings (such as "Local rendezvous is aborting
    # with status: OUT_OF_RANGE: End of sequence") on either stream.
    assert result.stderr == ""
    assert "OUT_OF_RANGE" not in result.stdout and "WARNING" not in result.stdout
    report = result.stdout[result.stdout.index("== Report =="):]
    assert "RESULT: PASS" in report
    assert "2 LceBconv2d / 2 binary QuantConv2D" in report
    # It learns (10 classes, chance 10%) and LCE reproduces Keras' accuracy.
    keras_acc = float(re.search(r"Keras accuracy +([\d.]+)%", report).group(1))
    lce_acc = float(re.search(r"LCE accuracy +([\d.]+)%", report).group(1))
    assert keras_acc > 40.0 and abs(keras_acc - lce_acc) <= 1.0
    # Different samples get different thresholds.
    spreads = [float(v) for v in re.findall(r"block\d_conv ([\d.]+)", report)]
    assert len(spreads) == 2 and all(v > 0 for v in spreads)
    assert (out / "model.tflite").stat().st_size > 10_000
    for name in ("training_curves.png", "thresholds.png"):
        assert (out / "plots" / name).read_bytes().startswith(b"\x89PNG")
    assert {p.name for p in out.iterdir()} >= {
        "checkpoints", "logs", "history.csv", "model.keras", "model.tflite", "report.json"}


@pytest.mark.parametrize("args", [["demo", "--epochs", "0"], ["demo", "--batch-size", "x"], []])
def test_bad_command_lines_exit_with_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as error:
        main(args)
    assert error.value.code == 2
    assert "usage: larq-dybnn" in capsys.readouterr().err


def test_run_demo_names_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="`epochs`"):
        run_demo(epochs=0, output_dir=tmp_path)
    with pytest.raises(ValueError, match="`test_fraction`"):
        load_digits(test_fraction=1.5)
