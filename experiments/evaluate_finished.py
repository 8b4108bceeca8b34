"""Evaluate a sweep's finished runs on its test split, and table them, while it trains.

A sweep holds its folder's lock while it trains, and the campaign's pinned install
(experiments/cifar10-recipe/COMMIT) predates the separate evaluation lock, so
`larq-dybnn sweep --skip-training` refuses to run beside it. This script does the
evaluation half without the lock, with whatever larq_dybnn it is run by (the
campaign runs it with its pinned install, so every run is evaluated by the code it
was trained with):

    python experiments/evaluate_finished.py SWEEP.toml RUNS_FOLDER [--results-dir DIR]

For every configuration the sweep file evaluates, each finished run (state "done")
without an `evaluation.json` is evaluated on the sweep's `test_split` (Keras, LCE
float32, LCE int8 hyper weights; `evaluation.json` is written atomically). Runs in
training and runs already evaluated are left alone. Then every evaluated run is
aggregated as the sweep does it (results.csv, results.md with the table paired by
seed, results.png in RUNS_FOLDER; with `--results-dir`, also there with each run's
small records, to commit): the tables of a campaign so far, regenerated as runs
finish. The sweep's own `--skip-training` call (`run_campaign.sh results`) does the
same once the training is over, and skips the runs evaluated here. Run one at a
time: two of them could evaluate the same run twice (harmless, wasted).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", type=Path, help="the sweep's TOML file")
    parser.add_argument("runs", type=Path, help="the sweep's folder (its --output-dir)")
    parser.add_argument("--results-dir", type=Path,
                        help="also write the results and the runs' records there")
    arguments = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import larq_dybnn  # noqa: F401  (sets up legacy Keras before TensorFlow)
    from larq_dybnn.sweep.evaluation import evaluate_run
    from larq_dybnn.sweep.results import copy_records, write_results
    from larq_dybnn.sweep.runner import load_spec, run_state

    if not arguments.runs.is_dir():
        parser.error(f"runs: '{arguments.runs}' is not a folder")
    spec = load_spec(arguments.spec)
    evaluated = 0
    for run in spec.runs:
        folder = arguments.runs / run.key
        if run.config not in spec.evaluated or run_state(folder) != "done":
            continue
        if (folder / "evaluation.json").is_file():
            continue
        print(f"{run.key}: evaluating on '{spec.test_split}'", flush=True)
        evaluate_run(folder, split=spec.test_split,
                     print_fn=lambda line: print(line, flush=True))
        evaluated += 1
    print(f"Evaluated {evaluated} finished runs in '{arguments.runs}'.")
    if not spec.evaluated:
        return 0
    written = write_results(arguments.runs, baseline=spec.baseline, configs=spec.evaluated)
    if arguments.results_dir is not None:
        copy_records(arguments.runs, arguments.results_dir / "runs")
        written += write_results(arguments.results_dir / "runs", baseline=spec.baseline,
                                 configs=spec.evaluated, destination=arguments.results_dir)
    for path in written:
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
