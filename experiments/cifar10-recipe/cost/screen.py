"""The step-1 screen of the cheaper hyper functions, from committed records only.

Reads the final validation top-1 of every step-1 run of the screen
(`runs/cifar10-recipe-cost-screen/<configuration>/seed-N/history.csv`, configurations
from `cost-screen.toml`) and of the campaign's `static-step1` and `dybnn-step1` runs of
the same seeds, pairs them by seed, and writes `cost/screen.md`: per configuration the
seeds done, the validation mean ± SE, the paired differences against DyBNN and static
step 1, its aarch64 instructions against static x0.25 (`cost/arm_*.json`), and the
commit each run was trained with (a run at another commit than `cost.commit` is
flagged). The issue's rule: the best configuration on validation, once every
configuration has all four seeds, trains through step 2.

    python experiments/cifar10-recipe/cost/screen.py [--runs DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from plot import mean_se_text as _mean_se, write_report  # noqa: E402
CAMPAIGN = HERE.parent
RUNS = CAMPAIGN / "runs"
OUTPUT = HERE / "screen.md"
SEEDS = (0, 1, 2, 3)
BASELINES = {"DyBNN x0.25": ("cifar10-recipe", "dybnn-step1"),
             "static x0.25": ("cifar10-recipe", "static-step1")}


def final_validation(run: Path) -> tuple[float, str] | None:
    """(final validation top-1 in %, training commit) of a finished run, else None."""
    history, provenance = run / "history.csv", run / "provenance.json"
    config = run / "config.json"
    if not history.is_file() or not config.is_file():
        return None
    with open(history, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = json.loads(config.read_text()).get("epochs")
    if not rows or len(rows) != epochs:
        return None
    commit = ""
    if provenance.is_file():
        sessions = json.loads(provenance.read_text()).get("sessions", [])
        commit = ",".join(sorted({s.get("commit", "")[:7] for s in sessions}))
    return 100 * float(rows[-1]["val_accuracy"]), commit


def arm_ratios() -> dict[str, float]:
    """aarch64 instructions against static x0.25, by DyBNN builder options (as JSON)."""
    ratios, static = {}, None
    for path in sorted(HERE.glob("arm_*.json")):
        rows = json.loads(path.read_text())
        if not isinstance(rows, list) or not rows or "options" not in rows[0]:
            continue  # a record of another shape (the ImageNet pairs)
        for row in rows:
            options = dict(row["options"])
            if options.pop("model") == "reactnet-18" and options == {"width_multiplier": 0.25}:
                static = row["instructions"]
        for row in rows:
            options = dict(row["options"])
            if options.pop("model") == "dybnn-reactnet-18" and static:
                options.pop("width_multiplier")
                ratios.setdefault(json.dumps(options, sort_keys=True),
                                  row["instructions"] / static)
    return ratios


def _options(config: dict) -> dict:
    return {k: v for k, v in config.items() if k in ("hyper_pool_stride", "hyper_input")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=RUNS, help="the campaign's saved runs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    runs, output = args.runs, args.output
    if not (runs / BASELINES["DyBNN x0.25"][0]).is_dir():
        parser.error(f"--runs: {runs} holds no {BASELINES['DyBNN x0.25'][0]} sweep "
                     "(the campaign's saved runs)")
    sweep = tomllib.loads((CAMPAIGN / "cost-screen.toml").read_text())
    pinned = (CAMPAIGN / "cost.commit").read_text().strip()[:7]
    baselines = {label: {seed: final_validation(runs / sweep_name / config / f"seed-{seed}")
                         for seed in SEEDS}
                 for label, (sweep_name, config) in BASELINES.items()}
    ratios = arm_ratios()
    lines = ["# Cheaper hyper functions: the step-1 screen (validation)", "",
             "Made by `python experiments/cifar10-recipe/cost/screen.py` from the committed "
             "records. Final validation top-1 after step 1 (15 epochs, train[45000:]); "
             "differences paired by seed, mean ± SE.", "",
             "| configuration | ARM / static x0.25 | seeds | val top-1 | minus DyBNN step 1 "
             "| minus static step 1 | commits |", "|---|---|---|---|---|---|---|"]
    complete = {}
    for label, results in baselines.items():
        values = [r[0] for r in results.values() if r]
        ratio = 1.0 if label.startswith("static") else ratios.get("{}")
        lines.append(f"| {label} (campaign) | {ratio or float('nan'):.3f} | {len(values)} | "
                     f"{_mean_se(values, sign='')} | | | "
                     f"{','.join(sorted({r[1] for r in results.values() if r}))} |")
    for name, config in sweep["configs"].items():
        results = {seed: final_validation(runs / sweep["name"] / name / f"seed-{seed}")
                   for seed in SEEDS}
        done = {seed: r for seed, r in results.items() if r}
        values = [r[0] for r in done.values()]
        differences = {label: [done[s][0] - base[s][0] for s in done if base.get(s)]
                       for label, base in baselines.items()}
        commits = sorted({r[1] for r in done.values()})
        flag = "" if all(c == pinned for c in commits) else f" (pinned: {pinned})"
        ratio = ratios.get(json.dumps(_options(config), sort_keys=True))
        lines.append(
            f"| {name} | {'-' if ratio is None else f'{ratio:.3f}'} | {len(done)} | "
            f"{_mean_se(values, sign='')} | "
            f"{_mean_se(differences['DyBNN x0.25'])} | {_mean_se(differences['static x0.25'])} | "
            f"{','.join(commits) or '-'}{flag} |")
        if len(done) == len(SEEDS):
            complete[name] = statistics.mean(values)
    lines.append("")
    if len(complete) == len(sweep["configs"]):
        best = max(complete, key=complete.get)
        lines.append(f"Every configuration has {len(SEEDS)} seeds: **{best}** is best on "
                     "validation and trains through step 2.")
    else:
        lines.append(f"Not finished: {len(complete)} of {len(sweep['configs'])} "
                     f"configurations have all {len(SEEDS)} seeds; no choice yet.")
    text = "\n".join(lines) + "\n"
    write_report(output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
