"""Files made by an earlier version of the package still load and resume.

`tests/data/pre_move_run` is a `larq-dybnn train --model tiny-dybnn --data digits
--epochs 2 --batch-size 64` run directory made before the package was split into the
library and its training application: its `model.keras` (after epoch 2), its epoch-1
checkpoint, its config and history, and `expected.npz` (fixed inputs and the logits
the saved model gave for them when it was made).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import larq_dybnn  # noqa: F401  (registers the custom objects)

RUN = Path(__file__).parent / "data" / "pre_move_run"


def _history(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_saved_model_from_before_the_move_loads_and_predicts_the_same():
    model = tf.keras.models.load_model(RUN / "model.keras")
    expected = np.load(RUN / "expected.npz")
    names = {layer.__class__.__name__ for layer in model.layers}
    assert {"DynamicPReLU", "QuantConv2D"} <= names
    np.testing.assert_allclose(model(expected["inputs"], training=False).numpy(),
                               expected["logits"], atol=1e-4)


def test_checkpoint_from_before_the_move_resumes(tmp_path):
    from larq_dybnn.training import TrainConfig, train

    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    (run / "model.keras").unlink()
    config = TrainConfig(model="tiny-dybnn", data="digits", epochs=2, batch_size=64,
                         output_dir=str(run), verbose=0)
    result = train(config, print_fn=lambda _: None)
    assert result.resumed_from == 1
    before, after = _history(RUN / "history.csv"), _history(run / "history.csv")
    assert [row["epoch"] for row in after] == ["0", "1"]
    assert after[0] == before[0]  # the finished epoch is kept as it was
    # The resumed epoch continues from the restored weights and optimizer state: it
    # ends where the original run's second epoch ended, up to the float rounding of
    # another machine or thread count (bit-exact resumption on one machine is
    # tests/test_resume.py), far from a fresh run's first epoch (loss 2.15, 27%).
    assert float(after[1]["loss"]) == pytest.approx(float(before[1]["loss"]), abs=0.02)
    assert float(after[1]["accuracy"]) == pytest.approx(float(before[1]["accuracy"]), abs=0.02)
    assert float(after[1]["val_accuracy"]) > float(before[0]["val_accuracy"]) + 0.05
    assert tf.keras.models.load_model(run / "model.keras").count_params() == 23_050
