"""Latency of a flatbuffer in the LCE interpreter, with the fastest kernels it offers."""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
from larq_compute_engine.tflite.python.interpreter import Interpreter

from larq_dybnn import _checks

__all__ = ["KERNELS", "SETTLE_MS", "Latency", "measure_latency", "make_runner", "arm_note"]

#: Interpreter options per kernel choice: LCE's binary GEMM, its indirect binary
#: GEMM, each with or without TFLite's XNNPACK delegate for the float ops.
KERNELS: dict[str, dict[str, bool]] = {
    "bgemm": {},
    "indirect_bgemm": {"use_indirect_bgemm": True},
    "bgemm+xnnpack": {"use_xnnpack": True},
    "indirect_bgemm+xnnpack": {"use_indirect_bgemm": True, "use_xnnpack": True},
}


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
    if kernel not in KERNELS:
        raise ValueError(f"`kernel` must be one of {sorted(KERNELS)}, got {kernel!r}.")
    threads = _checks.positive_int("threads", threads)
    if not settle_ms >= 0:
        raise ValueError(f"`settle_ms` must be >= 0, got {settle_ms!r}.")
    interpreter = Interpreter(flatbuffer, num_threads=threads, **KERNELS[kernel])
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
