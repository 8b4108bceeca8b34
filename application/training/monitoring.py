"""Watching the dynamic thresholds: per-sample statistics and TensorBoard histograms.

DyBNN's claim is that different samples get different thresholds. `ThresholdProbe`
measures `tau(x)` of every DynamicSign in a model for a batch of images, so one can
see (in TensorBoard, or in the plots of `larq_dybnn.training.plots`) how much the threshold
of each channel moves from sample to sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from larq_dybnn.scan import dynamic_layers

__all__ = ["ThresholdProbe", "ThresholdStats", "ThresholdHistograms"]


@dataclass(frozen=True)
class ThresholdStats:
    """The thresholds one DynamicSign gave a batch of samples.

    Attributes:
        layer: name of the QuantConv2D whose input quantizer this is.
        dynamic: whether the threshold is input-conditioned (False: RSign).
        values: `(samples, channels)` thresholds.
    """

    layer: str
    dynamic: bool
    values: np.ndarray

    @property
    def spread(self) -> np.ndarray:
        """Per-channel standard deviation over the samples, `(channels,)`."""
        return self.values.std(axis=0)


class ThresholdProbe:
    """Compute the thresholds of every DynamicSign of `model` for given images.

    Arguments:
        model: a model with QuantConv2D/QuantDense layers whose input quantizer is a
            `DynamicSign` (a `Distiller`'s student works too).

    Raises:
        ValueError: if the model has no DynamicSign.
    """

    def __init__(self, model: tf.keras.Model):
        model = getattr(model, "student", model)
        found = dynamic_layers(model, active_only=False)
        self.layers = list(found.signs)
        if not self.layers:
            raise ValueError(f"Model '{model.name}' has no DynamicSign input quantizer.")
        nested = sorted({found.owner(layer) for layer in self.layers} - {model.name})
        if nested:
            raise ValueError(
                f"The DynamicSign layers of '{model.name}' are inside the nested model(s) "
                f"{', '.join(repr(n) for n in nested)}; probe that model itself.")
        self._inputs = tf.keras.Model(model.inputs, [layer.input for layer in self.layers])

    @property
    def any_dynamic(self) -> bool:
        """Whether at least one threshold is input-conditioned."""
        return any(layer.input_quantizer.dynamic_threshold for layer in self.layers)

    def __call__(self, images: np.ndarray | tf.Tensor) -> list[ThresholdStats]:
        """Thresholds per layer for `images` (inference mode).

        Returns:
            One `ThresholdStats` per DynamicSign, in model order.
        """
        inputs = self._inputs(images, training=False)
        if len(self.layers) == 1:
            inputs = [inputs]
        count = int(tf.shape(images)[0])
        stats = []
        for layer, x in zip(self.layers, inputs):
            quantizer = layer.input_quantizer
            tau = quantizer.thresholds(x).numpy()
            tau = np.broadcast_to(tau.reshape(-1 if quantizer.dynamic_threshold else 1,
                                              tau.shape[-1]), (count, tau.shape[-1]))
            stats.append(ThresholdStats(layer.name, bool(quantizer.dynamic_threshold),
                                        np.array(tau, np.float32)))
        return stats


class ThresholdHistograms(tf.keras.callbacks.Callback):
    """Write per-layer threshold histograms to TensorBoard after every epoch.

    For each DynamicSign: `thresholds/<layer>` (all thresholds of all probe samples),
    `threshold_spread/<layer>` (per channel, the standard deviation over samples)
    and the scalar `threshold_spread_mean/<layer>`.

    Arguments:
        images: the probe batch (preprocessed like the training data).
        log_dir: TensorBoard directory; the events go to `<log_dir>/thresholds`.
    """

    def __init__(self, images: np.ndarray, log_dir: str | os.PathLike):
        super().__init__()
        self.images = images
        self.log_dir = os.path.join(os.fspath(log_dir), "thresholds")
        self._probe: ThresholdProbe | None = None
        self._writer = None

    def on_train_begin(self, logs=None):
        self._probe = ThresholdProbe(self.model)
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default(step=epoch):
            for stats in self._probe(self.images):
                tf.summary.histogram(f"thresholds/{stats.layer}", stats.values)
                tf.summary.histogram(f"threshold_spread/{stats.layer}", stats.spread)
                tf.summary.scalar(f"threshold_spread_mean/{stats.layer}",
                                  float(stats.spread.mean()))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
