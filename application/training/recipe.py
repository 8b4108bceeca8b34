"""Pieces of ReActNet's two-step training recipe.

Step 1 trains binary activations with real-valued weights (`binary_weights=False` in
the zoo) and weight decay on the conv kernels; step 2 trains the fully binary model,
initialized from step 1 by `transfer_weights`, without weight decay. Both use Adam with
the learning rate decayed linearly to 0 and the distribution loss against a
real-valued teacher (`Distiller`), or cross-entropy without a teacher.

References:
    - [Liu et al., ReActNet, ECCV 2020](https://arxiv.org/abs/2003.03488) and its
      official code (github.com/liuzechun/ReActNet).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from larq_dybnn import _checks
from larq_dybnn.training.optimizers import ScaledStepAdam

__all__ = [
    "linear_decay",
    "linear_decay_adam",
    "add_conv_weight_decay",
    "DistributionLoss",
    "SmoothedCrossentropy",
    "Distiller",
    "transfer_weights",
]


def linear_decay(
    *, learning_rate: float, total_steps: int
) -> tf.keras.optimizers.schedules.LearningRateSchedule:
    """A learning rate falling linearly from `learning_rate` to 0 over `total_steps`.

    Raises:
        ValueError: for a non-positive `learning_rate` or `total_steps`.
    """
    if _checks.optional_positive_float("learning_rate", learning_rate) is None:
        raise ValueError("`learning_rate` must be a positive number, got None.")
    total_steps = _checks.positive_int("total_steps", total_steps)
    return tf.keras.optimizers.schedules.PolynomialDecay(
        learning_rate, total_steps, end_learning_rate=0.0, power=1.0
    )


def linear_decay_adam(
    *, learning_rate: float, total_steps: int, scaled_variables: Sequence[tf.Variable] = (),
    multiplier: float = 1.0,
) -> tf.keras.optimizers.Adam:
    """Adam with `linear_decay`: ReActNet's optimizer.

    Arguments:
        learning_rate: initial rate (ReActNet: 5e-4 for 256 epochs, 1.25e-3 for 128).
        total_steps: optimizer steps until the rate reaches 0.
        scaled_variables: variables trained at `multiplier` times the rate (a
            `ScaledStepAdam` then); empty for plain Adam.
        multiplier: the rate multiple of `scaled_variables`.

    Raises:
        ValueError: for a non-positive `learning_rate`, `total_steps` or `multiplier`.
    """
    schedule = linear_decay(learning_rate=learning_rate, total_steps=total_steps)
    multiplier = _checks.positive_float("multiplier", multiplier)
    if multiplier != 1.0 and len(scaled_variables):
        return ScaledStepAdam(schedule, multiplier=multiplier, scaled_variables=scaled_variables)
    return tf.keras.optimizers.Adam(schedule)


def add_conv_weight_decay(model: tf.keras.Model, *, weight_decay: float) -> int:
    """Add weight decay on every conv kernel (4-D weight) of `model` as a loss.

    PyTorch Adam's `weight_decay=wd` adds `wd * w` to the gradient, the gradient of
    `wd / 2 * ||w||^2`; that is the loss added here. Dense, BatchNorm, threshold and
    hyper-function weights get none, as in ReActNet's step 1.

    Arguments:
        model: the model; losses are added to it.
        weight_decay: `wd` (ReActNet step 1: 1e-5).

    Returns:
        How many kernels got weight decay.

    Raises:
        ValueError: for a negative `weight_decay`.
    """
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
    kernels = [
        w for w in model.trainable_weights
        if len(w.shape) == 4 and "hyper_function" not in w.name
    ]
    if weight_decay > 0:
        for kernel in kernels:
            model.add_loss(lambda k=kernel: 0.5 * weight_decay * tf.reduce_sum(tf.square(k)))
    return len(kernels)


@tf.keras.utils.register_keras_serializable(package="larq_dybnn")
class DistributionLoss(tf.keras.losses.Loss):
    """ReActNet's distribution loss: mean over the batch of
    `-sum_c softmax(teacher)_c * log_softmax(student)_c`.

    `y_true` are the teacher's logits, `y_pred` the student's.
    """

    def __init__(self, name: str = "distribution_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        target = tf.nn.softmax(tf.cast(y_true, tf.float32), axis=-1)
        return -tf.reduce_sum(target * tf.nn.log_softmax(y_pred, axis=-1), axis=-1)


@tf.keras.utils.register_keras_serializable(package="larq_dybnn")
class SmoothedCrossentropy(tf.keras.losses.Loss):
    """Cross-entropy on integer labels and logits, with optional label smoothing.

    Keras' `SparseCategoricalCrossentropy` has no label smoothing; this is
    `CategoricalCrossentropy(from_logits=True, label_smoothing=...)` on one-hot labels.

    Arguments:
        label_smoothing: in [0, 1); the target puts `1 - s + s / K` on the label and
            `s / K` on each of the other classes.

    Raises:
        ValueError: for `label_smoothing` outside [0, 1).
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = tf.shape(y_pred)[-1]
        labels = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), classes)
        smoothing = self.label_smoothing
        targets = labels * (1.0 - smoothing) + smoothing / tf.cast(classes, tf.float32)
        return -tf.reduce_sum(targets * tf.nn.log_softmax(y_pred, axis=-1), axis=-1)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class Distiller(tf.keras.Model):
    """Train `student` on the distribution loss against a frozen `teacher`.

    `fit` takes the usual `(images, labels)`; labels feed the metrics only. Evaluation
    reports the student's cross-entropy and metrics. Save `distiller.student`.

    Arguments:
        student: the model being trained (logits out).
        teacher: any Keras model with the same input and number of outputs (logits).

    Raises:
        ValueError: if the two models' output sizes differ.
    """

    def __init__(self, student: tf.keras.Model, teacher: tf.keras.Model, **kwargs):
        super().__init__(**kwargs)
        if student.output_shape[-1] != teacher.output_shape[-1]:
            raise ValueError(
                f"`teacher` has {teacher.output_shape[-1]} outputs but `student` has "
                f"{student.output_shape[-1]}."
            )
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.distribution_loss = DistributionLoss()
        self.cross_entropy = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker, *super().metrics]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def train_step(self, data):
        images, labels = data[0], data[1]
        teacher_logits = self.teacher(images, training=False)
        with tf.GradientTape() as tape:
            logits = self.student(images, training=True)
            loss = self.distribution_loss(teacher_logits, logits)
            if self.student.losses:
                loss += tf.add_n(self.student.losses)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.loss_tracker.update_state(loss)
        self.compiled_metrics.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, labels = data[0], data[1]
        logits = self.student(images, training=False)
        self.loss_tracker.update_state(self.cross_entropy(labels, logits))
        self.compiled_metrics.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}


def _by_name(model: tf.keras.Model, role: str) -> dict[str, tf.Variable]:
    """Weights keyed by layer name, position in the layer and short name.

    Variable names alone do not work: a model loaded from a `.keras` file names its
    variables without the layer prefix ("kernel:0"), a freshly built one with it.
    """
    weights: dict[str, tf.Variable] = {}
    for layer in model.layers:
        for index, weight in enumerate(layer.weights):
            key = f"{layer.name}/{index}:{weight.name.split('/')[-1]}"
            if key in weights:
                raise ValueError(f"{role} model '{model.name}' has two weights keyed '{key}'.")
            weights[key] = weight
    return weights


def transfer_weights(source: tf.keras.Model, target: tf.keras.Model) -> int:
    """Copy every weight of `source` into its partner in `target`: the weight of the
    same layer name, position in the layer and short name.

    Step 2 of ReActNet starts from step 1's weights; the official code loads them
    with `strict=False` and silently drops what does not match. This fails instead:
    every weight of each model must have a partner of the same name and shape, and
    the copy is checked value by value afterwards.

    Arguments:
        source: e.g. the step-1 model (`binary_weights=False`).
        target: e.g. the step-2 model; same layer and weight names.

    Returns:
        The number of weights copied.

    Raises:
        ValueError: listing the weights that have no partner, differ in shape, or did
            not arrive; nothing is copied when names or shapes do not match.
    """
    sources, targets = _by_name(source, "source"), _by_name(target, "target")
    missing = sorted(set(targets) - set(sources))
    unused = sorted(set(sources) - set(targets))
    mismatched = [
        f"{name}: {tuple(sources[name].shape)} -> {tuple(targets[name].shape)}"
        for name in sorted(set(sources) & set(targets))
        if tuple(sources[name].shape) != tuple(targets[name].shape)
    ]
    if missing or unused or mismatched:
        def listed(title, names):
            return f"\n{title} ({len(names)}):\n" + "\n".join(f"  {n}" for n in names[:20]) + (
                "\n  ..." if len(names) > 20 else "") if names else ""

        raise ValueError(
            f"Cannot transfer weights from '{source.name}' to '{target.name}': they "
            "must have the same weight names and shapes."
            + listed("in the target but not the source", missing)
            + listed("in the source but not the target", unused)
            + listed("with different shapes", mismatched)
        )
    for name, weight in targets.items():
        weight.assign(sources[name])
    wrong = [n for n, w in targets.items() if not np.array_equal(w.numpy(), sources[n].numpy())]
    if wrong:
        raise ValueError(f"Weights did not arrive intact: {', '.join(wrong[:20])}")
    return len(targets)
