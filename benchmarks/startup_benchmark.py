"""Start-up costs: build, first training step, first prediction and LCE export.

Each of these is paid once per process, before any steady-state speed matters: in
a notebook, a `larq-dybnn train` run, and every test that starts a process. This
script measures them in fresh processes, alternating two set-ups round by round
so that machine noise hits both alike:

    as shipped   larq_dybnn as installed: AutoGraph leaves tf-keras' internals
                 unconverted (`larq_dybnn._env.skip_autograph_in_tf_keras`) and
                 `export_tflite` converts a SavedModel of the serving function only
    plain        TensorFlow's own AutoGraph rules and
                 `larq_compute_engine.convert_keras_model`

Prints the median seconds of each stage and the ratio plain / as shipped. Both
export paths give the same bytes (tests/test_conversion.py checks it).

Usage: python benchmarks/startup_benchmark.py [--model dybnn-reactnet-18]
       [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from fresh_process import run_fresh

SETUPS = ("as shipped", "plain")
STAGES = ("build", "first fit step", "first predict", "export")

#: What each fresh process runs; prints one JSON line of stage -> seconds.
CHILD = r"""
import json, sys, time
import larq_dybnn
import numpy as np
import tensorflow as tf
from larq_dybnn.zoo import build_model

plain = sys.argv[1] == "plain"
if plain:  # back to TensorFlow's own AutoGraph rules
    from tensorflow.python.autograph.core import config
    config.CONVERSION_RULES = tuple(
        r for r in config.CONVERSION_RULES
        if not (isinstance(r, config.DoNotConvert) and r.matches("tf_keras")))
name = sys.argv[2]
tiny = name.startswith("tiny")
shape = (8, 8, 3) if tiny else (32, 32, 3)
options = {} if tiny else dict(stem="cifar", width_multiplier=0.25)
seconds = {}
start = time.perf_counter()
model = build_model(name, input_shape=shape, num_classes=10, **options)
seconds["build"] = time.perf_counter() - start
model.compile(tf.keras.optimizers.Adam(1e-3),
              tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).normal(size=(32, *shape)).astype(np.float32)
y = np.zeros(32, dtype=np.int64)
start = time.perf_counter()
model.train_on_batch(x, y)
seconds["first fit step"] = time.perf_counter() - start
start = time.perf_counter()
model.predict(x, verbose=0)
seconds["first predict"] = time.perf_counter() - start
start = time.perf_counter()
if plain:
    import larq_compute_engine as lce
    lce.convert_keras_model(model)
else:
    from larq_dybnn.converter.conversion import export_tflite
    export_tflite(model, int8_hyper_weights=False)
seconds["export"] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def _run(setup: str, model: str) -> dict:
    return run_fresh(CHILD, setup, model, label=setup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dybnn-reactnet-18",
                        help="a catalog model (tiny ones at 8x8, others at CIFAR width 0.25)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per set-up")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    runs = {setup: [] for setup in SETUPS}
    for round_ in range(args.rounds):
        order = SETUPS if round_ % 2 == 0 else SETUPS[::-1]
        for setup in order:
            runs[setup].append(_run(setup, args.model))
            print(f"round {round_ + 1}/{args.rounds} {setup:10s} "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in runs[setup][-1].items()),
                  flush=True)
    medians = {setup: {stage: statistics.median(r[stage] for r in runs[setup])
                       for stage in STAGES} for setup in SETUPS}
    print(f"\n{args.model}: median seconds over {args.rounds} fresh processes")
    print(f"{'stage':16s} {'as shipped':>10s} {'plain':>8s} {'plain / shipped':>16s}")
    for stage in (*STAGES, "total"):
        shipped = (sum(medians["as shipped"].values()) if stage == "total"
                   else medians["as shipped"][stage])
        plain = sum(medians["plain"].values()) if stage == "total" else medians["plain"][stage]
        print(f"{stage:16s} {shipped:10.1f} {plain:8.1f} {plain / shipped:16.2f}")
    if args.json:
        from larq_dybnn._io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(
            {"model": args.model, "rounds": args.rounds, "median_seconds": medians,
             "runs": runs}, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
