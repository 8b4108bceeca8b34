"""Latency of a flatbuffer in the LCE interpreter, with the fastest kernels it offers."""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from larq_dybnn import _checks
from larq_dybnn.converter.interpreter import KERNELS, lce_interpreter

__all__ = [
    "KERNELS", "SETTLE_MS", "Latency", "measure_latency", "compare_latency", "make_runner",
    "arm_note",
]

# The kernel choices live with the interpreter builder (`interpreter.KERNELS`).


def arm_note() -> str:
    """What the measured latency means on this machine."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "Measured on ARM64, where LCE's binary kernels are optimized."
    return (
        f"Measured on {machine or 'an unknown CPU'}: LCE's binary kernels are "
        "optimized for ARM (Android phones, Raspberry Pi); on this machine they run "
        "portable code, so these timings compare models with each other but do not "
        "predict on-device speed. Run LCE's lce_benchmark_model on the device for that."
    )


#: Pause before each timed run when several multi-threaded interpreters take turns:
#: TFLite's and XNNPACK's worker threads spin for a while after each run, and on a
#: small machine the spinning threads of the previous interpreter slow the next one.
SETTLE_MS = 20.0


def make_runner(
    flatbuffer: bytes, *, kernel: str, threads: int, settle_ms: float = 0.0
) -> Callable[[], float]:
    """An interpreter ready to run one random sample; each call returns seconds taken.

    Arguments:
        flatbuffer: the LCE model.
        kernel: a `KERNELS` key.
        threads: interpreter threads.
        settle_ms: untimed pause before each run (see `SETTLE_MS`).

    Raises:
        ValueError: for an unknown `kernel`, a non-positive `threads` or a negative
            `settle_ms`.
    """
    if not settle_ms >= 0:
        raise ValueError(f"`settle_ms` must be >= 0, got {settle_ms!r}.")
    interpreter = lce_interpreter(flatbuffer, kernel=kernel, threads=threads)
    shape = [1, *interpreter.input_shapes[0][1:]]
    sample = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    run = interpreter.interpreter.predict  # the C++ call, without per-call numpy work
    pause = settle_ms / 1e3

    def once() -> float:
        if pause:
            time.sleep(pause)
        start = time.perf_counter()
        run([sample])
        return time.perf_counter() - start

    return once


def fastest_kernel(flatbuffer: bytes, *, threads: int = 1, trials: int = 3) -> str:
    """Pick the kernel choice with the lowest time on `threads` threads over a few runs.

    The best choice can differ between thread counts (XNNPACK, for one, runs the
    float ops on its own thread pool), so pick it for the count you will use.

    Raises:
        ValueError: for a non-positive `threads` or `trials`.
    """
    trials = _checks.positive_int("trials", trials)
    best, best_time = "bgemm", float("inf")
    for kernel in KERNELS:
        runner = make_runner(flatbuffer, kernel=kernel, threads=threads,
                             settle_ms=SETTLE_MS if threads > 1 else 0.0)
        runner()  # warm-up
        elapsed = min(runner() for _ in range(trials))
        if elapsed < best_time:
            best, best_time = kernel, elapsed
    return best


@dataclass(frozen=True)
class Latency:
    """Median latency of one sample in the LCE interpreter.

    Attributes:
        median_ms: `{threads: median milliseconds}`.
        runs: timed runs per thread count (after warm-up).
        kernel: `{threads: kernel choice}` (see `KERNELS`): the fastest on this
            machine for each thread count, or the one the caller fixed.
        machine: `platform.machine()`.
        note: whether the binary kernels are ARM-optimized here.
    """

    median_ms: dict[int, float]
    runs: int
    kernel: dict[int, str]
    machine: str
    note: str

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "median_ms": {str(k): v for k, v in self.median_ms.items()},
            "kernel": {str(k): v for k, v in self.kernel.items()},
        }


def measure_latency(
    flatbuffer: bytes,
    *,
    threads: Sequence[int] = (1, 2),
    runs: int = 50,
    warmup: int = 5,
    kernel: str | None = None,
) -> Latency:
    """Measure the median latency of `flatbuffer` in the LCE interpreter.

    Arguments:
        flatbuffer: the LCE model.
        threads: thread counts to measure.
        runs: timed runs per thread count.
        warmup: untimed runs first.
        kernel: a `KERNELS` key, or None to pick the fastest on this machine for
            each thread count.

    Returns:
        A `Latency`.

    Raises:
        ValueError: for a non-positive `runs`, an unknown `kernel` or bad `threads`.
    """
    runs = _checks.positive_int("runs", runs)
    medians, kernels = {}, {}
    for count in threads:
        count = _checks.positive_int("threads", count)
        kernels[count] = kernel or fastest_kernel(flatbuffer, threads=count)
        runner = make_runner(flatbuffer, kernel=kernels[count], threads=count)
        for _ in range(warmup):
            runner()
        medians[count] = 1e3 * statistics.median(runner() for _ in range(runs))
    return Latency(medians, runs, kernels, platform.machine(), arm_note())


def compare_latency(
    flatbuffers: Mapping[str, bytes],
    *,
    threads: Sequence[int] = (1, 2),
    runs: int = 30,
    warmup: int = 3,
    settle_ms: float = SETTLE_MS,
) -> dict[str, Latency]:
    """Time several flatbuffers side by side, interleaved, so that noise hits all alike.

    For each thread count, every model gets its fastest kernel choice, then one round
    runs each model once, the order rotated every round (no model always follows the
    same neighbour), with an untimed pause of `settle_ms` before each run. Compare the
    ratios between the models of one call; single timings on a busy machine say little.
    For models of a few milliseconds, pass `settle_ms=0`: after a pause, waking the
    interpreter's threads costs more than such a model's run.

    Arguments:
        flatbuffers: `{name: LCE flatbuffer}`.
        threads: thread counts to measure.
        runs: timed rounds per thread count.
        warmup: untimed runs of each model first.
        settle_ms: untimed pause before each run (see `SETTLE_MS`).

    Returns:
        `{name: Latency}`, in the order of `flatbuffers`.

    Raises:
        ValueError: for no flatbuffers, a non-positive `runs` or bad `threads`.
    """
    if not flatbuffers:
        raise ValueError("`flatbuffers` must name at least one model.")
    runs = _checks.positive_int("runs", runs)
    names = list(flatbuffers)
    medians = {name: {} for name in names}
    kernels = {name: {} for name in names}
    for count in threads:
        count = _checks.positive_int("threads", count)
        runners = {}
        for name in names:
            kernels[name][count] = fastest_kernel(flatbuffers[name], threads=count)
            runners[name] = make_runner(flatbuffers[name], kernel=kernels[name][count],
                                        threads=count, settle_ms=settle_ms)
        for runner in runners.values():
            for _ in range(warmup):
                runner()
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(runs):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(runners[name]())
        for name in names:
            medians[name][count] = 1e3 * statistics.median(times[name])
    note = arm_note()
    return {name: Latency(medians[name], runs, kernels[name], platform.machine(), note)
            for name in names}
