"""`ScaledStepAdam` is Adam at `multiplier` times the rate for the chosen variables and
plain Adam for the others; `hyper_weights` finds the hyper functions' variables."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from larq_dybnn import dynamize, hyper_weights
from larq_dybnn.training.optimizers import ScaledStepAdam
from larq_dybnn.training.recipe import linear_decay, linear_decay_adam
from larq_dybnn.zoo import ReActNet18, TinyDyBNN


@pytest.mark.parametrize("multiplier", [0.25, 10.0])
def test_scaled_variables_follow_adam_at_the_multiplied_rate(multiplier):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(2, 5)).astype(np.float32)
    scaled, plain = tf.Variable(start[0]), tf.Variable(start[1])
    optimizer = ScaledStepAdam(linear_decay(learning_rate=1e-2, total_steps=8),
                               multiplier=multiplier, scaled_variables=[scaled])
    # The references: one Adam per rate, each with its own copy of the variables.
    fast = tf.Variable(start[0])
    reference_fast = tf.keras.optimizers.Adam(
        linear_decay(learning_rate=1e-2 * multiplier, total_steps=8))
    slow = tf.Variable(start[1])
    reference_slow = tf.keras.optimizers.Adam(linear_decay(learning_rate=1e-2, total_steps=8))
    for _ in range(6):
        g = rng.normal(size=(2, 5)).astype(np.float32) * rng.uniform(0.01, 100)
        optimizer.apply_gradients([(g[0], scaled), (g[1], plain)])
        reference_fast.apply_gradients([(g[0], fast)])
        reference_slow.apply_gradients([(g[1], slow)])
    assert optimizer.scaled_count == 1
    np.testing.assert_allclose(scaled.numpy(), fast.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(plain.numpy(), slow.numpy())
    assert not np.allclose(scaled.numpy(), start[0])  # it did train


def test_in_a_compiled_model_only_the_hyper_functions_get_the_larger_steps():
    """One `fit` step from the same weights and batch, with and without a multiplier:
    the other weights take the same step, the hyper functions' steps are 10x."""
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 3)).astype(np.float32)
    y = np.arange(16) % 10
    steps = {}
    for multiplier in (1.0, 10.0):
        tf.keras.utils.set_random_seed(3)
        model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1, reduction=4)
        # Non-zero hyper outputs, so that every hyper weight has a gradient.
        for variable in hyper_weights(model):
            variable.assign(np.random.default_rng(2).normal(
                size=variable.shape, scale=0.1).astype(np.float32))
        before = [v.numpy() for v in model.trainable_variables]
        optimizer = linear_decay_adam(learning_rate=1e-3, total_steps=10,
                                      scaled_variables=hyper_weights(model),
                                      multiplier=multiplier)
        model.compile(optimizer, tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        steps[multiplier] = {v.name: v.numpy() - b
                             for v, b in zip(model.trainable_variables, before)}
        hyper = {v.name for v in hyper_weights(model)}
    assert hyper and set(steps[1.0]) > hyper
    for name, step in steps[1.0].items():
        expected = 10.0 * step if name in hyper else step
        np.testing.assert_allclose(steps[10.0][name], expected, rtol=1e-4, atol=1e-9,
                                   err_msg=name)


@pytest.mark.parametrize("dynamic", [True, False])
def test_hyper_weights_are_the_hyper_functions_variables(dynamic):
    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1, dynamic=dynamic)
    found = hyper_weights(model)
    named = [v for v in model.trainable_variables if "/hyper_function/" in v.name]
    assert [v.name for v in found] == [v.name for v in named]
    assert bool(found) == dynamic


def test_hyper_weights_of_a_dynamized_zoo_model():
    static = ReActNet18(input_shape=(32, 32, 3), num_classes=10, stem="cifar",
                        width_multiplier=0.25)
    assert hyper_weights(static) == []
    twin = dynamize(static)
    # 16 DynamicSign (hidden + 1 head: 4 variables) and 16 DynamicPReLU (hidden + 2 heads: 6).
    assert len(hyper_weights(twin)) == 16 * 4 + 16 * 6


def test_plain_adam_unless_something_is_scaled_and_bad_multipliers():
    variable = tf.Variable([1.0])
    assert type(linear_decay_adam(learning_rate=1e-3, total_steps=5)) is tf.keras.optimizers.Adam
    assert type(linear_decay_adam(learning_rate=1e-3, total_steps=5, multiplier=1.0,
                                  scaled_variables=[variable])) is tf.keras.optimizers.Adam
    assert isinstance(linear_decay_adam(learning_rate=1e-3, total_steps=5, multiplier=3.0,
                                        scaled_variables=[variable]), ScaledStepAdam)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="`multiplier` must be a positive"):
            ScaledStepAdam(1e-3, multiplier=bad, scaled_variables=[variable])


def test_a_model_saved_and_loaded_keeps_scaling_its_hyper_functions(tmp_path):
    """`model.save` keeps the optimizer; the loaded one finds the scaled variables by
    name and the next step is the one the original optimizer takes."""
    x = np.random.default_rng(4).normal(size=(16, 8, 8, 3)).astype(np.float32)
    y = np.arange(16) % 10
    tf.keras.utils.set_random_seed(5)
    model = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1, reduction=4)
    model.compile(ScaledStepAdam(1e-3, multiplier=10.0, scaled_variables=hyper_weights(model)),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = tf.keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, ScaledStepAdam)
    assert loaded.optimizer.multiplier == 10.0
    assert loaded.optimizer.scaled_count == len(hyper_weights(model)) > 0
    for each in (model, loaded):
        each.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for original, restored in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(restored.numpy(), original.numpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=original.name)


def test_scaled_variable_names_that_match_no_variable_or_come_with_variables_are_refused():
    variable = tf.Variable(np.zeros(3, np.float32), name="kernel")
    with pytest.raises(ValueError, match="not both"):
        ScaledStepAdam(multiplier=2.0, scaled_variables=[variable],
                       scaled_variable_names=["kernel:0"])
    with pytest.raises(ValueError, match="sequence of names"):
        ScaledStepAdam(multiplier=2.0, scaled_variable_names="kernel:0")
    optimizer = ScaledStepAdam(multiplier=2.0, scaled_variable_names=["bias:0"])
    with pytest.raises(ValueError, match=r"`scaled_variable_names`: 'bias:0' matches no variable"):
        optimizer.build([variable])
    twins = [tf.Variable(np.zeros(3, np.float32), name="w") for _ in range(2)]
    optimizer = ScaledStepAdam(multiplier=2.0, scaled_variable_names=[twins[0].name])
    with pytest.raises(ValueError, match="matches 2 variables"):
        optimizer.build(twins)
    optimizer = ScaledStepAdam(multiplier=2.0, scaled_variable_names=["kernel:0"])
    optimizer.build([variable])
    assert optimizer.scaled_count == 1
    assert optimizer.get_config()["scaled_variable_names"] == ["kernel:0"]
