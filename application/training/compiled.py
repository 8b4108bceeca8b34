"""Create, before `fit` or `evaluate`, the variables Keras creates in the first step.

tf.keras creates the optimizer's slots and the variables of the metrics given to
`compile` (the total and count of "accuracy", for example) inside the first
training or evaluation step. A `tf.function` that creates variables while it is
traced is traced a second time, so the first `fit` of every model builds its
training graph twice (`model.train_function.experimental_get_tracing_count()` is 2
instead of 1). `create_step_variables` creates them beforehand; what that saves is
measured by `benchmarks/first_fit_benchmark.py`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def create_step_variables(
    compiled: tf.keras.Model, *, labels: np.ndarray | tf.Tensor,
    model: tf.keras.Model | None = None,
) -> None:
    """Create the optimizer, loss and metric variables of a compiled model now, so
    that its first `fit` or `evaluate` traces the step once rather than twice.

    Call it after `compile` and before `fit`. It changes no weight and no metric
    value; the metrics are the ones Keras would pick in the first step. Keras picks
    the kind of "accuracy" from the labels' shape (class indices: sparse
    categorical accuracy; one-hot: categorical accuracy), so pass labels shaped
    like the ones `fit` will see. Legacy optimizers
    (`tf.keras.optimizers.legacy`) are left to create their slots themselves.

    Arguments:
        compiled: a compiled tf.keras model (or a `Distiller`).
        labels: labels as `fit` receives them, at least one (only their shape
            after the batch dimension and their dtype are used).
        model: the model that is trained and whose output the metrics read, when
            it is not `compiled` itself (the student of a `Distiller`); None for
            `compiled`.

    Raises:
        ValueError: if `compiled` is not compiled, the model has several outputs,
            or `labels` is empty.

    Example:
        ```python
        model.compile(optimizer, loss, metrics=["accuracy"])
        create_step_variables(model, labels=y_train[:1])
        model.fit(x_train, y_train)
        ```
    """
    model = compiled if model is None else model
    if getattr(compiled, "compiled_metrics", None) is None:
        raise ValueError(f"`compiled` ({compiled.name}) is not compiled: call `compile` first.")
    if len(model.outputs or []) != 1:
        raise ValueError(f"`model` ({model.name}) must have one output, "
                         f"has {len(model.outputs or [])}.")
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 0 or labels.shape[0] == 0:
        raise ValueError("`labels` must hold at least one label (a batch of them).")
    if isinstance(compiled.optimizer, tf.keras.optimizers.Optimizer):
        compiled.optimizer.build(model.trainable_variables)
    outputs = tf.zeros((1, *model.output_shape[1:]), model.output.dtype)
    if compiled.compiled_loss is not None:
        compiled.compiled_loss.build(outputs)
    compiled.compiled_metrics.build(outputs, labels[:1])
