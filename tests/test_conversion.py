"""The conversion contract: binary convs stay LceBconv2d, hyper functions add only
MEAN / FULLY_CONNECTED / SUB, and the real LCE interpreter matches Keras."""

from __future__ import annotations

import collections

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn import DynamicSign
from larq_dybnn.converter import compare_with_lce, read_operators
from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.converter.int8 import round_hyper_weights
from larq_dybnn.zoo import TinyDyBNN

BLOCKS = 3

# Keras and LCE round floats differently, so an activation that lies within rounding
# error of its threshold can binarize the other way and move the logits by a
# fraction of a percent. Tolerances allow such isolated flips, not systematic error.
MAX_DIFF = 1e-2  # relative to the largest logit
MEAN_DIFF = 1e-4


def _expected_histogram(blocks: int, dynamic: bool) -> collections.Counter:
    """Op counts of TinyDyBNN: stem conv (BN folded), blocks, GAP + Dense head."""
    per_block = collections.Counter({"LceQuantize": 1, "LceBconv2d": 1, "ADD": 1})
    if dynamic:
        # DynamicSign: MEAN, FC(+ReLU), FC, SUB. DynamicPReLU: MEAN, FC(+ReLU), FC x2,
        # SUB, PRELU, ADD.
        per_block += collections.Counter(
            {"MEAN": 2, "FULLY_CONNECTED": 5, "SUB": 2, "PRELU": 1, "ADD": 1}
        )
    else:
        per_block += collections.Counter({"SUB": 2, "PRELU": 1, "ADD": 1})
    total = collections.Counter({"CONV_2D": 1, "MEAN": 1, "FULLY_CONNECTED": 1})
    for _ in range(blocks):
        total += per_block
    return total


def _assert_parity(model, flatbuffer, x) -> None:
    parity = compare_with_lce(model, flatbuffer, x)
    scale = max(float(np.abs(model(x, training=False)).max()), 1.0)
    assert parity.samples == len(x)
    assert parity.top1_agreement == 1.0, parity
    assert parity.max_abs_diff <= MAX_DIFF * scale, parity
    assert parity.mean_abs_diff <= MEAN_DIFF * scale, parity


def _count_binary_convs(model: tf.keras.Model) -> int:
    return sum(
        isinstance(layer, lq.layers.QuantConv2D)
        and getattr(layer.input_quantizer, "precision", None) == 1
        and getattr(layer.kernel_quantizer, "precision", None) == 1
        for layer in model.layers
    )


@pytest.fixture(scope="module")
def converted():
    """Randomized TinyDyBNN variants and their flatbuffers, converted once."""
    cache = {}

    def get(dynamic: bool, kernel_quantizer: str, output_bound=None):
        key = (dynamic, kernel_quantizer, output_bound)
        if key not in cache:
            model = TinyDyBNN(
                input_shape=(32, 32, 3), width=32, blocks=BLOCKS, dynamic=dynamic,
                reduction=4, kernel_quantizer=kernel_quantizer, output_bound=output_bound,
            )
            randomize_weights(model, seed=21, scale=0.3)
            cache[key] = (model, export_tflite(model, int8_hyper_weights=False))
        return cache[key]

    return get


@pytest.mark.parametrize("kernel_quantizer", ["magnitude_aware_sign", "ste_sign"])
@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_op_histogram_is_exactly_the_minimal_set(converted, dynamic, kernel_quantizer):
    model, flatbuffer = converted(dynamic, kernel_quantizer)
    operators = read_operators(flatbuffer)
    histogram = collections.Counter(op.name for op in operators)
    assert histogram == _expected_histogram(BLOCKS, dynamic)
    assert histogram["LceBconv2d"] == _count_binary_convs(model) == BLOCKS
    assert "RESHAPE" not in histogram and "STRIDED_SLICE" not in histogram
    fused = [op.fused_activation for op in operators if op.name == "FULLY_CONNECTED"]
    # The first FC of every hyper function has the ReLU fused in.
    assert fused.count("RELU") == (2 * BLOCKS if dynamic else 0)


def test_bounded_hyper_functions_still_give_binary_convs(converted):
    model, flatbuffer = converted(True, "magnitude_aware_sign", 0.5)
    histogram = collections.Counter(op.name for op in read_operators(flatbuffer))
    assert histogram["LceBconv2d"] == _count_binary_convs(model) == BLOCKS
    assert histogram["TANH"] == 3 * BLOCKS  # one per output head
    assert "RESHAPE" not in histogram and "STRIDED_SLICE" not in histogram


@pytest.mark.parametrize("kernel_quantizer", ["magnitude_aware_sign", "ste_sign"])
@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_lce_interpreter_matches_keras_on_random_inputs(converted, dynamic, kernel_quantizer, rng):
    model, flatbuffer = converted(dynamic, kernel_quantizer)
    _assert_parity(model, flatbuffer, rng.normal(size=(32, 32, 32, 3)).astype(np.float32))


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_lce_interpreter_matches_keras_on_cifar10(converted, dynamic, cifar10_test_batch):
    model, flatbuffer = converted(dynamic, "magnitude_aware_sign")
    x, _ = cifar10_test_batch
    assert len(x) == 100
    _assert_parity(model, flatbuffer, x)


def test_trained_model_matches_after_conversion(cifar10_test_batch):
    """After real training steps (trained BN statistics, non-zero hyper outputs)."""
    tf.keras.utils.set_random_seed(3)
    x, y = cifar10_test_batch
    model = TinyDyBNN(input_shape=(32, 32, 3), width=32, blocks=2, reduction=4)
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=50, epochs=3, verbose=0)
    flatbuffer = export_tflite(model, int8_hyper_weights=False)
    histogram = collections.Counter(op.name for op in read_operators(flatbuffer))
    assert histogram == _expected_histogram(2, True)
    parity = compare_with_lce(model, flatbuffer, x)
    assert parity.top1_agreement >= 0.99, parity
    assert parity.mean_abs_diff < 1e-3, parity

    # The default file stores the 10 hyper kernels in int8: one DEQUANTIZE each, the
    # same float ops otherwise, and it computes the model with those kernels rounded.
    default = export_tflite(model)
    assert collections.Counter(op.name for op in read_operators(default)) == (
        histogram + collections.Counter({"DEQUANTIZE": 10}))
    assert len(default) < len(flatbuffer)
    round_hyper_weights(model)
    parity = compare_with_lce(model, default, x)
    assert parity.top1_agreement >= 0.99, parity
    assert parity.mean_abs_diff < 1e-3, parity


def test_dynamic_sign_in_a_plain_functional_model():
    """The contract for a hand-built model, not only the zoo's."""
    inputs = tf.keras.Input((16, 16, 64))
    x = inputs
    for i in range(2):
        x = lq.layers.QuantConv2D(
            64, 3, strides=1 + i, padding="same", pad_values=1.0,
            input_quantizer=DynamicSign(reduction=16), kernel_quantizer="ste_sign",
            kernel_constraint="weight_clip", use_bias=False,
        )(x)
        x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inputs, x)
    randomize_weights(model, seed=4, scale=0.3)
    histogram = collections.Counter(op.name for op in read_operators(export_tflite(model, int8_hyper_weights=False)))
    assert histogram == collections.Counter(
        {"MEAN": 2, "FULLY_CONNECTED": 4, "SUB": 2, "LceQuantize": 2, "LceBconv2d": 2}
    )


@pytest.mark.parametrize("dynamic", ["both", False], ids=["dynamic", "static"])
def test_export_gives_the_bytes_of_lce_convert_keras_model(dynamic):
    """The serving-function SavedModel converts to exactly LCE's own result."""
    import larq_compute_engine as lce

    model = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, dynamic=dynamic)
    randomize_weights(model, seed=3)
    assert export_tflite(model, int8_hyper_weights=False) == lce.convert_keras_model(model)


def test_a_model_with_two_inputs_converts_through_lce_itself():
    first, second = tf.keras.Input((8, 8, 3)), tf.keras.Input((8, 8, 3))
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, use_bias=False,
                              input_quantizer=DynamicSign(reduction=4),
                              kernel_quantizer="ste_sign")(tf.keras.layers.Add()([first, second]))
    model = tf.keras.Model([first, second], tf.keras.layers.GlobalAveragePooling2D()(x))
    ops = collections.Counter(op.name for op in read_operators(export_tflite(model)))
    assert ops["LceBconv2d"] == 1


# The front door: one conversion gives both files, the binary check and the contract.


@pytest.mark.parametrize("dynamic", ["both", False], ids=["dynamic", "static"])
def test_convert_returns_both_files_of_one_conversion(dynamic):
    from larq_dybnn.contract import contract_for, read_contract
    from larq_dybnn.converter import convert

    model = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, dynamic=dynamic, reduction=4)
    randomize_weights(model, seed=5, scale=0.3)
    contract = contract_for("cifar", image_size=8, class_names=[f"c{i}" for i in range(10)])
    conversion = convert(model, contract=contract)
    assert conversion.binary.ok and conversion.binary.lce_bconv2d == 2
    assert conversion.flatbuffer(int8_hyper_weights=False) == conversion.float_flatbuffer
    assert conversion.flatbuffer() == conversion.int8_flatbuffer
    for flatbuffer in (conversion.float_flatbuffer, conversion.int8_flatbuffer):
        assert read_contract(flatbuffer) == contract
    ops = collections.Counter(op.name for op in read_operators(conversion.int8_flatbuffer))
    if dynamic:
        assert conversion.int8.tensors == 10 and ops["DEQUANTIZE"] == 10
        assert len(conversion.int8_flatbuffer) < len(conversion.float_flatbuffer)
    else:
        assert conversion.int8.tensors == 0 and "DEQUANTIZE" not in ops
    # Without the contract the files are what the plain converter returns.
    plain = convert(model)
    assert plain.contract is None
    assert plain.float_flatbuffer == export_tflite(model, int8_hyper_weights=False)
    assert plain.int8_flatbuffer == export_tflite(model)


def test_export_and_verify_takes_a_conversion_of_that_model_only(tmp_path):
    """One conversion for both files: export_and_verify checks and writes the given
    conversion's file, and refuses one of other weights or with another contract."""
    from larq_dybnn.contract import contract_for
    from larq_dybnn.converter import convert, export_and_verify

    model = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, reduction=4)
    randomize_weights(model, seed=5, scale=0.3)
    contract = contract_for("cifar", image_size=8, class_names=[f"c{i}" for i in range(10)])
    conversion = convert(model, contract=contract)
    report = export_and_verify(model, conversion=conversion, output_path=tmp_path / "m.tflite",
                               benchmark=False)
    assert (tmp_path / "m.tflite").read_bytes() == conversion.int8_flatbuffer
    assert report.contract == contract and report.parity.samples == 16
    with pytest.raises(ValueError, match="`contract` differs from the `conversion`'s"):
        export_and_verify(model, conversion=conversion, benchmark=False,
                          contract=contract_for("cifar", image_size=8,
                                                class_names=[str(i) for i in range(10)]))
    # The same architecture and name with other weights, or the model changed since.
    other = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, reduction=4)
    randomize_weights(other, seed=6, scale=0.3)
    randomize_weights(model, seed=7, scale=0.3)
    for changed in (other, model):
        with pytest.raises(ValueError, match="other weights than those of `model`"):
            export_and_verify(changed, conversion=conversion, benchmark=False,
                              output_path=tmp_path / "other.tflite")
    assert not (tmp_path / "other.tflite").exists()
    with pytest.raises(TypeError, match="`conversion` must be a Conversion"):
        export_and_verify(model, conversion=conversion.int8_flatbuffer, benchmark=False)


def test_convert_refuses_a_float_fallback_and_a_contract_of_another_class_count():
    from larq_dybnn.contract import contract_for
    from larq_dybnn.converter import FloatFallbackError, convert

    inputs = tf.keras.Input((8, 8, 16))
    # A 1-bit DoReFa input quantizer is not a sign: LCE keeps the conv in float.
    x = lq.layers.QuantConv2D(
        16, 3, padding="same", pad_values=1.0, name="dorefa_conv",
        input_quantizer=lq.quantizers.DoReFa(k_bit=1, mode="activations"),
        kernel_quantizer="ste_sign")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(FloatFallbackError, match="dorefa_conv"):
        convert(model)
    assert convert(model, allow_float_fallback=True).binary.fell_back
    tiny = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=1, num_classes=10)
    with pytest.raises(ValueError, match="class"):
        convert(tiny, contract=contract_for("cifar", image_size=8, class_names=["a", "b"]))


def test_dynamic_layers_of_a_nested_model_are_found_and_stored_in_int8():
    from larq_dybnn.converter import convert
    from larq_dybnn.converter.int8 import hyper_layers
    from larq_dybnn.scan import dynamic_layers

    inner = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, dynamic="both", reduction=4)
    randomize_weights(inner, seed=6, scale=0.3)
    outer = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), inner])
    found = dynamic_layers(outer)
    assert len(found.signs) == 2 and len(found.prelus) == 2
    assert {found.owner(layer) for layer in found.signs + found.prelus} == {inner.name}
    assert hyper_layers(outer) == hyper_layers(inner) == found.sign_names | found.prelu_names
    assert convert(outer).int8.tensors == convert(inner).int8.tensors == 10
    static = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=2, dynamic=False)
    assert not dynamic_layers(static).signs
    assert len(dynamic_layers(static, active_only=False).signs) == 2
    with pytest.raises(TypeError, match="`model` must be a tf.keras.Model"):
        dynamic_layers(static.layers[1])
