"""`--strategy`: MirroredStrategy on 2 logical CPUs, and two loopback workers of a
MultiWorkerMirroredStrategy run that end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from larq_dybnn_cli import STRATEGY_NAMES
from larq_dybnn.loading import load_model
from larq_dybnn.training.distribute import STRATEGIES, make_strategy, worker_of

ARGS = ["--model", "tiny-dybnn", "--data", "digits", "--epochs", "2", "--batch-size", "64",
        "--quiet"]


def _command(output_dir, *extra) -> list[str]:
    return [sys.executable, "-m", "larq_dybnn_cli", "train", *ARGS, *extra,
            "--output-dir", str(output_dir)]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_cli_names_match_the_library():
    assert STRATEGY_NAMES == STRATEGIES


def test_default_strategy_is_a_single_chief():
    worker = worker_of(make_strategy("default"))
    assert worker.is_chief and worker.replicas == 1 and worker.num_workers == 1


def test_bad_strategy_arguments(monkeypatch):
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        make_strategy("multiworker")
    monkeypatch.delenv("TF_CONFIG")
    tf.config.list_logical_devices()  # initializes TensorFlow's devices
    with pytest.raises(ValueError, match="`logical_cpus` must be set before"):
        make_strategy("mirrored", logical_cpus=2)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    # With the hyper functions at 10x the rate: the option through the command line
    # and a strategy (ScaledStepAdam's arithmetic is tested in test_optimizers.py).
    result = subprocess.run(
        _command(tmp_path / "run", "--strategy", "mirrored", "--logical-cpus", "2",
                 "--hyper-lr-multiplier", "10"),
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 replica(s) on 1 worker(s)" in result.stdout
    assert "10x for the 20 hyper-function variables" in result.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["evaluation"]["accuracy"] > 0.2  # chance: 0.1
    assert len(report["history"]["loss"]) == 2


def test_two_workers_on_loopback_end_with_identical_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=config)
        workers.append(subprocess.Popen(
            _command(tmp_path / "run", "--strategy", "multiworker"), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=600)[0])
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    assert "2 replica(s) on 2 worker(s)" in outputs[0]
    chief = load_model(tmp_path / "run" / "model.keras")
    other = load_model(tmp_path / "run" / "workers" / "worker-1" / "model.keras")
    for a, b in zip(chief.weights, other.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    # Only the chief writes the run's logs and report.
    assert (tmp_path / "run" / "report.json").exists()
    assert not (tmp_path / "run" / "workers" / "worker-1" / "report.json").exists()
