"""A campaign's state survives the machine: save copies what a later session needs
into the checkout, restore puts it back, and training resumes from the checkpoint."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("campaign_state",
                                               REPO / "experiments" / "campaign_state.py")
campaign_state = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(campaign_state)


def _tiny_model() -> tf.keras.Model:
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    model.compile("adam", "mse")
    model.fit(np.ones((8, 4)), np.ones((8, 3)), epochs=1, verbose=0)  # optimizer state
    return model


def test_a_finished_model_is_saved_without_its_optimizer_state(tmp_path):
    model = _tiny_model()
    model.save(tmp_path / "full.keras")
    assert campaign_state.slim_model(tmp_path / "full.keras", tmp_path / "slim.keras")
    slim = tf.keras.models.load_model(tmp_path / "slim.keras")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(slim(x).numpy(), model(x).numpy())
    assert slim.optimizer is None
    assert (tmp_path / "slim.keras").stat().st_size < (tmp_path / "full.keras").stat().st_size


def _run(folder: Path, *, epochs: int, finished: bool) -> tf.Variable:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "reactnet-18", "seed": 0}))
    (folder / "history.csv").write_text("epoch,loss\n" + "".join(
        f"{e},{1 / (e + 1)}\n" for e in range(epochs)))
    weight = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(weight=weight),
                                         str(folder / "checkpoints"), max_to_keep=2)
    for epoch in range(epochs):
        weight.assign(float(epoch + 1))
        manager.save(checkpoint_number=epoch + 1)
    if finished:
        (folder / "report.json").write_text("{}")
        _tiny_model().save(folder / "model.keras")
    (folder / "train.log").write_text("not kept")
    return weight


def test_save_then_restore_resumes_from_the_newest_checkpoint(tmp_path):
    runs, state = tmp_path / "runs", tmp_path / "state"
    _run(runs / "sweep" / "teacher" / "seed-0", epochs=2, finished=True)
    _run(runs / "sweep" / "static" / "seed-0", epochs=3, finished=False)
    campaign_state.save(runs, state, ["sweep"], weights=True)

    teacher = state / "sweep" / "teacher" / "seed-0"
    assert (teacher / "model.keras").is_file()
    assert not (teacher / "checkpoints").exists() and not (teacher / "train.log").exists()
    partial = state / "sweep" / "static" / "seed-0" / "checkpoints"
    assert sorted(p.name for p in partial.iterdir()) == [
        "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index"]

    fresh = tmp_path / "fresh"
    campaign_state.restore(fresh, state)
    weight = tf.Variable(0.0)
    restored = tf.train.CheckpointManager(tf.train.Checkpoint(weight=weight),
                                          str(fresh / "sweep" / "static" / "seed-0" / "checkpoints"),
                                          max_to_keep=2)
    restored.checkpoint.restore(restored.latest_checkpoint).assert_existing_objects_matched()
    assert float(weight.numpy()) == 3.0
    assert (fresh / "sweep" / "teacher" / "seed-0" / "report.json").is_file()


def test_a_finished_run_replaces_its_checkpoint_and_restore_keeps_existing_runs(tmp_path):
    runs, state = tmp_path / "runs", tmp_path / "state"
    folder = runs / "sweep" / "dybnn" / "seed-1"
    _run(folder, epochs=1, finished=False)
    campaign_state.save(runs, state, ["sweep"], weights=True)
    assert (state / "sweep" / "dybnn" / "seed-1" / "checkpoints").is_dir()
    (folder / "report.json").write_text("{}")
    _tiny_model().save(folder / "model.keras")
    campaign_state.save(runs, state, ["sweep"], weights=False)
    kept = state / "sweep" / "dybnn" / "seed-1"
    assert not (kept / "checkpoints").exists() and not (kept / "model.keras").exists()
    assert (kept / "report.json").is_file()
    # A run folder that already exists is never overwritten by restore.
    (folder / "history.csv").write_text("local")
    campaign_state.restore(runs, state)
    assert (folder / "history.csv").read_text() == "local"


def test_finished_only_saves_finished_runs_and_leaves_unfinished_ones_as_kept(tmp_path):
    runs, state = tmp_path / "runs", tmp_path / "state"
    _run(runs / "sweep" / "static" / "seed-0", epochs=2, finished=True)
    _run(runs / "sweep" / "static" / "seed-1", epochs=3, finished=False)
    campaign_state.main(["save", "sweep", "--finished-only", "--runs", str(runs),
                         "--state", str(state)])
    assert (state / "sweep" / "static" / "seed-0" / "model.keras").is_file()
    assert not (state / "sweep" / "static" / "seed-1").exists()
    # An unfinished run's earlier save stays as it was, older checkpoint included.
    campaign_state.save(runs, state, ["sweep"], weights=True)
    kept = sorted(p.name for p in (state / "sweep" / "static" / "seed-1" / "checkpoints").iterdir())
    _run(runs / "sweep" / "static" / "seed-2", epochs=1, finished=False)
    history = runs / "sweep" / "static" / "seed-1" / "history.csv"
    history.write_text(history.read_text() + "3,0.2\n")
    campaign_state.save(runs, state, ["sweep"], weights=True, finished_only=True)
    assert sorted(p.name for p in (state / "sweep" / "static" / "seed-1" / "checkpoints").iterdir()) == kept
    assert (state / "sweep" / "static" / "seed-1" / "history.csv").read_text() != history.read_text()
    assert not (state / "sweep" / "static" / "seed-2").exists()


def test_a_step1_model_is_dropped_once_its_step2_has_finished(tmp_path):
    """`--drop-consumed`: a model kept only to start step 2 leaves the state when every
    run it starts has finished, and stays while one has not."""
    runs = tmp_path / "campaign" / "runs"
    sweep = runs / "sweep"
    for seed, finished in ((0, True), (1, False)):
        _run(sweep / "step1" / f"seed-{seed}", epochs=1, finished=True)
        step2 = sweep / "step2" / f"seed-{seed}"
        _run(step2, epochs=1, finished=finished)
        (step2 / "config.json").write_text(json.dumps({
            "model": "reactnet-18", "seed": seed,
            "init_from": f"runs/sweep/step1/seed-{seed}/model.keras"}))
    state = tmp_path / "state"
    campaign_state.save(runs, state, ["sweep"], weights=True)
    assert (state / "sweep/step1/seed-0/model.keras").is_file()
    campaign_state.save(runs, state, ["sweep"], weights=True, drop_consumed=True)
    assert not (state / "sweep/step1/seed-0/model.keras").exists()  # its step 2 is done
    assert (state / "sweep/step1/seed-1/model.keras").is_file()  # still needed
    assert (state / "sweep/step2/seed-0/model.keras").is_file()  # starts nothing: kept
    assert (state / "sweep/step1/seed-0/report.json").is_file()  # records stay


def test_saved_provenance_names_no_path_of_the_training_machine(tmp_path):
    runs = tmp_path / "runs"
    _run(runs / "sweep" / "a" / "seed-0", epochs=1, finished=True)
    (runs / "sweep/a/seed-0/provenance.json").write_text(json.dumps({
        "sweep_file": "/home/someone/larq-dybnn/experiments/x.toml",
        "sessions": [{"commit": "abc", "package_path": "/home/someone/venv/larq_dybnn"}]}))
    campaign_state.save(runs, tmp_path / "state", ["sweep"], weights=False)
    kept = json.loads((tmp_path / "state/sweep/a/seed-0/provenance.json").read_text())
    assert kept == {"sweep_file": "x.toml", "sessions": [{"commit": "abc"}]}
