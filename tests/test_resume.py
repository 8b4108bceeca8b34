"""Epoch-level resumption: a killed `larq-dybnn train` run, restarted, ends exactly
where an uninterrupted run with the same seed ends."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from larq_dybnn.loading import load_model

ARGS = ["--model", "tiny-dybnn", "--data", "digits", "--batch-size", "64", "--seed", "3",
        "--quiet"]


def _train_command(output_dir: Path, epochs: int = 4) -> list[str]:
    return [sys.executable, "-m", "larq_dybnn_cli", "train", *ARGS, "--epochs", str(epochs),
            "--output-dir", str(output_dir)]


def _env() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # wall-clock columns (larq_dybnn.training.timing) differ between runs
        assert float(row.pop("train_images_per_second")) > 0
        assert float(row.pop("train_seconds")) > 0
    return rows


def test_killed_run_resumes_and_matches_the_uninterrupted_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = subprocess.Popen(_train_command(straight), env=_env(), cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = subprocess.Popen(_train_command(killed), env=_env(), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The manager's state file is written after a checkpoint's data: once it exists, a
    # restart finds a complete checkpoint (a kill before it would only redo epoch 1).
    registered = killed / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 300
    while not registered.exists() and victim.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed / "model.keras").exists()  # it really was interrupted
    stopped_after = len(list((killed / "checkpoints").glob("ckpt-*.index")))
    assert stopped_after < 4

    resumed = subprocess.run(_train_command(killed), env=_env(), cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Resuming from the checkpoint after epoch" in resumed.stdout
    output, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, output[-3000:]

    a, b = load_model(straight / "model.keras"), load_model(killed / "model.keras")
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=wa.name)
    # The history is complete, without repeated epochs, and the same.
    rows_a, rows_b = _rows(straight / "history.csv"), _rows(killed / "history.csv")
    assert [r["epoch"] for r in rows_b] == [str(e) for e in range(4)]
    assert rows_a == rows_b
