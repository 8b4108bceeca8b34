"""Saving and loading models with DyBNN layers in every Keras format."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn import DynamicPReLU, DynamicSign
from larq_dybnn.zoo import TinyDyBNN

FORMATS = ["model.keras", "model.h5", "saved_model"]


@pytest.mark.parametrize("filename", FORMATS)
@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_save_and_load_give_identical_outputs(filename, dynamic, tmp_path, rng):
    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=2, dynamic=dynamic, reduction=4)
    randomize_weights(model, seed=11)
    x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    path = tmp_path / filename
    if filename == "saved_model":
        model.save(path, save_format="tf")
    else:
        model.save(path)
    # No custom_objects: the package registered its layers when it was imported.
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    quantizers = [l.input_quantizer for l in loaded.layers if hasattr(l, "input_quantizer")]
    assert quantizers and all(isinstance(q, DynamicSign) for q in quantizers)
    assert all(q.dynamic_threshold == dynamic for q in quantizers)
    assert any(isinstance(l, DynamicPReLU) for l in loaded.layers)
    assert len(loaded.weights) == len(model.weights)


def test_weights_only_round_trip(tmp_path, rng):
    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=2, reduction=4)
    randomize_weights(model, seed=12)
    model.save_weights(tmp_path / "w.h5")
    fresh = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=2, reduction=4)
    fresh.load_weights(tmp_path / "w.h5")
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(fresh(x), model(x))
