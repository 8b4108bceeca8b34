"""Int8 hyper-function weights: only the hyper functions' FC kernels are stored in
int8 (per tensor or per channel) behind a DEQUANTIZE op, the float graph stays the
same, and the LCE interpreter computes the Keras model with those kernels rounded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_and_calibrate
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from larq_dybnn.converter import export_and_verify, compare_with_lce, read_operators
from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.converter.flatbuffer import op_histogram
from larq_dybnn.converter.int8 import quantize_hyper_weights, round_hyper_weights
from larq_dybnn.training.data import load_digits
from larq_dybnn.zoo import DyBNNReActNet18, TinyDyBNN


def _int8_weights(flatbuffer: bytes) -> tuple[list, list]:
    """(FC output name, FC weight type) of every FULLY_CONNECTED, and (type, number
    of scales, name of the FC it feeds) of every DEQUANTIZE input."""
    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    subgraph = tree.subgraphs[0]
    fcs, dequantized, feeds = [], [], {}
    for op in subgraph.operators:
        if flatbuffer_utils.opcode_to_name(tree, op.opcodeIndex) == "FULLY_CONNECTED":
            weight = subgraph.tensors[op.inputs[1]]
            fcs.append((subgraph.tensors[op.outputs[0]].name.decode(), weight.type))
            feeds[op.inputs[1]] = subgraph.tensors[op.outputs[0]].name.decode()
    for op in subgraph.operators:
        if flatbuffer_utils.opcode_to_name(tree, op.opcodeIndex) == "DEQUANTIZE":
            stored = subgraph.tensors[op.inputs[0]]
            scales = len(stored.quantization.scale) if stored.quantization and \
                stored.quantization.scale is not None else 0
            assert tree.buffers[stored.buffer].data is not None  # a constant
            dequantized.append((stored.type, scales, feeds.get(op.outputs[0])))
    return fcs, dequantized


# The three tests that use it come first and side by side, so that the test workers
# (which split the suite into runs of neighbouring tests) usually build it once.
@pytest.fixture(scope="module")
def dybnn18(cifar10_test_batch):
    x, _ = cifar10_test_batch
    model = DyBNNReActNet18(input_shape=(32, 32, 3), num_classes=10, width_multiplier=0.25,
                            stem="cifar")
    randomize_and_calibrate(model, x, seed=5)
    return model, export_tflite(model, int8_hyper_weights=False)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_only_hyper_kernels_become_int8(dybnn18, per_channel):
    model, plain = dybnn18
    quantized, info = quantize_hyper_weights(plain, model, per_channel=per_channel)
    # The same float graph, with one DEQUANTIZE per hyper kernel in front of it.
    fcs, dequantized = _int8_weights(quantized)
    assert op_histogram(quantized) == op_histogram(plain) + Counter(DEQUANTIZE=info.tensors)
    assert [op.name for op in read_operators(quantized)[:info.tensors]] == (
        ["DEQUANTIZE"] * info.tensors)
    assert all(kind == schema.TensorType.FLOAT32 for _, kind in fcs)  # float FC ops
    assert len(dequantized) == info.tensors == len(fcs) - 1  # all but the classifier
    fed = {name for _, _, name in dequantized}
    classifier = [name for name, _ in fcs if name not in fed]
    assert len(classifier) == 1
    assert all(kind == schema.TensorType.INT8 for kind, _, _ in dequantized)
    assert all((scales > 1) == per_channel for _, scales, _ in dequantized)
    assert info.tensors > 0 and info.max_relative_error <= 1 / 254 + 1e-6
    # A quarter of the bytes, plus per channel a scale and a zero point (a large share
    # at this small width, where hidden layers have 8 units).
    assert info.int8_bytes < (0.55 if per_channel else 0.26) * info.float32_bytes
    # The file shrinks by most of that (re-serializing adds a few hundred bytes of
    # quantization tables and alignment per tensor).
    assert len(plain) - len(quantized) >= 0.6 * (info.float32_bytes - info.int8_bytes)


def test_the_int8_file_computes_the_rounded_model(dybnn18, cifar10_test_batch):
    """Per channel too: LCE matches Keras with the same rounding, to float rounding."""
    model, plain = dybnn18
    x, _ = cifar10_test_batch
    saved = model.get_weights()
    try:
        for per_channel in (False, True):
            quantized, info = quantize_hyper_weights(plain, model, per_channel=per_channel)
            model.set_weights(saved)
            assert round_hyper_weights(model, per_channel=per_channel) == info.tensors
            parity = compare_with_lce(model, quantized, x)
            assert parity.top1_agreement >= 0.97 and parity.close_fraction >= 0.9, parity
    finally:
        model.set_weights(saved)


def test_trained_model_keeps_its_accuracy_with_int8_hyper_weights(tmp_path):
    # A trained model: in a deep random network any perturbation of a threshold
    # cascades, which says nothing about a real one.
    tf.keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits(seed=0)
    x_train, x_test = (np.repeat(x, 3, axis=-1) for x in (x_train, x_test))
    model = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, reduction=4)
    model.compile(tf.keras.optimizers.Adam(2e-3),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=8, verbose=0)
    report = export_and_verify(model, output_path=tmp_path / "m.tflite", samples=x_test,
                               labels=y_test, samples_source="digits test images",
                               benchmark=False, int8_hyper_weights=True)
    assert report.binary.ok and report.int8 is not None and report.int8.tensors == 10
    assert "hyper weights    int8" in report.format()
    assert report.as_dict()["int8_hyper_weights"]["tensors"] == 10
    assert report.accuracy["keras"] > 0.7
    assert abs(report.accuracy["lce"] - report.accuracy["keras"]) <= 0.02, report.accuracy
    # Parity is against the model with its hyper kernels rounded: what the file
    # computes, so it holds to rounding; the float model is left as it was.
    assert report.parity.top1_agreement >= 0.99, report.parity
    effect = report.int8_effect
    assert effect["top1_agreement"] >= 0.9 and abs(effect["keras_float"] - model.evaluate(
        x_test, y_test, verbose=0, return_dict=True)["accuracy"]) < 1e-6
    assert "int8 rounding    top-1 agreement with the float Keras model" in report.format()
    assert (tmp_path / "m.tflite").stat().st_size == report.size_bytes


def test_models_without_hyper_functions_are_unchanged():
    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1, dynamic=False)
    plain = export_tflite(model)  # the int8 default changes nothing without hyper functions
    assert plain == export_tflite(model, int8_hyper_weights=False)
    quantized, info = quantize_hyper_weights(plain, model)
    assert quantized == plain and info.tensors == 0
    with pytest.raises(ValueError, match="not a valid TFLite model"):
        quantize_hyper_weights(b"TFL3" * 10, model)
    with pytest.raises(TypeError, match="`model` must be a tf.keras.Model"):
        quantize_hyper_weights(plain, "model.keras")


def test_the_layers_grid_is_the_exports_grid():
    from larq_dybnn.converter.int8 import _quantize
    from larq_dybnn.hyper import int8_grid

    rng = np.random.default_rng(3)
    for kernel in (rng.normal(size=(24, 8)).astype(np.float32) * 0.3,
                   np.zeros((4, 4), np.float32), np.float32([[1e-7, -2e-7]])):
        quantized, scale, _ = _quantize(kernel.T, per_channel=False)
        np.testing.assert_array_equal(int8_grid(tf.constant(kernel)).numpy(),
                                      (quantized.astype(np.float32) * scale[0]).T)


def test_training_on_the_int8_grid_makes_the_int8_file_compute_the_model(tmp_path):
    """`simulate_int8_hyper_kernels`: the model computes its int8 file (LCE agrees
    top-1 on every digit and within float rounding), gradients reach the float
    kernels, and the setting survives saving."""
    from larq_dybnn import load_model, simulate_int8_hyper_kernels
    from larq_dybnn.converter import convert, lce_outputs

    (x, y), _ = load_digits()
    model = TinyDyBNN(input_shape=(8, 8, 1), width=16, blocks=2, reduction=4)
    randomize_and_calibrate(model, x[:256], seed=2)
    rounded = tf.keras.models.clone_model(model)
    rounded.set_weights(model.get_weights())
    round_hyper_weights(rounded)
    assert simulate_int8_hyper_kernels(model) == 4
    simulated = model.predict(x, verbose=0)
    np.testing.assert_allclose(simulated, rounded.predict(x, verbose=0), atol=1e-5)
    lce = lce_outputs(convert(model).flatbuffer(), x)  # int8 hyper weights, the default
    assert np.mean(lce.argmax(-1) == simulated.argmax(-1)) == 1.0
    assert np.abs(lce - simulated).max() < 1e-3
    # Straight-through: every hyper kernel gets a gradient.
    kernels = [w for w in model.trainable_weights if "hyper_function" in w.name
               and w.name.split("/")[-1].startswith(("hidden_kernel", "head"))
               and "kernel" in w.name.split("/")[-1]]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x[:32], training=False)))
    gradients = tape.gradient(loss, kernels)
    assert kernels and all(g is not None and np.isfinite(g.numpy()).all() for g in gradients)
    assert any(np.abs(g.numpy()).max() > 0 for g in gradients)
    model.save(tmp_path / "m.keras")
    reloaded = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), simulated, atol=1e-6)
    assert simulate_int8_hyper_kernels(reloaded, enabled=False) == 4
    assert np.abs(reloaded.predict(x, verbose=0) - simulated).max() > 1e-4
