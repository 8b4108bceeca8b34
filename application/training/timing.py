"""Training throughput of each epoch, logged beside the metrics."""

from __future__ import annotations

import time

import tensorflow as tf

from larq_dybnn import _checks

__all__ = ["EpochTimer"]


class EpochTimer(tf.keras.callbacks.Callback):
    """Add `train_seconds` and `train_images_per_second` to each epoch's logs.

    The time runs from the start of the epoch to the start of its validation (or
    to its end without validation), so it measures the training steps and their
    input pipeline, not the evaluation. Put it before `CSVLogger` and TensorBoard
    in the callback list so that they record the figures.

    Arguments:
        batch_size: images per training step (the global batch).
    """

    def __init__(self, *, batch_size: int):
        super().__init__()
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        self._started = self._stopped = None
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._stopped, self._steps = time.perf_counter(), None, 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._started is not None and self._stopped is None:
            self._stopped = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self._started is None:
            return
        seconds = (self._stopped or time.perf_counter()) - self._started
        logs["train_seconds"] = seconds
        logs["train_images_per_second"] = self._steps * self.batch_size / max(seconds, 1e-9)
