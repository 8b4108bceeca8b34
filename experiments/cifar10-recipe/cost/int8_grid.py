"""Does the export predict what was trained? DyBNN step 2 on the int8 grid against the
campaign's DyBNN, paired by seed, from committed records only.

Reads the campaign's `dybnn` runs (`campaign/results.csv`) and the grid runs
(`cost/int8-grid/results.csv`, made by `run_campaign.sh evaluate`), which started from
the same step-1 models with the same seeds, batches and schedule, and writes
`cost/int8-grid.md`: per seed validation and test top-1 (Keras, int8 LCE file) and how
often the int8 file gives the Keras model's top-1, then the paired differences (grid
minus float, and grid minus the campaign's static twin) with their standard errors.

    python experiments/cifar10-recipe/cost/int8_grid.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot import HERE, _rows, mean_se_text as _paired, write_report  # noqa: E402

OUTPUT = HERE / "int8-grid.md"
ARMS = {"float hyper kernels (campaign)": (HERE.parent / "campaign" / "results.csv", "dybnn"),
        "int8 grid": (HERE / "int8-grid" / "results.csv", "dybnn-int8-grid")}
FIELDS = {"val": "val_accuracy", "test, Keras": "test_accuracy",
          "test, int8 file": "lce_int8_accuracy", "int8 file agrees": "lce_int8_agreement"}


def table() -> str:
    rows = {arm: _rows(path, config) for arm, (path, config) in ARMS.items()}
    float_rows, grid_rows = rows.values()
    lines = ["# DyBNN step 2 on the int8 grid against float hyper kernels", "",
             "Made by `python experiments/cifar10-recipe/cost/int8_grid.py` from the committed "
             "records. DyBNN ReActNet-18 x0.25, ReActNet's recipe; the grid runs start from "
             "the campaign's step-1 models with its seeds, batches and schedule. Top-1 in %; "
             "validation on train[45000:], test on all 10,000 test images; agreement: test "
             "images on which the default export (int8 hyper weights, LCE interpreter) gives "
             "the Keras model's top-1.", "",
             "| seed | hyper kernels | " + " | ".join(FIELDS) + " |",
             "|---|---|" + "---|" * len(FIELDS)]
    for seed in sorted(float_rows):
        for arm, runs in rows.items():
            if seed in runs:
                lines.append(f"| {seed} | {arm} | " + " | ".join(
                    f"{100 * float(runs[seed][field]):.2f}" for field in FIELDS.values()) + " |")
    seeds = sorted(set(float_rows) & set(grid_rows))
    differences = {name: [100 * (float(grid_rows[s][field]) - float(float_rows[s][field]))
                          for s in seeds] for name, field in FIELDS.items()}
    lines.append(f"| **grid minus float, paired ({len(seeds)} seeds)** | | "
                 + " | ".join(_paired(values) for values in differences.values()) + " |")
    # Does DyBNN keep its lead over its static twin when trained on the grid?
    static = _rows(HERE.parent / "campaign" / "results.csv", "static")
    lines.append(f"| grid minus static x0.25, paired ({len(seeds)} seeds) | | " + " | ".join(
        _paired([100 * (float(grid_rows[s][field]) - float(static[s][field])) for s in seeds])
        for field in list(FIELDS.values())[:3]) + " | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    text = table()
    write_report(OUTPUT, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
