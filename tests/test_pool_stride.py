"""`pool_stride`: the hyper functions pool a stride-2 subsample of each map (cheaper on
ARM). It must compute that pooling, save and load, and convert to LCE with every binary
convolution binary and the same outputs."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn import DynamicPReLU, DynamicSign, HyperFunction
from larq_dybnn.zoo import DyBNNReActNet18


def test_the_hyper_function_pools_every_second_row_and_column(rng):
    x = rng.normal(size=(2, 5, 6, 8)).astype(np.float32)
    hyper = HyperFunction(reduction=2, min_hidden=2, pool_stride=2,
                          output_initializer="ones")
    (out,) = hyper(x)
    pooled = x[:, ::2, ::2, :].mean(axis=(1, 2))
    hidden = np.maximum(pooled @ hyper.hidden_kernel.numpy() + hyper.hidden_bias.numpy(), 0)
    expected = hidden @ hyper.head_kernels[0].numpy() + hyper.head_biases[0].numpy()
    np.testing.assert_allclose(out.numpy()[:, 0, 0, :], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="pool_stride"):
        HyperFunction(pool_stride=0)


@pytest.mark.parametrize("layer", [DynamicSign, DynamicPReLU])
def test_the_layers_keep_pool_stride_in_their_config(layer):
    made = layer(reduction=4, pool_stride=2)
    assert made.hyper.pool_stride == 2
    again = layer.from_config(made.get_config())
    assert again.hyper.pool_stride == 2
    assert layer.from_config({**made.get_config(), "pool_stride": 1}).hyper.pool_stride == 1


def test_the_zoo_option_reaches_every_hyper_function():
    model = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                            num_classes=10, hyper_pool_stride=2)
    strides = [layer.hyper.pool_stride for layer in model.layers
               if isinstance(layer, DynamicPReLU)]
    strides += [layer.input_quantizer.hyper.pool_stride for layer in model.layers
                if isinstance(getattr(layer, "input_quantizer", None), DynamicSign)]
    assert len(strides) == 32 and set(strides) == {2}


def test_stride_2_pooling_converts_exactly(tmp_path, rng):
    import larq as lq

    from larq_dybnn.converter import convert, lce_outputs
    from larq_dybnn.converter.flatbuffer import read_operators

    inputs = tf.keras.Input((16, 16, 32))
    x = inputs
    for i in range(2):
        x = lq.layers.QuantConv2D(
            32, 3, padding="same", pad_values=1.0, use_bias=False,
            input_quantizer=DynamicSign(reduction=4, pool_stride=2),
            kernel_quantizer="magnitude_aware_sign", kernel_constraint="weight_clip")(x)
        x = tf.keras.layers.BatchNormalization()(x)
        x = DynamicPReLU(reduction=4, pool_stride=2)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))
    randomize_weights(model, seed=3, scale=0.3)
    conversion = convert(model)
    assert conversion.binary.ok
    ops = collections.Counter(op.name for op in read_operators(conversion.float_flatbuffer))
    assert ops["STRIDED_SLICE"] == 4 and ops["MEAN"] == 5  # per hyper function, + the head
    x = rng.normal(size=(4, 16, 16, 32)).astype(np.float32)
    expected = model(x, training=False).numpy()
    got = lce_outputs(conversion.float_flatbuffer, x)
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
    assert np.max(np.abs(got - expected)) < 1e-5 * np.max(np.abs(expected))
    path = tmp_path / "m.keras"
    model.save(path)
    from larq_dybnn.loading import load_model

    np.testing.assert_array_equal(load_model(path)(x, training=False).numpy(), expected)


def test_train_takes_the_option_for_zoo_dybnn_models_only(tmp_path):
    from larq_dybnn.training import TrainConfig
    from larq_dybnn.training.config import check_config

    check_config(TrainConfig(model="dybnn-reactnet-18", hyper_pool_stride=2))
    with pytest.raises(ValueError, match="`hyper_pool_stride` applies to the zoo DyBNN"):
        check_config(TrainConfig(model="reactnet-18", hyper_pool_stride=2))
