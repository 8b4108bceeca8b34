"""The cost study's step-1 screen summary (`experiments/cifar10-recipe/cost/screen.py`):
it pairs every screened configuration with the campaign's step-1 runs seed by seed,
flags runs of another commit than the pinned one, and names the configuration best on
validation only once every configuration has every seed."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from conftest import cost_script

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN = REPO / "experiments" / "cifar10-recipe"


def _screen():
    return cost_script("screen")


def _run(folder: Path, val: float, commit: str, epochs: int = 15) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"epochs": epochs}))
    rows = ["epoch,accuracy,val_accuracy"] + [f"{e},0.5,{val if e == epochs - 1 else 0.1}"
                                               for e in range(epochs)]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    (folder / "provenance.json").write_text(json.dumps({"sessions": [{"commit": commit}]}))


def test_the_screen_pairs_by_seed_and_chooses_only_when_complete(tmp_path):
    screen = _screen()
    sweep = tomllib.loads((CAMPAIGN / "cost-screen.toml").read_text())
    pinned = (CAMPAIGN / "cost.commit").read_text().strip()
    first, second = list(sweep["configs"])[:2]
    for seed in range(4):
        _run(tmp_path / "cifar10-recipe" / "dybnn-step1" / f"seed-{seed}", 0.81, "c996189")
        _run(tmp_path / "cifar10-recipe" / "static-step1" / f"seed-{seed}", 0.80, "c996189")
        _run(tmp_path / sweep["name"] / first / f"seed-{seed}", 0.81 + seed / 1000, pinned)
    # Three seeds of the second, one of them at another commit, one unfinished.
    for seed in range(3):
        _run(tmp_path / sweep["name"] / second / f"seed-{seed}", 0.82, "0000000" if seed else pinned)
    _run(tmp_path / sweep["name"] / second / "seed-3", 0.90, pinned, epochs=15)
    (tmp_path / sweep["name"] / second / "seed-3" / "history.csv").write_text(
        "epoch,accuracy,val_accuracy\n0,0.5,0.9\n")
    output = tmp_path / "screen.md"
    assert screen.main(["--runs", str(tmp_path), "--output", str(output)]) == 0
    text = output.read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {first} |"))
    # 81.0, 81.1, 81.2, 81.3 minus 81: mean +0.15, SE 0.0645; minus static 80: +1.15.
    assert "| 4 | 81.15 ± 0.06 | +0.15 ± 0.06 | +1.15 ± 0.06 |" in row
    other = next(line for line in text.splitlines() if line.startswith(f"| {second} |"))
    assert "| 3 | 82.00 ± 0.00 |" in other and f"(pinned: {pinned[:7]})" in other
    assert "no choice yet" in text
    # The unfinished seed finishes: the best on validation is named.
    _run(tmp_path / "x", 0.0, pinned)
    (tmp_path / sweep["name"] / second / "seed-3" / "history.csv").write_text(
        (tmp_path / "x" / "history.csv").read_text().replace(",0.0\n", ",0.83\n"))
    screen.main(["--runs", str(tmp_path), "--output", str(output)])
    assert f"**{second}** is best on validation" in output.read_text()


def test_a_folder_without_the_campaign_is_refused(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as stopped:
        _screen().main(["--runs", str(tmp_path / "nothing"), "--output", str(tmp_path / "s.md")])
    assert stopped.value.code == 2 and "--runs" in capsys.readouterr().err
    assert not (tmp_path / "s.md").exists()
