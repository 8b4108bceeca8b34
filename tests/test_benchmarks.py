"""The export benchmarks compare models as they are after training: the static
model keeps the threshold and shift ops that an untrained one loses in conversion."""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf
from conftest import REPO

from larq_dybnn import DynamicPReLU, DynamicSign
from larq_dybnn.converter import read_operators
from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.converter.flatbuffer import op_histogram
from larq_dybnn.converter.report import threshold_ops
from larq_dybnn.zoo import TinyDyBNN

sys.path.insert(0, str(REPO / "benchmarks"))
from export_benchmark import trained_like  # noqa: E402


def _tiny(dynamic: bool) -> tf.keras.Model:
    return TinyDyBNN(input_shape=(16, 16, 3), width=16, blocks=2, dynamic=dynamic)


def test_an_untrained_static_model_loses_its_shift_ops_and_a_trained_like_one_keeps_them():
    untrained = op_histogram(export_tflite(_tiny(dynamic=False)))
    trained = op_histogram(export_tflite(trained_like(_tiny(dynamic=False))))
    # Per block: the RSign threshold (SUB) and the RPReLU shifts (SUB before, ADD
    # after the PReLU) are zeros at initialisation and the converter drops them.
    assert trained["SUB"] - untrained["SUB"] == 2 * 2
    assert trained["ADD"] - untrained["ADD"] == 2
    assert trained["LceBconv2d"] == untrained["LceBconv2d"] == 2


def test_trained_like_dybnn_keeps_the_minimal_threshold_ops_and_sets_every_offset():
    model = trained_like(_tiny(dynamic=True))
    owners = [layer for layer in model.submodules if isinstance(layer, (DynamicSign, DynamicPReLU))]
    assert owners
    for layer in owners:
        for weight in layer.weights:
            assert np.all(weight.numpy() != 0), weight.name
    operators = read_operators(export_tflite(model))
    assert threshold_ops(model, operators)["minimal"]

