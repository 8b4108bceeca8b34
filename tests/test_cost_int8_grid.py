"""The int8-grid summary (`experiments/cifar10-recipe/cost/int8_grid.py`): it pairs the
grid runs with the float-trained DyBNN and the static twin seed by seed, only over the
seeds both have, with the standard error of the paired differences."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import cost_script

FIELDS = ("val_accuracy", "test_accuracy", "lce_int8_accuracy", "lce_int8_agreement")


def _module():
    return cost_script("int8_grid")


def _results(path: Path, config: str, values: dict[int, float]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["config", "seed", *FIELDS])
        writer.writeheader()
        for seed, value in values.items():
            writer.writerow({"config": config, "seed": seed, **dict.fromkeys(FIELDS, value)})
    return path


def test_grid_minus_float_is_paired_over_the_seeds_both_have(tmp_path, monkeypatch):
    module = _module()
    floats = _results(tmp_path / "campaign.csv", "dybnn", {0: 0.80, 1: 0.82, 2: 0.81})
    grid = _results(tmp_path / "grid.csv", "dybnn-int8-grid", {0: 0.81, 1: 0.84})
    monkeypatch.setattr(module, "ARMS", {"float": (floats, "dybnn"),
                                         "grid": (grid, "dybnn-int8-grid")})
    monkeypatch.setattr(module, "HERE", tmp_path / "cost")
    (tmp_path / "campaign").mkdir()
    _results(tmp_path / "campaign" / "results.csv", "static", {0: 0.79, 1: 0.80, 2: 0.80})
    text = module.table()
    # Seeds 0 and 1: differences +1 and +2 points, mean +1.50, SE 0.50; seed 2 unpaired.
    assert "| **grid minus float, paired (2 seeds)** | | +1.50 ± 0.50 |" in text
    # Against static: +2 and +4 points.
    assert "| grid minus static x0.25, paired (2 seeds) | | +3.00 ± 1.00 |" in text
    assert "| 2 | grid |" not in text and "| 2 | float |" in text
