"""Training throughput of the real `larq-dybnn train` command against the model alone.

Runs, in one benchmark and taking turns round after round so that machine noise hits
all alike:
- `larq-dybnn train` (a real subprocess, the CLI path users run) for the static
  ReActNet-18 and its DyBNN twin on a slice of the CIFAR-10 copy, and reads the
  training images/s of the last epoch from the run's history.csv (the first epoch
  also decodes and caches the images and traces the step);
- the model alone (`benchmarks/training_benchmark.py`: `train_on_batch` on one fixed
  batch, no input pipeline, no callbacks).

Prints images/s and the ratios CLI / model alone (target >= 0.8) and DyBNN / static
through the CLI (target >= 0.85).

Usage: python benchmarks/cli_training_benchmark.py [--data ../shared/data/cifar10]
       [--width 0.25] [--batch-size 128] [--images 12800] [--epochs 2] [--rounds 2]
       [--with-nondeterministic] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {"static": "reactnet-18", "dynamic": "dybnn-reactnet-18"}


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _env() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def cli_run(model: str, args: argparse.Namespace, folder: Path, *,
            deterministic: bool = True) -> dict:
    """One `larq-dybnn train` run; its last epoch's training images/s and wall time."""
    out = folder / model
    command = [
        sys.executable, "-m", "larq_dybnn_cli", "train", "--model", model,
        "--data", args.data, "--train-split", f"train[:{args.images}]",
        "--eval-split", "train[-1000:]", "--width-multiplier", str(args.width),
        "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
        "--output-dir", str(out), "--restart", "--quiet",
    ] + ([] if deterministic else ["--nondeterministic"])
    started = time.perf_counter()
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {"images_per_second": float(rows[-1]["train_images_per_second"]),
            "first_epoch_images_per_second": float(rows[0]["train_images_per_second"]),
            "wall_seconds": wall}


def model_only(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """Best-step images/s of both models alone (training_benchmark.py)."""
    output = folder / "model_only.json"
    command = [sys.executable, str(HERE / "training_benchmark.py"), "--model", "reactnet18",
               "--width", str(args.width), "--batch-size", str(args.batch_size),
               "--steps", "30", "--json", str(output)]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"training_benchmark.py failed:\n{done.stderr[-3000:]}")
    figures = json.loads(output.read_text())
    return {"median": figures["median_rates"], "best": figures["best_rates"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "cifar10"))
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=_positive, default=128)
    parser.add_argument("--images", type=_positive, default=12800,
                        help="training images per epoch (a slice of the train split)")
    parser.add_argument("--epochs", type=_positive, default=2)
    parser.add_argument("--rounds", type=_positive, default=2)
    parser.add_argument("--with-nondeterministic", action="store_true",
                        help="also run the CLI with --nondeterministic each round, to "
                        "show what op determinism (bit-exact resume) costs")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        parser.error(f"--data: no dataset at '{args.data}'")

    cli = {name: [] for name in MODELS}
    nondet = {name: [] for name in MODELS}
    alone = {name: [] for name in MODELS}
    with tempfile.TemporaryDirectory(prefix="cli-benchmark-") as folder:
        for round_ in range(args.rounds):
            order = list(MODELS.items())
            if round_ % 2:
                order.reverse()
            for name, model in order:
                cli[name].append(cli_run(model, args, Path(folder)))
                print(f"round {round_ + 1}: CLI {model}: "
                      f"{cli[name][-1]['images_per_second']:.1f} images/s", flush=True)
                if args.with_nondeterministic:
                    nondet[name].append(cli_run(model, args, Path(folder),
                                                deterministic=False))
                    print(f"round {round_ + 1}: CLI {model} --nondeterministic: "
                          f"{nondet[name][-1]['images_per_second']:.1f} images/s",
                          flush=True)
            rates = model_only(args, Path(folder))
            for name in MODELS:
                alone[name].append(rates["median"][name])
            print(f"round {round_ + 1}: model alone: " + ", ".join(
                f"{MODELS[n]} {alone[n][-1]:.1f}" for n in MODELS) + " images/s", flush=True)

    def med(values):
        return statistics.median(values)

    cli_rate = {n: med([r["images_per_second"] for r in cli[n]]) for n in MODELS}
    alone_rate = {n: med(alone[n]) for n in MODELS}
    figures = {
        "cli_images_per_second": cli_rate,
        "model_only_images_per_second": alone_rate,
        "cli_over_model_only": {n: cli_rate[n] / alone_rate[n] for n in MODELS},
        "dynamic_over_static_cli": cli_rate["dynamic"] / cli_rate["static"],
        "dynamic_over_static_model_only": alone_rate["dynamic"] / alone_rate["static"],
        "runs": cli, "model_only_runs": alone, **vars(args),
    }
    if args.with_nondeterministic:
        nondet_rate = {n: med([r["images_per_second"] for r in nondet[n]]) for n in MODELS}
        figures["cli_nondeterministic_images_per_second"] = nondet_rate
        figures["nondeterministic_runs"] = nondet
        figures["dynamic_over_static_cli_nondeterministic"] = (
            nondet_rate["dynamic"] / nondet_rate["static"])
    print(f"\nReActNet-18 width {args.width}, CIFAR stem, batch {args.batch_size}, "
          f"{args.images} training images per epoch, last of {args.epochs} epochs, "
          f"median of {args.rounds} rounds")
    print(f"{'model':<20} {'CLI images/s':>13} {'alone images/s':>15} {'CLI / alone':>12}")
    for name, model in MODELS.items():
        print(f"{model:<20} {cli_rate[name]:>13.1f} {alone_rate[name]:>15.1f} "
              f"{figures['cli_over_model_only'][name]:>12.3f}")
    print(f"CLI / model alone: static {figures['cli_over_model_only']['static']:.3f}, "
          f"DyBNN {figures['cli_over_model_only']['dynamic']:.3f} (target >= 0.8)")
    print(f"DyBNN / static through the CLI: {figures['dynamic_over_static_cli']:.3f} "
          f"(target >= 0.85; model alone {figures['dynamic_over_static_model_only']:.3f})")
    if args.with_nondeterministic:
        rates = figures["cli_nondeterministic_images_per_second"]
        print(f"--nondeterministic: static {rates['static']:.1f}, DyBNN "
              f"{rates['dynamic']:.1f} images/s; deterministic / nondeterministic: "
              f"static {cli_rate['static'] / rates['static']:.3f}, DyBNN "
              f"{cli_rate['dynamic'] / rates['dynamic']:.3f}; DyBNN / static "
              f"{figures['dynamic_over_static_cli_nondeterministic']:.3f}")
    if args.json:
        sys.path.insert(0, str(HERE.parent))
        from larq_dybnn._io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(figures, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
