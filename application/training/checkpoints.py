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
        self.fallback: str | None = None
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="finished_epochs")
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, finished_epochs=self.epoch
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.fspath(directory), max_to_keep=keep
        )

    def restore(self) -> int:
        """Load the newest readable checkpoint, if any.

        A checkpoint deleted or damaged (a kill while it was written, a full disk) is
        skipped for the one before it; `fallback` then says which was used and why.

        Returns:
            The number of finished epochs (0 without a checkpoint).

        Raises:
            ValueError: if no checkpoint can be read, or they do not fit the model
                (e.g. the output directory belongs to a run of another model).
        """
        self.fallback = None
        candidates = self._candidates()
        if not candidates:
            return 0
        failures = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (AssertionError, ValueError, IndexError, tf.errors.OpError) as error:
                first = (str(error).splitlines() or [type(error).__name__])[0]
                failures.append((path, isinstance(error, AssertionError), first))
                continue
            if failures:
                self.fallback = (
                    f"checkpoint '{failures[0][0]}' is missing or damaged ({failures[0][2]}); "
                    f"resuming from '{path}' instead")
            return int(self.epoch.numpy())
        newest, mismatch, reason = failures[0]
        if mismatch or all(m for _, m, _ in failures):
            raise ValueError(
                f"Checkpoint '{newest}' does not fit this model and optimizer; use a "
                f"new output directory or the same options as the interrupted run. "
                f"({reason})")
        raise ValueError(
            "No readable checkpoint in '" + os.path.dirname(newest) + "': "
            + "; ".join(f"'{p}': {r}" for p, _, r in failures)
            + ". Pass --restart to start the run over.")

    def _candidates(self) -> list[str]:
        """Checkpoint prefixes, newest first: the one the state file names (even if
        its files are gone), then every `ckpt-N` with an index file, by N."""
        directory = self.manager.directory
        found = {}
        for index in tf.io.gfile.glob(os.path.join(directory, "ckpt-*.index")):
            prefix = index[: -len(".index")]
            number = prefix.rsplit("-", 1)[-1]
            if number.isdigit():
                found[prefix] = int(number)
        ordered = sorted(found, key=found.get, reverse=True)
        latest = self.manager.latest_checkpoint
        if latest is not None and latest not in found:
            ordered.insert(0, latest)
        return ordered

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
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        if header[:1] != ["epoch"]:
            raise ValueError("its first line is not a header starting with 'epoch'")
        kept = [row for row in body if row and int(float(row[0])) < epochs]
    except (ValueError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"'{path}' is not a readable training history ({error}); "
                         "repair or delete it, or pass --restart.") from None
    if len(kept) == len(body):
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(kept)
    atomic_write_bytes(path, buffer.getvalue().encode())
