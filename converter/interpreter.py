"""The one place that builds Larq Compute Engine's interpreter (LCE's x86 Python build).

Parity, latency, evaluation and the sweep's test-split runs all build their
interpreter here, so the binary-conv kernel is a choice made (and named) in one place.
The file is checked whole first (`check_flatbuffer`): TFLite trusts a file's offsets,
and a truncated one can crash the process.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from larq_compute_engine.tflite.python.interpreter import Interpreter

from larq_dybnn import _checks
from larq_dybnn.converter.flatbuffer import check_flatbuffer

__all__ = ["KERNELS", "DEFAULT_KERNEL", "lce_interpreter", "lce_outputs"]

#: Interpreter options per kernel choice: LCE's binary GEMM, its indirect binary
#: GEMM, each with or without TFLite's XNNPACK delegate for the float ops.
KERNELS: dict[str, dict[str, bool]] = {
    "bgemm": {},
    "indirect_bgemm": {"use_indirect_bgemm": True},
    "bgemm+xnnpack": {"use_xnnpack": True},
    "indirect_bgemm+xnnpack": {"use_indirect_bgemm": True, "use_xnnpack": True},
}

#: The kernel parity and accuracy are measured with: LCE's indirect binary GEMM gives
#: the outputs of its default bgemm (measured: identical on a trained ReActNet-18
#: x0.25) and is about 5x faster on x86, where LCE's kernels are not ARM-optimized.
DEFAULT_KERNEL = "indirect_bgemm"


def lce_interpreter(flatbuffer: bytes, *, kernel: str = DEFAULT_KERNEL,
                    threads: int = 1, source: str = "`flatbuffer`") -> Interpreter:
    """An LCE interpreter of a checked flatbuffer.

    Arguments:
        flatbuffer: the `.tflite` bytes.
        kernel: a `KERNELS` key.
        threads: interpreter threads.
        source: how to name the file in errors.

    Raises:
        ValueError: for an unknown kernel, a non-positive `threads` or a file that is
            not a whole TFLite model.
    """
    if kernel not in KERNELS:
        raise ValueError(f"`kernel` must be one of {sorted(KERNELS)}, got {kernel!r}.")
    threads = _checks.positive_int("threads", threads)
    check_flatbuffer(flatbuffer, source=source)
    return Interpreter(flatbuffer, num_threads=threads, **KERNELS[kernel])


def lce_outputs(flatbuffer: bytes, samples: np.ndarray, *, kernel: str = DEFAULT_KERNEL,
                threads: int = 1, batch: int = 500,
                progress: Callable[[int, int], object] | None = None) -> np.ndarray:
    """Outputs of `samples` in one LCE interpreter, `batch` samples per call.

    Arguments:
        flatbuffer: the `.tflite` bytes.
        samples: float32 inputs `(N, ...)`.
        kernel: the LCE kernel, as in `lce_interpreter`.
        threads: interpreter threads, as in `lce_interpreter`.
        batch: samples per `predict` call.
        progress: called with `(done, total)` after each call.

    Returns:
        The outputs `(N, ...)`.
    """
    interpreter = lce_interpreter(flatbuffer, kernel=kernel, threads=threads)
    samples = np.asarray(samples, dtype=np.float32)
    outputs = []
    for start in range(0, len(samples), batch):
        outputs.append(np.asarray(interpreter.predict(samples[start : start + batch])))
        if progress is not None:
            progress(min(start + batch, len(samples)), len(samples))
    return np.concatenate(outputs)
