"""DyBNN models train with model.fit, and Larq's flip-ratio metric keeps working."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_dybnn import DynamicSign
from larq_dybnn.zoo import TinyDyBNN


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_a_few_steps_reduce_the_loss(dynamic, cifar10_test_batch):
    tf.keras.utils.set_random_seed(0)
    x, y = cifar10_test_batch
    model = TinyDyBNN(input_shape=(32, 32, 3), width=16, blocks=2, dynamic=dynamic, reduction=4)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(tf.keras.optimizers.Adam(3e-3), loss)

    def training_loss():  # batch statistics, as during fit
        return float(loss(y, model(x, training=True)))

    before = training_loss()
    model.fit(x, y, batch_size=50, epochs=15, verbose=0, shuffle=False)
    after = training_loss()
    assert after < 0.8 * before, (before, after)


def test_hyper_function_weights_change_during_training(cifar10_test_batch):
    tf.keras.utils.set_random_seed(1)
    x, y = cifar10_test_batch
    model = TinyDyBNN(input_shape=(32, 32, 3), width=16, blocks=1, reduction=4)
    hyper_weights = [w for w in model.weights if "hyper_function" in w.name]
    before = [w.numpy().copy() for w in hyper_weights]
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=50, epochs=2, verbose=0)
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, hyper_weights)]
    assert len(hyper_weights) == 4 + 6 and all(changed)


def test_flip_ratio_metric_keeps_working(cifar10_test_batch):
    """Kernel flip ratios are still reported next to DynamicSign input quantizers.

    ste_sign kernels: Larq's FlipRatio casts values to int8, so it always reads 0 for
    magnitude_aware_sign kernels (whose values are +-mean|W|), with or without DyBNN.
    """
    x, y = cifar10_test_batch
    with lq.context.metrics_scope(["flip_ratio"]):
        inputs = tf.keras.Input((32, 32, 3))
        h = tf.keras.layers.Conv2D(16, 3, strides=2)(inputs)
        for _ in range(2):
            h = lq.layers.QuantConv2D(
                16, 3, padding="same", pad_values=1.0,
                input_quantizer=DynamicSign(reduction=4),
                kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
            )(h)
            h = tf.keras.layers.BatchNormalization()(h)
        h = tf.keras.layers.GlobalAveragePooling2D()(h)
        model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(h))
    model.compile(
        tf.keras.optimizers.Adam(0.05),  # large steps, so that binary weights flip
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(x, y, batch_size=25, epochs=2, verbose=0)
    flip_keys = [k for k in history.history if k.startswith("flip_ratio")]
    assert len(flip_keys) == 2, history.history.keys()
    for key in flip_keys:
        assert 0.0 < history.history[key][-1] <= 1.0
