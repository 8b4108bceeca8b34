"""ReActNet recipe pieces: schedule, weight decay, distribution loss, distillation,
and the loud step-1 -> step-2 weight transfer."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn.training import data, preprocessing
from larq_dybnn.training.recipe import (
    DistributionLoss,
    Distiller,
    add_conv_weight_decay,
    linear_decay,
    linear_decay_adam,
    transfer_weights,
)
from larq_dybnn.zoo import DyBNNReActNet18, ReActNet18, TinyDyBNN

CIFAR = dict(input_shape=(32, 32, 3), num_classes=10, width_multiplier=0.25, stem="cifar")


def test_linear_decay_to_zero():
    schedule = linear_decay(learning_rate=1e-3, total_steps=100)
    assert isinstance(linear_decay_adam(learning_rate=1e-3, total_steps=100),
                      tf.keras.optimizers.Adam)
    assert [round(float(schedule(s)), 8) for s in (0, 50, 100, 150)] == [1e-3, 5e-4, 0.0, 0.0]
    with pytest.raises(ValueError, match="`total_steps`"):
        linear_decay_adam(learning_rate=1e-3, total_steps=0)


def test_weight_decay_only_on_conv_kernels():
    model = DyBNNReActNet18(**CIFAR)
    count = add_conv_weight_decay(model, weight_decay=1e-5)
    kernels = [w for w in model.trainable_weights
               if len(w.shape) == 4 and "hyper_function" not in w.name]
    assert count == len(kernels) == 1 + 16 + 3  # stem, binary convs, shortcut convs
    expected = 0.5 * 1e-5 * sum(float(tf.reduce_sum(k**2)) for k in kernels)
    assert float(tf.add_n(model.losses)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="`weight_decay`"):
        add_conv_weight_decay(model, weight_decay=-1.0)


def test_distribution_loss_matches_the_formula(rng):
    teacher = rng.normal(size=(5, 7)).astype(np.float32)
    student = rng.normal(size=(5, 7)).astype(np.float32)
    p = np.exp(teacher) / np.exp(teacher).sum(-1, keepdims=True)
    log_q = student - np.log(np.exp(student).sum(-1, keepdims=True))
    expected = np.mean(-(p * log_q).sum(-1))
    assert float(DistributionLoss()(teacher, student)) == pytest.approx(expected, rel=1e-5)
    # A confident teacher makes it the cross-entropy with the teacher's classes.
    sharp = 100.0 * np.eye(7, dtype=np.float32)[[0, 3, 6, 1, 2]]
    ce = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert float(DistributionLoss()(sharp, student)) == pytest.approx(
        float(ce([0, 3, 6, 1, 2], student)), rel=1e-4)


def test_distiller_trains_the_student_only():
    tf.keras.utils.set_random_seed(0)
    digits = data.load("digits", split="train")
    # No augmentation: CIFAR's pad-4 crop would shift an 8x8 digit by half its size.
    batches = preprocessing.pipeline(digits, training=False, batch_size=64, image_size=8).shuffle(8)
    teacher = tf.keras.Sequential([
        tf.keras.Input((8, 8, 3)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(10)])
    # A confident teacher: the distribution loss cannot fall below its entropy.
    teacher.compile(tf.keras.optimizers.Adam(0.01),
                    tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(batches, epochs=20, verbose=0)
    student = TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1, reduction=4)
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    distiller = Distiller(student, teacher)
    distiller.compile(linear_decay_adam(learning_rate=2e-3, total_steps=5 * 23),
                      metrics=["accuracy"])
    history = distiller.fit(batches, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert "accuracy" in history.history
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(teacher_before, teacher.weights))
    evaluation = distiller.evaluate(preprocessing.pipeline(data.load("digits", split="test"),
                                                  training=False, batch_size=64, image_size=8),
                                    verbose=0, return_dict=True)
    assert evaluation["accuracy"] > 0.5  # chance: 0.1
    with pytest.raises(ValueError, match="`teacher` has 10 outputs but `student` has 3"):
        Distiller(TinyDyBNN(input_shape=(8, 8, 3), num_classes=3, blocks=1), teacher)


def test_step1_to_step2_transfer(rng):
    step1 = DyBNNReActNet18(binary_weights=False, **CIFAR)
    randomize_weights(step1, seed=3)
    step2 = DyBNNReActNet18(**CIFAR)
    assert transfer_weights(step1, step2) == len(step2.weights)
    for a, b in zip(step1.weights, step2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    conv = step2.get_layer("stage2_block1_conv")
    assert conv.kernel_quantizer is not None  # binary in step 2, same latent weights


def test_transfer_fails_loudly():
    static, dybnn = ReActNet18(**CIFAR), DyBNNReActNet18(**CIFAR)
    with pytest.raises(ValueError, match="in the target but not the source") as error:
        transfer_weights(static, dybnn)
    assert "head0_kernel" in str(error.value)  # the hyper-function weights
    with pytest.raises(ValueError, match="with different shapes"):
        transfer_weights(static, ReActNet18(**{**CIFAR, "width_multiplier": 0.5}))
    with pytest.raises(ValueError, match="in the source but not the target"):
        transfer_weights(dybnn, static)
