"""Shipping trained runs (`experiments/ship_weights.py`): a run trained with its hyper
kernels on the int8 grid ships weights that compute, in a zoo model with float
kernels, exactly what it trained."""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf
from conftest import REPO

from larq_dybnn import simulate_int8_hyper_kernels
from larq_dybnn.zoo import TinyDyBNN

sys.path.insert(0, str(REPO / "experiments"))
from ship_weights import merged_manifest, shipped_model  # noqa: E402


def _tiny() -> tf.keras.Model:
    return TinyDyBNN(input_shape=(16, 16, 3), width=16, blocks=2)


def _trained_like(model: tf.keras.Model) -> tf.keras.Model:
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if "hyper_function" in weight.name:
            weight.assign(rng.normal(0, 0.5, weight.shape).astype(np.float32))
    return model


def _run(tmp_path, *, on_grid: bool):
    model = _trained_like(_tiny())
    if on_grid:
        simulate_int8_hyper_kernels(model)
    tmp_path.mkdir(exist_ok=True)
    model.save(tmp_path / "model.keras")
    (tmp_path / "config.json").write_text(json.dumps({"int8_hyper_kernels": on_grid}))
    return model


def _as_zoo_model(model: tf.keras.Model, folder) -> tf.keras.Model:
    """The shipped weights in a freshly built model with float kernels."""
    model.save_weights(folder / "shipped.h5")
    zoo = _tiny()
    zoo.load_weights(folder / "shipped.h5")
    return zoo


def test_a_grid_trained_run_ships_weights_that_compute_what_it_trained(tmp_path):
    trained = _run(tmp_path / "grid", on_grid=True)
    x = np.random.default_rng(1).normal(size=(64, 16, 16, 3)).astype(np.float32)
    zoo = _as_zoo_model(shipped_model(tmp_path / "grid"), tmp_path)
    np.testing.assert_allclose(zoo(x), trained(x), atol=1e-5)
    # Without the rounding the float kernels would compute another function.
    unrounded = _as_zoo_model(trained, tmp_path)
    assert np.abs(np.asarray(unrounded(x)) - np.asarray(trained(x))).max() > 1e-3


def test_a_float_trained_run_ships_its_weights_unchanged(tmp_path):
    trained = _run(tmp_path / "float", on_grid=False)
    shipped = shipped_model(tmp_path / "float")
    for mine, theirs in zip(shipped.weights, trained.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_shipping_one_model_replaces_its_entry_and_keeps_the_others():
    static = {"model": "reactnet_18", "name": "cifar10", "file": "static.h5"}
    dybnn = {"model": "dybnn_reactnet_18", "name": "cifar10", "file": "old.h5"}
    other = {"model": "dybnn_reactnet_18", "name": "mine", "file": "mine.h5"}
    new = {"model": "dybnn_reactnet_18", "name": "cifar10", "file": "new.h5"}
    assert merged_manifest([static, dybnn, other], [new]) == [static, new, other]
    assert merged_manifest([static], [new]) == [static, new]
    assert merged_manifest([], [static, new]) == [static, new]
