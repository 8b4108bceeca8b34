"""The experiment runner: sweep files, resumable runs, evaluation and aggregation."""

from __future__ import annotations

import csv
import json
import math
import threading
import time

import dataclasses
from pathlib import Path

import pytest
from conftest import REPO

from larq_dybnn_cli import build_parser, main
from larq_dybnn.sweep import results
from larq_dybnn.training.locks import lock_folder
from larq_dybnn.sweep.runner import (
    EVALUATE_LOCK, TRAIN_LOCK, load_spec, run_state, run_sweep, train_command)

SPEC = """
name = "tiny"
baseline = "static"
[train]
data = "digits"
train_split = "train[:1024]"
eval_split = "train[1024:]"
epochs = 1
batch_size = 128
seeds = [0, 1]
[configs.static]
model = "tiny-reactnet"
[configs.dynamic]
model = "tiny-dybnn"
seeds = [0]
"""


#: The sweep files committed with the experiments: campaigns resume from them in
#: later sessions, with the code of their own pinned commit or of this one.
EXPERIMENT_SWEEPS = sorted((REPO / "experiments").rglob("*.toml"))


def test_the_experiments_have_sweep_files():
    assert len(EXPERIMENT_SWEEPS) >= 2


@pytest.mark.parametrize("path", EXPERIMENT_SWEEPS,
                         ids=[p.relative_to(REPO / "experiments").as_posix()
                              for p in EXPERIMENT_SWEEPS])
def test_every_run_of_a_committed_sweep_file_passes_the_train_checks(path, tmp_path, monkeypatch):
    """A sweep file edited by hand fails here, not hours into a campaign: each run's
    train command parses and its options pass every check made before training."""
    from larq_dybnn.training import TrainConfig
    from larq_dybnn.training.config import check_config, train_config_options

    monkeypatch.chdir(tmp_path)  # the files' paths are relative to the campaign folder
    spec = load_spec(path)
    assert spec.runs
    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    parser = build_parser()
    for run in spec.runs:
        args = parser.parse_args(train_command(run, tmp_path / "runs" / run.key))
        config = TrainConfig(**train_config_options(args, fields))
        for model_file in filter(None, (config.init_from, config.teacher)):
            Path(model_file).parent.mkdir(parents=True, exist_ok=True)
            Path(model_file).touch()  # trained by an earlier run of the campaign
        check_config(config)


def _spec(tmp_path, text=SPEC):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_spec_orders_runs_seed_by_seed(tmp_path):
    spec = load_spec(_spec(tmp_path))
    assert [run.key for run in spec.runs] == [
        "static/seed-0", "dynamic/seed-0", "static/seed-1"]
    assert spec.baseline == "static" and spec.test_split == "test"
    assert [r.key for r in spec.select(["dynamic"])] == ["dynamic/seed-0"]
    command = train_command(spec.runs[1], tmp_path / "out")
    assert command[:1] == ["train"] and "--model" in command
    assert command[command.index("--model") + 1] == "tiny-dybnn"
    assert command[command.index("--seed") + 1] == "0"
    assert command[command.index("--train-split") + 1] == "train[:1024]"
    # The override reaches every run.
    assert {r.options["data"] for r in load_spec(_spec(tmp_path), data="x").runs} == {"x"}


@pytest.mark.parametrize("text, match", [
    (SPEC.replace('epochs = 1', 'epochz = 1'), r"\[train\]: unknown option `epochz`"),
    (SPEC.replace('model = "tiny-dybnn"', 'model = "tiny-dybnn"\nseed = 3'),
     r"\[configs.dynamic\]: `seed` is set by the sweep"),
    (SPEC.replace('seeds = [0]', 'seeds = [0, 0]'), "distinct integers"),
    (SPEC.replace('eval_split = "train[1024:]"', 'eval_split = "test[:100]"'),
     "held out from the training split"),
    (SPEC.replace('baseline = "static"', 'baseline = "nope"'), "`baseline` 'nope'"),
    ("name = 'x'", r"needs at least one \[configs.<name>\]"),
    (SPEC.replace("[configs.dynamic]", '[configs."../../escape"]'),
     "one plain folder name.*'../../escape'"),
    (SPEC.replace("[configs.dynamic]", '[configs."/tmp/x"]'), "one plain folder name"),
    (SPEC.replace("[configs.dynamic]", '[configs."a/b"]'), "one plain folder name"),
    (SPEC.replace('train_split = "train[:1024]"', 'train_split = "test"'),
     "`train_split` 'test' comes from the test split"),
    (SPEC.replace("[configs.static]", "[configs.static]\nevaluate = 1"),
     "`evaluate` must be true or false"),
    (SPEC.replace("seeds = [0, 1]", "seeds = [0, 1]\nevaluate = false"),
     r"\[train\]: `evaluate` belongs in a \[configs.<name>\] table"),
    (SPEC.replace("[configs.static]", "[configs.static]\nevaluate = false"),
     "`baseline` 'static' is not an evaluated configuration"),
    ("name = ", "not valid TOML"),
    # A switch takes true or false: "yes" (or 1) would count by truthiness.
    (SPEC.replace("[configs.dynamic]", '[configs.dynamic]\nint8_hyper_kernels = "yes"'),
     r"\[configs.dynamic\]: `int8_hyper_kernels` must be true or false, got 'yes'"),
    (SPEC.replace("[configs.dynamic]", "[configs.dynamic]\ndynamize = 1"),
     "`dynamize` must be true or false, got 1"),
    (SPEC.replace("epochs = 1", 'epochs = "1"'), r"\[train\]: `epochs` must be a TOML int"),
    (SPEC.replace("epochs = 1", "epochs = true"), "`epochs` must be a TOML int, got True"),
    (SPEC.replace("[configs.dynamic]", '[configs.dynamic]\nlearning_rate = "1e-3"'),
     "`learning_rate` must be a TOML float"),
])
def test_bad_spec_is_a_clear_error(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        load_spec(_spec(tmp_path, text))


RECIPE = """
baseline = "static"
[train]
data = "digits"
train_split = "train[:1024]"
eval_split = "train[1024:]"
seeds = [0, 1]
[configs.teacher]
model = "resnet-18"
seeds = [0]
evaluate = false
[configs.static]
model = "reactnet-18"
init_from = "{sweep_dir}/step1/seed-{seed}/model.keras"
teacher = "{sweep_dir}/teacher/seed-0/model.keras"
[configs.upgraded]
model = "reactnet-18"
dynamize = true
init_from = "{sweep_dir}/static/seed-{seed}/model.keras"
"""


def test_runs_name_earlier_runs_of_the_sweep(tmp_path):
    """{sweep_dir} and {seed} fill the paths of dependent runs; configurations with
    `evaluate = false` train but are neither evaluated nor tabled, and a run whose
    dependency is missing is an error naming both."""
    spec = load_spec(_spec(tmp_path, RECIPE))
    assert spec.evaluated == ["static", "upgraded"]
    assert [r.key for r in spec.runs] == [
        "teacher/seed-0", "static/seed-0", "upgraded/seed-0", "static/seed-1",
        "upgraded/seed-1"]
    out = tmp_path / "runs"
    command = train_command(spec.runs[3], out / "static/seed-1")
    assert command[command.index("--init-from") + 1] == str(out / "step1/seed-1/model.keras")
    assert command[command.index("--teacher") + 1] == str(out / "teacher/seed-0/model.keras")
    upgraded = train_command(spec.runs[2], out / "upgraded/seed-0")
    assert "--dynamize" in upgraded
    (out / "teacher/seed-0").mkdir(parents=True)
    (out / "teacher/seed-0/report.json").write_text("{}")  # counts as finished
    with pytest.raises(ValueError, match="Run static/seed-0 needs `init_from` "
                       ".*step1/seed-0/model.keras.*above this one"):
        run_sweep(spec, out, evaluate=False, print_fn=lambda _: None)
    assert not (out / "static/seed-0").exists()


def test_sweep_starts_runs_without_the_current_folder_on_the_path(tmp_path, monkeypatch):
    """A larq_dybnn_cli.py in the folder the sweep is started from is not imported,
    and a run that exits without its outputs is not reported as finished."""
    from larq_dybnn.sweep import runner

    marker = tmp_path / "pwned"
    (tmp_path / "larq_dybnn_cli.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(_spec(tmp_path))
    monkeypatch.setattr(runner, "train_command",
                        lambda run, folder: ["--help"])  # exits 0, writes nothing
    with pytest.raises(ValueError, match="exited without writing report.json, model.keras"):
        run_sweep(spec, tmp_path / "runs", evaluate=False, print_fn=lambda _: None)
    assert not marker.exists()


def test_paired_differences_by_seed():
    base = {f"protocol_{k}": 1 for k in results.PROTOCOL}
    rows = [{**base, "config": c, "seed": s, "val_accuracy": v, "test_accuracy": v,
             "lce_int8_accuracy": v}
            for c, s, v in [("a", 0, 0.60), ("a", 1, 0.70), ("a", 2, 0.65),
                            ("b", 0, 0.62), ("b", 1, 0.71), ("b", 3, 0.90)]]
    (entry,) = results.paired(rows, baseline="a")
    assert entry["seeds"] == [0, 1]  # seed 3 has no twin
    mean, se, diffs = entry["test_accuracy"]
    assert diffs == pytest.approx([0.02, 0.01])
    assert mean == pytest.approx(0.015)
    assert se == pytest.approx(math.sqrt(0.00005) / math.sqrt(2))
    table = results.paired_table([entry], baseline="a")
    assert "| b | 0, 1 |" in table and "+2.00, +1.00" in table


def test_protocol_counts_paths_into_the_sweep_as_one():
    assert results._protocol_value("init_from", "/x/runs/static-step1/seed-3/model.keras") \
        == results._protocol_value("init_from", "/x/runs/dybnn-step1/seed-0/model.keras")
    assert results._protocol_value("init_scheme", None) == "global"


def test_unknown_configuration_and_missing_file(tmp_path):
    spec = load_spec(_spec(tmp_path))
    with pytest.raises(ValueError, match="`only`: no configuration 'other'"):
        spec.select(["other"])
    with pytest.raises(FileNotFoundError, match="No sweep file"):
        load_spec(tmp_path / "missing.toml")


def test_sweep_trains_skips_evaluates_and_aggregates(tmp_path):
    # One seed per configuration (paired by seed 0): statistics over several seeds are
    # tested on hand-made rows (test_paired_differences_by_seed, test_summary_statistics_...).
    spec = load_spec(_spec(tmp_path, SPEC.replace("seeds = [0, 1]", "seeds = [0]")))
    out = tmp_path / "runs"
    lines = []
    states = run_sweep(spec, out, results_dir=tmp_path / "committed", print_fn=lines.append)
    assert [state for _, state in states] == ["done"] * 2
    for run in spec.runs:
        folder = out / run.key
        # Each run is an ordinary train output directory with its provenance.
        for name in ("config.json", "history.csv", "model.keras", "report.json",
                     "evaluation.json", "provenance.json", "train.log"):
            assert (folder / name).is_file(), (run.key, name)
        provenance = json.loads((folder / "provenance.json").read_text())
        assert provenance["config"] == run.config and provenance["seed"] == run.seed
        assert "commit" in provenance["sessions"][0]
        evaluation = json.loads((folder / "evaluation.json").read_text())
        assert evaluation["examples"] == 360  # the whole digits test split
        # Keras and the LCE interpreter agree on the trained tiny models.
        assert evaluation["lce_agreement"] >= 0.99
        assert evaluation["tflite_int8_bytes"] <= evaluation["tflite_bytes"]
        assert evaluation["evaluated_with"]["int8_hyper_weights"] == "dequantize"
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["config"], r["seed"]) for r in rows) == [
        ("dynamic", "0"), ("static", "0")]
    table = (out / "results.md").read_text()
    assert "| static | 1 |" in table and "| dynamic | 1 |" in table
    assert (out / "results.png").stat().st_size > 1000
    # The committed copy holds each run's small records, enough to rebuild the results.
    committed = tmp_path / "committed"
    assert (committed / "results.md").read_text() == table
    assert sorted(p.name for p in (committed / "runs/static/seed-0").iterdir()) == sorted(
        results.RECORDS)
    # A second call finds everything finished: nothing is trained again.
    mtime = (out / "static/seed-0/model.keras").stat().st_mtime
    lines.clear()
    run_sweep(spec, out, print_fn=lines.append)
    assert sum("finished, skipped" in line for line in lines) == 2
    assert (out / "static/seed-0/model.keras").stat().st_mtime == mtime
    # Finished runs can be evaluated while another sweep trains in the folder; a second
    # training, or a second evaluation, is refused with the holder's pid, and a sweep
    # that has trained waits for an evaluation running meanwhile instead of failing.
    with lock_folder(out, what="sweep", name=TRAIN_LOCK):
        run_sweep(spec, out, train=False, print_fn=lines.append)
        with pytest.raises(ValueError, match=r"in use by pid \d+ \(training\)"):
            run_sweep(spec, out, evaluate=False, print_fn=lines.append)
    evaluation = lock_folder(out, what="sweep", name=EVALUATE_LOCK)
    with pytest.raises(ValueError, match=r"in use by pid \d+ \(evaluation\)"):
        run_sweep(spec, out, train=False, print_fn=lines.append)
    lines.clear()
    waiting = threading.Thread(target=run_sweep, args=(spec, out),
                               kwargs={"print_fn": lines.append})
    waiting.start()
    deadline = time.monotonic() + 60
    while not any(line.startswith("Waiting for pid") for line in lines):
        assert time.monotonic() < deadline and waiting.is_alive(), lines
        time.sleep(0.05)
    evaluation.close()
    waiting.join(60)
    assert not waiting.is_alive() and any("results.md" in line for line in lines), lines


def test_summary_statistics_and_protocol_check():
    base = {f"protocol_{k}": 1 for k in results.PROTOCOL}

    def row(config, seed, acc):
        return {**base, "config": config, "seed": seed, "val_accuracy": acc,
                "test_accuracy": acc, "lce_accuracy": acc, "lce_int8_accuracy": acc,
                "lce_agreement": 1.0, "lce_int8_agreement": 1.0, "tflite_bytes": 1024,
                "tflite_int8_bytes": 512, "threshold_spread": None, "int8_form": "dequantize"}

    rows = [row("a", 0, 0.60), row("a", 1, 0.62), row("b", 0, 0.63), row("b", 1, 0.67)]
    summary = results.summarize(rows, baseline="a")
    b = summary[1]
    assert b["test_accuracy"][0] == pytest.approx(0.65)
    assert b["test_accuracy"][1] == pytest.approx(math.sqrt(0.0008))
    delta, se = b["test_accuracy_delta"]
    assert delta == pytest.approx(0.04)
    assert se == pytest.approx(math.sqrt(0.0002 / 2 + 0.0008 / 2))
    assert "+4.00 ±" in results.markdown_table(summary, baseline="a")
    with pytest.raises(ValueError, match="differ in epochs"):
        results.summarize(rows + [{**row("b", 2, 0.5), "protocol_epochs": 2}], baseline="a")
    with pytest.raises(ValueError, match="int8 files were evaluated in different forms"):
        results.summarize(rows + [{**row("b", 2, 0.5), "int8_form": "hybrid"}], baseline="a")


def test_resumes_an_unfinished_run(tmp_path):
    spec = load_spec(_spec(tmp_path, SPEC.replace("epochs = 1", "epochs = 2")))
    out = tmp_path / "runs"
    run = spec.select(["dynamic"])[0]
    # A run interrupted after its first epoch: train 1 of 2 epochs by hand with the
    # same options, then let the sweep finish it.
    folder = out / run.key
    folder.mkdir(parents=True)
    command = train_command(run, folder)
    command[command.index("--epochs") + 1] = "1"
    assert main([*command, "--quiet"]) == 0  # in this process: no second TensorFlow start
    (folder / "report.json").unlink()
    (folder / "config.json").write_text(
        (folder / "config.json").read_text().replace('"epochs": 1', '"epochs": 2'))
    assert run_state(folder) == "partial"
    run_sweep(spec, out, only=["dynamic"], evaluate=False, print_fn=lambda _: None)
    assert run_state(folder) == "done"
    assert "Resuming from the checkpoint after epoch 1" in (folder / "train.log").read_text()
