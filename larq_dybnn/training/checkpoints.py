"""Epoch-level checkpoints that let an interrupted training run resume.

A checkpoint holds the model's variables (BatchNorm statistics included), the
optimizer's (step counter and Adam moments, hence also the learning-rate schedule
position) and the number of finished epochs. Combined with the epoch-seeded input
pipeline of `larq_dybnn.training.preprocessing.pipeline`, a run resumed from epoch k computes exactly
what an uninterrupted run computes from epoch k on.
"""

from __future__ import annotations

import csv
import io
import os

import tensorflow as tf

from larq_dybnn._io import atomic_write_bytes

__all__ = ["EpochCheckpoints", "trim_history"]


class EpochCheckpoints(tf.keras.callbacks.Callback):
    """Save at the end of every epoch; `restore()` returns the epoch to resume at.

    Arguments:
        directory: checkpoint folder (created if missing).
        model: the model being fit (its optimizer is saved too).
        keep: how many checkpoints to keep.
    """

    def __init__(self, directory: str | os.PathLike, model: tf.keras.Model, *, keep: int = 2):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="finished_epochs")
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, finished_epochs=self.epoch
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.fspath(directory), max_to_keep=keep
        )

    def restore(self) -> int:
        """Load the latest checkpoint, if any.

        Returns:
            The number of finished epochs (0 without a checkpoint).

        Raises:
            ValueError: if the checkpoint does not fit the model (e.g. the output
                directory belongs to a run of another model).
        """
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise ValueError(
                f"Checkpoint '{latest}' does not fit this model and optimizer; use a "
                f"new output directory or the same options as the interrupted run. "
                f"({str(error).splitlines()[0]})"
            ) from None
        return int(self.epoch.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)


def trim_history(path: str | os.PathLike, *, epochs: int) -> None:
    """Keep only the rows of the first `epochs` epochs of a CSVLogger file.

    A run killed after logging an epoch but before checkpointing it redoes that
    epoch; trimming keeps the resumed history free of duplicates.
    """
    if not os.path.exists(path):
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row and int(float(row[0])) < epochs]
    if len(kept) == len(body):
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(kept)
    atomic_write_bytes(path, buffer.getvalue().encode())
