"""The first `fit` with and without `create_step_variables`, and what larq-zoo costs at import.

tf.keras creates the optimizer's slots and the compiled metrics' variables inside
the first training step; a `tf.function` that creates variables while it is traced
is traced again, so the first `fit` builds its graph twice.
`larq_dybnn.training.create_step_variables` creates them before `fit`. This script
measures, in fresh processes alternating round by round so that machine noise hits
both alike:

    prepared     compile, `create_step_variables(model, labels=y[:1])`, then `fit`
    as Keras     compile, then `fit`

the seconds of the first one-epoch `fit` and the number of times its training step
was traced. Every process also times `import larq_dybnn` (with its zoo, converter and
training modules) and then `import larq_zoo` on top of it: larq_dybnn imports larq-zoo
(which imports Keras 3 and tensorflow-datasets) only when a zoo weight or a larq-zoo
model is first used, so the second figure is what that saves every command that
needs none.

Data are random images of the model's input shape (timing does not depend on the
values); labels are class indices and "accuracy" is a compiled metric, as in the
notebooks.

Usage: python benchmarks/first_fit_benchmark.py [--model dybnn-reactnet-18]
       [--images 250] [--batch-size 32] [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from fresh_process import run_fresh

SETUPS = ("prepared", "as Keras")

#: What each fresh process runs; prints one JSON line of figures.
CHILD = r"""
import json, sys, time
start = time.perf_counter()
import larq_dybnn, larq_dybnn.zoo, larq_dybnn.converter, larq_dybnn.training
import_seconds = time.perf_counter() - start
start = time.perf_counter()
import larq_zoo
larq_zoo_seconds = time.perf_counter() - start
import numpy as np
import tensorflow as tf
from larq_dybnn.training import create_step_variables
from larq_dybnn.zoo import build_model

setup, name, images, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tiny = name.startswith("tiny")
shape = (8, 8, 3) if tiny else (32, 32, 3)
options = {} if tiny else dict(stem="cifar", width_multiplier=0.25)
tf.keras.utils.set_random_seed(0)
model = build_model(name, input_shape=shape, num_classes=10, **options)
rng = np.random.default_rng(0)
x = rng.normal(size=(images, *shape)).astype(np.float32)
y = rng.integers(0, 10, size=images)
model.compile(tf.keras.optimizers.Adam(1e-3),
              tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
start = time.perf_counter()
if setup == "prepared":
    create_step_variables(model, labels=y[:1])
model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
fit_seconds = time.perf_counter() - start
print(json.dumps({"import larq_dybnn": import_seconds, "import larq_zoo after it": larq_zoo_seconds,
                  "first fit": fit_seconds,
                  "tracings": int(model.train_function.experimental_get_tracing_count())}))
"""


def _run(setup: str, args: argparse.Namespace) -> dict:
    return run_fresh(CHILD, setup, args.model, str(args.images), str(args.batch_size),
                     label=setup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dybnn-reactnet-18",
                        help="a catalog model (tiny ones at 8x8, others at CIFAR width 0.25)")
    parser.add_argument("--images", type=int, default=250, help="images in the one-epoch fit")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per set-up")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    for option in ("images", "batch_size", "rounds"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")

    runs = {setup: [] for setup in SETUPS}
    for round_ in range(args.rounds):
        order = SETUPS if round_ % 2 == 0 else SETUPS[::-1]
        for setup in order:
            figures = _run(setup, args)
            runs[setup].append(figures)
            print(f"round {round_ + 1}/{args.rounds} {setup:9s} first fit "
                  f"{figures['first fit']:.1f} s ({figures['tracings']} tracing(s)), "
                  f"import larq_dybnn {figures['import larq_dybnn']:.1f} s, "
                  f"larq_zoo after it {figures['import larq_zoo after it']:.1f} s", flush=True)

    def median(setups: tuple[str, ...], key: str) -> float:
        return statistics.median(r[key] for s in setups for r in runs[s])

    fit = {setup: median((setup,), "first fit") for setup in SETUPS}
    tracings = {setup: sorted({r["tracings"] for r in runs[setup]}) for setup in SETUPS}
    imports = {key: median(SETUPS, key) for key in ("import larq_dybnn", "import larq_zoo after it")}
    print(f"\n{args.model}, {args.images} images, batch {args.batch_size}: "
          f"median seconds over {args.rounds} fresh processes per set-up")
    print(f"{'first fit':24s} prepared {fit['prepared']:.1f} s (tracings {tracings['prepared']}), "
          f"as Keras {fit['as Keras']:.1f} s (tracings {tracings['as Keras']}), "
          f"as Keras / prepared {fit['as Keras'] / fit['prepared']:.2f}")
    print(f"{'import larq_dybnn':24s} {imports['import larq_dybnn']:.1f} s "
          f"(over all {2 * args.rounds} processes)")
    print(f"{'+ import larq_zoo':24s} {imports['import larq_zoo after it']:.1f} s more "
          f"(what importing larq-zoo on first use saves)")
    if args.json:
        from larq_dybnn._io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(
            {"model": args.model, "images": args.images, "batch_size": args.batch_size,
             "rounds": args.rounds, "median_first_fit_seconds": fit, "tracings": tracings,
             "median_import_seconds": imports, "runs": runs}, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
