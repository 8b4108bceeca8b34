"""DynamicSign: forward pass, gradients, RSign equivalence, config and bad input."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn import DynamicSign


def _built(quantizer: DynamicSign, shape=(4, 6, 6, 16), seed=0) -> DynamicSign:
    quantizer(tf.zeros(shape))
    randomize_weights(quantizer, seed=seed)
    return quantizer


def test_outputs_are_binary_and_keep_the_shape(rng):
    q = _built(DynamicSign(reduction=4))
    x = rng.normal(size=(4, 6, 6, 16)).astype(np.float32)
    y = q(x).numpy()
    assert y.shape == x.shape
    assert set(np.unique(y)) <= {-1.0, 1.0}


def test_threshold_starts_at_zero(rng):
    q = DynamicSign(reduction=4)
    x = rng.normal(size=(3, 5, 5, 16)).astype(np.float32)
    np.testing.assert_array_equal(q.thresholds(x), np.zeros((3, 1, 1, 16)))
    np.testing.assert_array_equal(q(x), np.where(x >= 0, 1.0, -1.0))


def test_threshold_is_static_plus_hyper_function(rng):
    q = _built(DynamicSign(reduction=4, min_hidden=2))
    x = rng.normal(size=(4, 6, 6, 16)).astype(np.float32)
    h = q.hyper
    pooled = x.mean(axis=(1, 2))
    hidden = np.maximum(pooled @ h.hidden_kernel.numpy() + h.hidden_bias.numpy(), 0)
    expected = q.threshold.numpy() + hidden @ h.head_kernels[0].numpy() + h.head_biases[0].numpy()
    np.testing.assert_allclose(q.thresholds(x).numpy()[:, 0, 0], expected, rtol=1e-5, atol=1e-5)
    assert h.hidden == 4  # max(16 // 4, 2)
    # Samples get different thresholds: the point of DyBNN.
    assert np.ptp(expected, axis=0).min() > 0
    np.testing.assert_array_equal(q(x), np.where(x - expected[:, None, None] >= 0, 1.0, -1.0))


def test_min_hidden_floors_the_hidden_width():
    q = DynamicSign(reduction=16, min_hidden=8)
    q(tf.zeros((1, 2, 2, 32)))
    assert q.hyper.hidden == 8
    assert q.hyper_macs_per_sample() == 32 * 8 * 2


@pytest.mark.parametrize("estimator", ["approx_sign", "ste_sign"])
def test_static_mode_equals_rsign_forward_and_backward(estimator, rng):
    """dynamic_threshold=False is ReActNet's RSign: sign(x + bias), bias = -b."""
    q = DynamicSign(dynamic_threshold=False, estimator=estimator)
    x = tf.constant(rng.normal(size=(2, 4, 4, 8)).astype(np.float32))
    q(x)
    bias = rng.normal(scale=0.5, size=(8,)).astype(np.float32)
    q.threshold.assign(-bias)
    assert q.hyper is None and len(q.weights) == 1

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = q(x)
        shifted = x + bias
        if estimator == "approx_sign":
            reference = lq.quantizers.approx_sign(shifted)
        else:
            reference = lq.quantizers.ste_sign(shifted, clip_value=1.0)
        ours_loss = tf.reduce_sum(ours * tf.range(1.0, 9.0))
        reference_loss = tf.reduce_sum(reference * tf.range(1.0, 9.0))
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(tape.gradient(ours_loss, x), tape.gradient(reference_loss, x))
    # Hand-written ApproxSign / STE window: gradient only where |x + bias| <= 1.
    grad = tape.gradient(ours_loss, x).numpy()
    s = shifted.numpy()
    window = np.abs(s) <= 1.0
    weight = np.broadcast_to(np.arange(1.0, 9.0), s.shape)
    slope = 2 - 2 * np.abs(s) if estimator == "approx_sign" else np.ones_like(s)
    np.testing.assert_allclose(grad, np.where(window, slope * weight, 0.0), rtol=1e-6)
    # The threshold's gradient is minus the input's, summed over batch and pixels.
    np.testing.assert_allclose(
        tape.gradient(ours_loss, q.threshold), -grad.sum(axis=(0, 1, 2)), rtol=1e-5
    )


@pytest.mark.parametrize("estimator", ["approx_sign", "ste_sign"])
def test_gradients_reach_hyper_weights_threshold_and_input(estimator, rng):
    q = _built(DynamicSign(reduction=4, estimator=estimator), seed=3)
    randomize_weights(q, seed=3, scale=0.2)
    # Inputs inside the estimator's window around the threshold.
    x = tf.constant(rng.uniform(-0.5, 0.5, size=(4, 6, 6, 16)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(q(x) * tf.constant(rng.normal(size=(4, 6, 6, 16)), tf.float32))
    grads = tape.gradient(loss, [x, *q.trainable_weights])
    names = ["input"] + [w.name for w in q.trainable_weights]
    assert len(q.trainable_weights) == 5
    for name, grad in zip(names, grads):
        assert grad is not None, name
        assert np.abs(grad.numpy()).sum() > 0, f"no gradient reaches {name}"


def test_input_gradient_vanishes_outside_the_window():
    q = DynamicSign(dynamic_threshold=False, estimator="ste_sign", clip_value=0.5)
    x = tf.constant([[0.2, -0.3, 0.7, -2.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = q(x)
    np.testing.assert_array_equal(tape.gradient(y, x), [[1.0, 1.0, 0.0, 0.0]])


def test_output_bound_limits_the_dynamic_term(rng):
    q = _built(DynamicSign(reduction=4, output_bound=0.3))
    randomize_weights(q, scale=1.0)
    x = rng.normal(scale=3.0, size=(8, 4, 4, 16)).astype(np.float32)
    dynamic_part = q.thresholds(x).numpy()[:, 0, 0] - q.threshold.numpy()
    assert np.abs(dynamic_part).max() <= 0.3 + 1e-6
    assert np.abs(dynamic_part).max() > 0.1
    hidden = np.maximum(x.mean(axis=(1, 2)) @ q.hyper.hidden_kernel.numpy()
                        + q.hyper.hidden_bias.numpy(), 0)
    unbounded = hidden @ q.hyper.head_kernels[0].numpy() + q.hyper.head_biases[0].numpy()
    np.testing.assert_allclose(dynamic_part, 0.3 * np.tanh(unbounded), atol=1e-5)


def test_outputs_are_batch_independent(rng):
    q = _built(DynamicSign(reduction=4))
    x = rng.normal(size=(5, 6, 6, 16)).astype(np.float32)
    together = q(x).numpy()
    for i in range(5):
        np.testing.assert_array_equal(q(x[i : i + 1]).numpy()[0], together[i])


def test_works_with_unknown_batch_size_in_quant_conv2d():
    inputs = tf.keras.Input((8, 8, 16))
    assert inputs.shape[0] is None
    y = lq.layers.QuantConv2D(
        16, 3, padding="same", pad_values=1.0, input_quantizer=DynamicSign(reduction=4),
        kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
    )(inputs)
    model = tf.keras.Model(inputs, y)
    assert model.output_shape == (None, 8, 8, 16)
    for batch in (1, 3):
        assert model(np.zeros((batch, 8, 8, 16), np.float32)).shape == (batch, 8, 8, 16)


@pytest.mark.parametrize("alias", ["dynamic_sign", "DynamicSign"])
def test_string_alias_in_quant_conv2d(alias):
    layer = lq.layers.QuantConv2D(
        8, 3, input_quantizer=alias, kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
    )
    assert isinstance(layer.input_quantizer, DynamicSign)
    assert layer.input_quantizer.precision == 1
    layer(tf.zeros((1, 5, 5, 8)))
    assert any("threshold" in w.name for w in layer.weights)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"dynamic_threshold": False},
        {"reduction": 2, "min_hidden": 3, "output_bound": 1.5, "estimator": "ste_sign",
         "clip_value": 0.8, "hyper_regularizer": "l2", "name": "named"},
    ],
)
def test_config_round_trip(kwargs, rng):
    q = DynamicSign(**kwargs)
    x = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)
    q(x)
    randomize_weights(q)
    clone = DynamicSign.from_config(q.get_config())
    assert clone.get_config() == q.get_config()
    clone(x)
    clone.set_weights(q.get_weights())
    np.testing.assert_array_equal(clone(x), q(x))
    serialized = lq.quantizers.serialize(q)
    assert isinstance(lq.quantizers.get(serialized), DynamicSign)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"reduction": 0}, "reduction"),
        ({"reduction": -4}, "reduction"),
        ({"reduction": 2.5}, "reduction"),
        ({"min_hidden": 0}, "min_hidden"),
        ({"output_bound": -1.0}, "output_bound"),
        ({"estimator": "swish"}, "estimator"),
        ({"clip_value": 0}, "clip_value"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        DynamicSign(**kwargs)


def test_dynamic_mode_rejects_non_4d_input_naming_the_layer():
    with pytest.raises(ValueError, match=r"'my_sign' needs a 4-D NHWC input"):
        DynamicSign(name="my_sign")(tf.zeros((2, 16)))


def test_quant_dense_input_needs_static_mode():
    dense = lq.layers.QuantDense(
        4, input_quantizer=DynamicSign(), kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip", name="head_dense",
    )
    with pytest.raises(ValueError, match="QuantDense") as error:
        dense(tf.zeros((2, 16)))
    assert "head_dense" in str(error.value)
    static = lq.layers.QuantDense(
        4, input_quantizer=DynamicSign(dynamic_threshold=False),
        kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
    )
    assert static(tf.ones((2, 16))).shape == (2, 4)
