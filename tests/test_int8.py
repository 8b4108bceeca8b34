"""Int8 hyper-function weights: only the hyper functions' FC kernels change, per
channel, the graph stays the same, and the LCE interpreter still agrees with Keras."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_and_calibrate
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from larq_dybnn.converter import (
    export_and_verify,
    export_tflite,
    op_histogram,
    quantize_hyper_weights,
)
from larq_dybnn.training.data import load_digits
from larq_dybnn.zoo import DyBNNReActNet18, TinyDyBNN


def _fc_weight_types(flatbuffer: bytes) -> list[tuple[str, int, int]]:
    """(output tensor name, weight type, number of scales) of every FULLY_CONNECTED."""
    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    subgraph = tree.subgraphs[0]
    found = []
    for op in subgraph.operators:
        if flatbuffer_utils.opcode_to_name(tree, op.opcodeIndex) == "FULLY_CONNECTED":
            weight = subgraph.tensors[op.inputs[1]]
            scales = len(weight.quantization.scale) if weight.quantization and \
                weight.quantization.scale is not None else 0
            found.append((subgraph.tensors[op.outputs[0]].name.decode(), weight.type, scales))
    return found


@pytest.fixture(scope="module")
def dybnn18(cifar10_test_batch):
    x, _ = cifar10_test_batch
    model = DyBNNReActNet18(input_shape=(32, 32, 3), num_classes=10, width_multiplier=0.25,
                            stem="cifar")
    randomize_and_calibrate(model, x, seed=5)
    return model, export_tflite(model)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_only_hyper_kernels_become_int8(dybnn18, per_channel):
    model, plain = dybnn18
    quantized, info = quantize_hyper_weights(plain, model, per_channel=per_channel)
    assert op_histogram(quantized) == op_histogram(plain)  # same graph
    fcs = _fc_weight_types(quantized)
    classifier = [f for f in fcs if "logits" in f[0] or "StatefulPartitionedCall" in f[0]]
    hyper = [f for f in fcs if f not in classifier]
    assert len(classifier) == 1 and classifier[0][1] == schema.TensorType.FLOAT32
    assert hyper and all(kind == schema.TensorType.INT8 for _, kind, _ in hyper)
    assert all((scales > 1) == per_channel for _, _, scales in hyper)
    assert info.tensors > 0 and info.max_relative_error <= 1 / 254 + 1e-6
    # A quarter of the bytes, plus per channel a scale and a zero point (a large share
    # at this small width, where hidden layers have 8 units).
    assert info.int8_bytes < (0.55 if per_channel else 0.26) * info.float32_bytes
    # The file shrinks by most of that (re-serializing adds a few hundred bytes of
    # quantization tables and alignment per tensor).
    assert len(plain) - len(quantized) >= 0.6 * (info.float32_bytes - info.int8_bytes)


def test_trained_model_keeps_its_accuracy_with_int8_hyper_weights(tmp_path):
    # A trained model: in a deep random network any perturbation of a threshold
    # cascades, which says nothing about a real one.
    tf.keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits(seed=0)
    x_train, x_test = (np.repeat(x, 3, axis=-1) for x in (x_train, x_test))
    model = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, reduction=4)
    model.compile(tf.keras.optimizers.Adam(2e-3),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=64, epochs=8, verbose=0)
    report = export_and_verify(model, output_path=tmp_path / "m.tflite", samples=x_test,
                               labels=y_test, samples_source="digits test images",
                               benchmark=False, int8_hyper_weights=True)
    assert report.binary.ok and report.int8 is not None and report.int8.tensors == 10
    assert "hyper weights    int8" in report.format()
    assert report.as_dict()["int8_hyper_weights"]["tensors"] == 10
    assert report.accuracy["keras"] > 0.7
    assert abs(report.accuracy["lce"] - report.accuracy["keras"]) <= 0.02, report.accuracy
    assert report.parity.top1_agreement >= 0.95, report.parity
    assert (tmp_path / "m.tflite").stat().st_size == report.size_bytes


def test_models_without_hyper_functions_are_unchanged():
    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1, dynamic=False)
    plain = export_tflite(model)
    quantized, info = quantize_hyper_weights(plain, model)
    assert quantized == plain and info.tensors == 0
    with pytest.raises(ValueError, match="not a valid TFLite model"):
        quantize_hyper_weights(b"TFL3" * 10, model)
    with pytest.raises(TypeError, match="`model` must be a tf.keras.Model"):
        quantize_hyper_weights(plain, "model.keras")
