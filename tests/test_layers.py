"""DynamicPReLU: formula, RPReLU equivalence, gradients, config and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn import DynamicPReLU, DynamicSign


def _prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, alpha * x)


def test_initially_a_plain_prelu_with_slope_quarter(rng):
    layer = DynamicPReLU(reduction=4)
    x = rng.normal(size=(3, 5, 5, 16)).astype(np.float32)
    np.testing.assert_allclose(layer(x), _prelu(x, 0.25), rtol=1e-6)
    assert layer.alpha.shape == (1, 1, 16)


def test_formula_with_dynamic_shifts(rng):
    layer = DynamicPReLU(reduction=4, min_hidden=2)
    x = rng.normal(size=(4, 6, 6, 16)).astype(np.float32)
    layer(x)
    randomize_weights(layer, seed=5)
    h = layer.hyper
    hidden = np.maximum(x.mean(axis=(1, 2)) @ h.hidden_kernel.numpy() + h.hidden_bias.numpy(), 0)
    gamma = layer.gamma.numpy() + hidden @ h.head_kernels[0].numpy() + h.head_biases[0].numpy()
    zeta = layer.zeta.numpy() + hidden @ h.head_kernels[1].numpy() + h.head_biases[1].numpy()
    expected = _prelu(x - gamma[:, None, None], layer.alpha.numpy()) + zeta[:, None, None]
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
    computed_gamma, computed_zeta = layer.shifts(x)
    np.testing.assert_allclose(computed_gamma.numpy()[:, 0, 0], gamma, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(computed_zeta.numpy()[:, 0, 0], zeta, rtol=1e-5, atol=1e-5)
    assert np.ptp(gamma, axis=0).min() > 0 and np.ptp(zeta, axis=0).min() > 0
    assert layer.hyper_macs_per_sample() == 16 * 4 * 3


def test_static_mode_equals_rprelu(rng):
    """ReActNet's RPReLU: x + move1 -> PReLU -> + move2, PReLU from Keras."""
    layer = DynamicPReLU(dynamic_shifts=False)
    x = tf.constant(rng.normal(size=(2, 5, 5, 8)).astype(np.float32))
    layer(x)
    move1 = rng.normal(size=(8,)).astype(np.float32)
    move2 = rng.normal(size=(8,)).astype(np.float32)
    slope = rng.uniform(0.05, 0.5, size=(1, 1, 8)).astype(np.float32)
    layer.set_weights([slope, -move1, move2])
    keras_prelu = tf.keras.layers.PReLU(shared_axes=[1, 2])
    keras_prelu(x)
    keras_prelu.set_weights([slope])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = layer(x)
        reference = keras_prelu(x + move1) + move2
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(tape.gradient(ours, x), tape.gradient(reference, x))
    assert layer.hyper is None and len(layer.weights) == 3


def test_static_mode_accepts_2d_input():
    layer = DynamicPReLU(dynamic_shifts=False)
    x = tf.constant([[-1.0, 2.0], [3.0, -4.0]])
    np.testing.assert_allclose(layer(x), [[-0.25, 2.0], [3.0, -1.0]])


def test_gradients_reach_every_weight_and_the_input(rng):
    layer = DynamicPReLU(reduction=4)
    x = tf.constant(rng.normal(size=(4, 6, 6, 16)).astype(np.float32))
    layer(x)
    randomize_weights(layer, seed=2, scale=0.3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) * rng.normal(size=(4, 6, 6, 16)).astype(np.float32))
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    assert len(layer.trainable_weights) == 3 + 6
    for name, grad in zip(["input"] + [w.name for w in layer.trainable_weights], grads):
        assert grad is not None and np.abs(grad.numpy()).sum() > 0, name


@pytest.mark.parametrize(
    "make",
    [
        lambda: DynamicSign(reduction=4),
        lambda: DynamicSign(reduction=4, output_bound=0.5),
        lambda: DynamicPReLU(reduction=4),
        lambda: DynamicPReLU(reduction=4, output_bound=0.5),
    ],
    ids=["sign", "sign-bounded", "prelu", "prelu-bounded"],
)
def test_outputs_are_batch_independent(make, rng):
    layer = make()
    x = rng.normal(size=(6, 5, 5, 16)).astype(np.float32)
    layer(x)
    randomize_weights(layer, seed=9)
    together = layer(x).numpy()
    alone = np.concatenate([layer(x[i : i + 1]).numpy() for i in range(len(x))])
    np.testing.assert_allclose(alone, together, rtol=0, atol=1e-6)
    # Swapping the other samples changes nothing for sample 0.
    other = np.concatenate([x[:1], rng.normal(size=(3, 5, 5, 16)).astype(np.float32) * 10])
    np.testing.assert_allclose(layer(other).numpy()[0], together[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"dynamic_shifts": False},
     {"reduction": 2, "min_hidden": 1, "output_bound": 2.0, "hyper_regularizer": "l2"}],
)
def test_config_round_trip(kwargs, rng):
    layer = DynamicPReLU(**kwargs)
    x = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)
    layer(x)
    randomize_weights(layer)
    clone = DynamicPReLU.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), layer(x))
    assert isinstance(tf.keras.layers.deserialize(tf.keras.layers.serialize(layer)), DynamicPReLU)


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"reduction": 0}, "reduction"), ({"min_hidden": -1}, "min_hidden"),
     ({"output_bound": 0}, "output_bound")],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        DynamicPReLU(**kwargs)


def test_dynamic_mode_rejects_non_4d_input_naming_the_layer():
    with pytest.raises(ValueError, match=r"'act' needs a 4-D NHWC input"):
        DynamicPReLU(name="act")(tf.zeros((2, 3, 16)))


def test_unknown_channels_are_rejected():
    with pytest.raises(ValueError, match="known number of channels"):
        DynamicPReLU(name="act").build(tf.TensorShape([None, 4, 4, None]))
