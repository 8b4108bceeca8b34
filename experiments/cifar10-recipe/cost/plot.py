"""Accuracy against device cost, from committed records only: the cost study's figure
and table.

Reads the campaign's per-run results (`campaign/results.csv`: static and DyBNN
ReActNet-18 x0.25), the cost-matched static model's (`cost/static/results.csv`, made
by `run_campaign.sh evaluate`), those of the DyBNN arms trained since (step 2 on the
int8 grid, `cost/int8-grid/`; the screen's choice through step 2, `cost/screen-step2/`;
the constant-input ablation, `cost/constant/`) and the ARM instruction counts and file
sizes of each configuration (`cost/arm_*.json`, `benchmarks/arm_width.py`). Writes
`docs/assets/cost_accuracy.png` (test top-1 of the int8 LCE file against aarch64
instructions per inference and against `.tflite` bytes: each seed, and the mean with
its standard error) and `cost/table.md` (the same as a table, with how often the int8
file agrees with its Keras model and DyBNN minus each other configuration paired by
seed; below it, the issue's goal: each DyBNN configuration's ARM ratio to static x0.25
and its test lead over static x0.25 and over the cost-matched static model, paired).

    python experiments/cifar10-recipe/cost/plot.py
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FIGURE = REPO / "docs" / "assets" / "cost_accuracy.png"
TABLE = HERE / "table.md"

#: Configuration -> (results file, its config name, its label in arm_width.json).
CONFIGURATIONS = {
    "static x0.25": (HERE.parent / "campaign" / "results.csv", "static", "static x0.25"),
    "static base 17 (cost-matched)": (HERE / "static" / "results.csv", "static-c17",
                                      "static x0.265625"),
    "DyBNN x0.25": (HERE.parent / "campaign" / "results.csv", "dybnn", "dybnn x0.25"),
    "DyBNN x0.25, step 2 on the int8 grid": (
        HERE / "int8-grid" / "results.csv", "dybnn-int8-grid", "dybnn x0.25"),
    "DyBNN x0.25, one pooling per block of a stride-2 subsample, step 2 on the int8 grid": (
        HERE / "screen-step2" / "results.csv", "dybnn-block-pool2",
        "dybnn x0.25 hyper_input=block hyper_pool_stride=2"),
    "DyBNN x0.25, hyper functions fed a constant (ablation)": (
        HERE / "constant" / "results.csv", "dybnn-constant",
        "dybnn x0.25 hyper_input=constant"),
}
DYBNN = "DyBNN x0.25"
STATIC = "static x0.25"
COST_MATCHED = "static base 17 (cost-matched)"
#: The cost study's goal for a DyBNN configuration at CIFAR x0.25: at most this ARM
#: ratio to static x0.25, and at least GOAL_POINTS test points over it, paired, by
#: more than 2 standard errors.
GOAL_RATIO = 1.03
GOAL_POINTS = 0.5


def write_report(path: Path, text: str) -> None:
    """Write a report of the cost study whole or not at all (the package's atomic
    writer: a fresh temporary file in the same folder, renamed over `path`)."""
    from larq_dybnn._io import atomic_write_bytes

    atomic_write_bytes(path, text.encode())


def mean_se_text(values: list[float], *, sign: str = "+") -> str:
    """`mean ± SE` of `values` for a table (`sign="+"`: signed, for differences;
    "-" for no values, "(1 seed)" for one)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:{sign}.2f} (1 seed)"
    se = statistics.stdev(values) / len(values) ** 0.5
    return f"{statistics.mean(values):{sign}.2f} ± {se:.2f}"


def _rows(path: Path, config: str) -> dict[int, dict]:
    if not path.is_file():
        return {}
    with path.open() as handle:
        return {int(row["seed"]): row for row in csv.DictReader(handle)
                if row["config"] == config}


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return mean, se


def collect() -> dict[str, dict]:
    """Per configuration: test accuracies by seed (Keras, LCE int8), instructions, bytes."""
    costs = {}
    # arm_width.json first: where a configuration was counted twice, its count is used.
    for path in [HERE / "arm_width.json", *sorted(HERE.glob("arm_*.json"))]:
        for entry in json.loads(path.read_text()):
            if isinstance(entry, dict) and "label" in entry:
                costs.setdefault(entry["label"], entry)
    found = {}
    for name, (path, config, label) in CONFIGURATIONS.items():
        rows = _rows(path, config)
        if not rows:
            continue
        found[name] = {
            "val": {seed: 100 * float(row["val_accuracy"]) for seed, row in rows.items()},
            "keras": {seed: 100 * float(row["test_accuracy"]) for seed, row in rows.items()},
            "lce_int8": {seed: 100 * float(row["lce_int8_accuracy"])
                         for seed, row in rows.items()},
            "agreement": {seed: 100 * float(row["lce_int8_agreement"])
                          for seed, row in rows.items()},
            "instructions": costs[label]["instructions"],
            "bytes": int(next(iter(rows.values()))["tflite_int8_bytes"]),
        }
    return found


def _shown(mean: float, se: float) -> str:
    return f"{mean:.2f}" if se != se else f"{mean:.2f} ± {se:.2f}"  # NaN: one seed


def table(found: dict[str, dict]) -> str:
    lines = [
        "| configuration | seeds | aarch64 instructions (M) | .tflite KiB (int8) "
        "| val top-1 | test top-1, Keras | test top-1, LCE int8 file | int8 file agrees with Keras "
        "| DyBNN minus it, paired (test, Keras) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    dybnn = found.get(DYBNN)
    for name, entry in found.items():
        val_mean, val_se = _mean_se(list(entry["val"].values()))
        keras_mean, keras_se = _mean_se(list(entry["keras"].values()))
        lce_mean, lce_se = _mean_se(list(entry["lce_int8"].values()))
        agree_mean, agree_se = _mean_se(list(entry["agreement"].values()))
        paired = "-"
        if dybnn is not None and name != DYBNN:
            seeds, differences = paired(dybnn, entry)
            if differences:
                mean, se = _mean_se(differences)
                per_seed = ", ".join(f"{d:+.2f}" for d in differences)
                paired = (f"{mean:+.2f} ± {se:.2f} ({len(seeds)} seeds: {per_seed})"
                          if len(seeds) > 1 else f"{mean:+.2f} (seed {seeds[0]} only)")
        lines.append(
            f"| {name} | {len(entry['keras'])} | {entry['instructions'] / 1e6:.2f} "
            f"| {entry['bytes'] / 1024:.0f} | {_shown(val_mean, val_se)} "
            f"| {_shown(keras_mean, keras_se)} "
            f"| {_shown(lce_mean, lce_se)} | {_shown(agree_mean, agree_se)}% | {paired} |")
    lines.append("")
    lines.append("Mean ± standard error over seeds (no SE for one seed); "
                 "all 10,000 CIFAR-10 test images; every configuration trained with the "
                 "recipe campaign's protocol (`experiments/cifar10-recipe/`). Agreement: "
                 "test images on which the default export (int8 hyper weights, LCE "
                 "interpreter) gives the Keras model's top-1.")
    return "\n".join(lines) + "\n"


def paired(entry: dict, reference: dict) -> tuple[list[int], list[float]]:
    """Seeds both configurations have, and `entry` minus `reference` (test top-1 of the
    Keras models, points) on each."""
    seeds = sorted(set(entry["keras"]) & set(reference["keras"]))
    return seeds, [entry["keras"][s] - reference["keras"][s] for s in seeds]


def goal_table(found: dict[str, dict]) -> str:
    """The goal, per DyBNN configuration: ARM ratio to static x0.25, and its lead over
    static x0.25 and over the cost-matched static model, paired by seed."""
    static, matched = found.get(STATIC), found.get(COST_MATCHED)
    if static is None:
        return ""
    lines = [
        f"Goal: ARM ratio <= {GOAL_RATIO:.2f} and at least +{GOAL_POINTS} test points over "
        "static x0.25, paired, by more than 2 standard errors.",
        "",
        "| configuration | ARM / static x0.25 | minus static x0.25, paired (test, Keras) "
        "| minus the cost-matched static, paired | goal met |",
        "|---|---|---|---|---|",
    ]
    for name, entry in found.items():
        if not name.startswith("DyBNN"):
            continue
        ratio = entry["instructions"] / static["instructions"]
        seeds, differences = paired(entry, static)
        over_static = mean_se_text(differences)
        met = "-"
        if len(differences) > 1:
            mean, se = _mean_se(differences)
            met = ("yes" if ratio <= GOAL_RATIO and mean >= GOAL_POINTS and mean > 2 * se
                   else "no")
            if len(seeds) < 4:
                met += f" (so far, {len(seeds)} seeds)"
        over_matched = mean_se_text(paired(entry, matched)[1]) if matched else "-"
        lines.append(f"| {name} | {ratio:.3f} | {over_static} | {over_matched} | {met} |")
    return "\n".join(lines) + "\n"


def plot(found: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for axis, key, label in ((axes[0], "instructions", "aarch64 instructions per inference (M)"),
                             (axes[1], "bytes", ".tflite size, int8 hyper weights (KiB)")):
        for index, (name, entry) in enumerate(found.items()):
            x = entry[key] / (1e6 if key == "instructions" else 1024)
            values = list(entry["lce_int8"].values())
            mean, se = _mean_se(values)
            color = f"C{index}"
            axis.scatter([x] * len(values), values, s=12, alpha=0.35, color=color)
            axis.errorbar([x], [mean], yerr=[0 if se != se else se], fmt="o", capsize=3,
                          color=color, label=f"{name} ({len(values)} seed"
                          f"{'s' if len(values) > 1 else ''})")
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test top-1, LCE int8 file (%)")
    axes[0].legend(fontsize=7, loc="lower right")
    figure.suptitle("CIFAR-10, ReActNet-18 recipe: accuracy against device cost", fontsize=10)
    figure.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(FIGURE, dpi=110)


def main() -> int:
    found = collect()
    if not found:
        print("no results yet", file=sys.stderr)
        return 1
    goal = goal_table(found)
    write_report(TABLE, table(found) + ("\n" + goal if goal else ""))
    plot(found)
    print(TABLE.read_text())
    print(f"Wrote {TABLE.relative_to(REPO)} and {FIGURE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
