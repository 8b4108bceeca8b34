"""Choosing a `tf.distribute` strategy for training, and each worker's role."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import tensorflow as tf

__all__ = ["STRATEGIES", "Worker", "make_strategy", "worker_of", "data_options"]

#: Values of `--strategy`.
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass(frozen=True)
class Worker:
    """This process's place in a (possibly multi-worker) run.

    Attributes:
        is_chief: whether this worker writes the run's outputs.
        task_id: index of this worker (0 outside multi-worker runs).
        num_workers: number of workers.
        replicas: replicas in sync over all workers.
    """

    is_chief: bool
    task_id: int
    num_workers: int
    replicas: int


def _use_logical_cpus(count: int) -> None:
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:
        raise ValueError(
            "`logical_cpus` must be set before TensorFlow initializes its devices; "
            "call make_strategy first thing in the process."
        ) from None


def make_strategy(name: str = "default", *, logical_cpus: int | None = None
                  ) -> tf.distribute.Strategy:
    """Create the distribution strategy called `name`.

    - "default": one device, no distribution.
    - "mirrored": `MirroredStrategy` over all GPUs, or over all (logical) CPU devices
      when there is no GPU.
    - "multiworker": `MultiWorkerMirroredStrategy` over the workers that the
      `TF_CONFIG` environment variable lists (ring all-reduce, works on CPUs).

    Arguments:
        name: one of `STRATEGIES`.
        logical_cpus: split the CPU into this many logical devices first (to run
            "mirrored" on a machine without GPUs, e.g. in tests). Must come before
            TensorFlow initializes its devices.

    Returns:
        The strategy.

    Raises:
        ValueError: for an unknown name, "multiworker" without `TF_CONFIG`, or
            `logical_cpus` after TensorFlow initialized its devices.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {name!r}.")
    if name == "multiworker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "`strategy`='multiworker' needs the TF_CONFIG environment variable "
                "(cluster addresses and this worker's task); see tf.distribute's "
                "multi-worker guide."
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
    if logical_cpus is not None and logical_cpus > 1:
        _use_logical_cpus(logical_cpus)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def worker_of(strategy: tf.distribute.Strategy) -> Worker:
    """This process's role under `strategy`: the chief writes outputs.

    In a multi-worker run the chief is the "chief" task, or worker 0 when the
    cluster has none.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    replicas = strategy.num_replicas_in_sync
    if resolver is None or not resolver.cluster_spec().as_dict():
        return Worker(True, 0, 1, replicas)
    spec = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    workers = sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                        and "chief" not in spec)
    return Worker(is_chief, task_id, workers, replicas)


def data_options() -> tf.data.Options:
    """Dataset options for distributed input: shard in-memory data by element."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return options
