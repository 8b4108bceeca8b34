"""Fewer garbage-collector passes while TensorFlow builds graphs.

Building a model, tracing a function and converting to LCE create millions of
short-lived Python objects (most of them protocol-buffer messages: the stack pins
protobuf 3.20.3, whose Python 3.11 version has no compiled extension). With
Python's default thresholds the cyclic collector runs every 700 allocations and
rescans the survivors again and again; raising the thresholds for the duration
of such a call made building, exporting and the first training step of DyBNN
ReActNet-18 x0.25 about a fifth faster here, at the same peak memory
(`benchmarks/startup_benchmark.py` measures the package as shipped).
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

__all__ = ["GRAPH_BUILDING_THRESHOLDS", "fewer_collections"]

#: Allocations between two generation-0 collections (Python's default: 700), and
#: collections of one generation per collection of the next (defaults: 10, 10).
GRAPH_BUILDING_THRESHOLDS = (50_000, 50, 50)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's thresholds inside the block (or decorated function).

    Thresholds already higher stay as they are; automatic collection switched off
    (a threshold of 0) stays off. The previous thresholds come back on exit, also
    after an error.
    """
    previous = gc.get_threshold()
    if previous[0] == 0:
        yield
        return
    gc.set_threshold(*(max(a, b) for a, b in zip(previous, GRAPH_BUILDING_THRESHOLDS)))
    try:
        yield
    finally:
        gc.set_threshold(*previous)
