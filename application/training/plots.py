"""Figures of a training run: training curves and threshold distributions."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.training.monitoring import ThresholdStats

__all__ = ["read_history", "plot_history", "plot_thresholds"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | os.PathLike) -> None:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=110,
                   bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def read_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a Keras CSVLogger file into `{column: values}` (epochs included).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it has no rows.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"'{path}' has no epochs.")
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


def plot_history(history: dict[str, Sequence[float]], path: str | os.PathLike) -> None:
    """Plot loss and accuracy per epoch, training and validation, to `path`."""
    plt = _pyplot()
    epochs = np.asarray(history.get("epoch", range(len(history["loss"])))) + 1
    panels = [name for name in ("loss", "accuracy") if name in history]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6),
                             constrained_layout=True)
    for axis, name in zip(np.atleast_1d(axes), panels):
        axis.plot(epochs, history[name], marker="o", label="training")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("Training curves")
    _save(figure, path)
    plt.close(figure)


def plot_thresholds(
    stats: Sequence[ThresholdStats],
    path: str | os.PathLike,
    *,
    layers: int = 4,
    channels: int = 8,
) -> list[str]:
    """Plot, for a few layers, how the thresholds of some channels vary over samples.

    For each chosen layer (spread evenly over the network), a box plot of the
    per-sample thresholds of the `channels` channels that vary most. A static
    (RSign) layer shows flat lines: every sample gets the same threshold.

    Arguments:
        stats: from `larq_dybnn.training.monitoring.ThresholdProbe`.
        path: the image file to write.
        layers: how many layers to show.
        channels: channels per layer.

    Returns:
        The names of the layers shown.

    Raises:
        ValueError: if `stats` is empty.
    """
    if not stats:
        raise ValueError("No thresholds to plot.")
    plt = _pyplot()
    picks = sorted(set(np.linspace(0, len(stats) - 1, min(layers, len(stats))).round().astype(int)))
    figure, axes = plt.subplots(1, len(picks), figsize=(4.2 * len(picks), 3.8), squeeze=False,
                             constrained_layout=True)
    for axis, index in zip(axes[0], picks):
        item = stats[index]
        order = np.argsort(item.spread)[::-1][:channels]
        axis.boxplot([item.values[:, c] for c in order], showfliers=False)
        axis.set_xticks(range(1, len(order) + 1), [str(c) for c in order])
        axis.set_xlabel("channel")
        axis.set_ylabel("threshold tau(x)")
        kind = "dynamic" if item.dynamic else "static"
        axis.set_title(f"{item.layer} ({kind})\nmean spread over samples "
                       f"{item.spread.mean():.3f}", fontsize=9)
        axis.grid(alpha=0.3)
    figure.suptitle(f"Thresholds across {stats[0].values.shape[0]} samples")
    _save(figure, path)
    plt.close(figure)
    return [stats[i].layer for i in picks]
