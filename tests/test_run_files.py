"""The files a training run keeps: trimmed history on resume, plots, model catalog."""

from __future__ import annotations

import numpy as np
import pytest

from larq_dybnn.training.checkpoints import trim_history
from larq_dybnn.training.monitoring import ThresholdStats
from larq_dybnn.training.plots import plot_history, plot_thresholds, read_history
from larq_dybnn.zoo import CATALOG, build_model, is_binary


def test_trim_history_drops_epochs_that_will_be_redone(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")
    trim_history(path, epochs=2)
    assert path.read_text() == "epoch,loss\n0,2.0\n1,1.5\n"
    trim_history(path, epochs=5)  # nothing to drop
    assert read_history(path) == {"epoch": [0.0, 1.0], "loss": [2.0, 1.5]}
    trim_history(tmp_path / "missing.csv", epochs=0)  # a fresh run has none


def test_plots_are_written_atomically_as_png(tmp_path, rng):
    history = {"epoch": [0, 1, 2], "loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.8],
               "accuracy": [0.2, 0.6, 0.8], "val_accuracy": [0.2, 0.5, 0.7]}
    plot_history(history, tmp_path / "curves.png")
    stats = [ThresholdStats(f"layer{i}", i > 0, rng.normal(size=(50, 16)).astype(np.float32))
             for i in range(6)]
    shown = plot_thresholds(stats, tmp_path / "thresholds.png", layers=3)
    assert shown == ["layer0", "layer2", "layer5"]  # first, middle and last
    for name in ("curves.png", "thresholds.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "thresholds.png"]
    with pytest.raises(ValueError, match="No thresholds"):
        plot_thresholds([], tmp_path / "x.png")
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="has no epochs"):
        read_history(empty)


@pytest.mark.parametrize("name", list(CATALOG))
@pytest.mark.parametrize("binary_weights", [True, False], ids=["step2", "step1"])
def test_every_catalog_model_builds_for_cifar_and_digits(name, binary_weights):
    if name.endswith("reactnet-a"):  # total stride 16 with the CIFAR stem
        with pytest.raises(ValueError, match="at least 16x16"):
            build_model(name, input_shape=(8, 8, 3), num_classes=10)
    sizes = (32,) if name.endswith("reactnet-a") else (32, 8)
    for size in sizes:
        model = build_model(name, input_shape=(size, size, 3), num_classes=10,
                            width_multiplier=0.125, binary_weights=binary_weights)
        assert model.output_shape == (None, 10)
    quantized = [layer.kernel_quantizer for layer in model.layers
                 if hasattr(layer, "kernel_quantizer")]
    assert bool(quantized) == is_binary(name)
    assert all((q is not None) == binary_weights for q in quantized)
    with pytest.raises(ValueError, match="Unknown model 'vgg'"):
        build_model("vgg", input_shape=(8, 8, 3), num_classes=10)


def test_a_failed_model_save_leaves_the_old_file_and_no_temporary(tmp_path):
    from larq_dybnn._io import atomic_save_model

    class FailsHalfway:
        def save(self, path, overwrite=True):
            with open(path, "w") as handle:
                handle.write("half a model")
            raise RuntimeError("disk full")

    target = tmp_path / "model.keras"
    target.write_text("previous model")
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save_model(FailsHalfway(), target)
    assert target.read_text() == "previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_each_run_file_name_is_spelled_in_one_place():
    """The run folder's file names are string constants of RunFolder only."""
    import ast
    from pathlib import Path

    from larq_dybnn.training.run_folder import RunFolder

    names = {*RunFolder.RUN_FILES, *RunFolder.SWEEP_FILES, *RunFolder.RUN_FOLDERS,
             RunFolder.WORKERS} - {".lock"}
    repo = Path(__file__).resolve().parents[1]
    spelled = []
    for path in sorted((repo / "application").rglob("*.py")):
        if path.name == "run_folder.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                spelled.append(f"{path.relative_to(repo)}:{node.lineno} {node.value!r}")
    # report.json's "plots" key is a record field, not a folder name.
    assert [s for s in spelled if not s.endswith("'plots'")] == [], spelled


def test_the_record_has_a_format_version_and_old_records_migrate(tmp_path):
    import json

    from larq_dybnn.training.run_folder import FORMAT, RunFolder, migrate

    folder = RunFolder(tmp_path)
    folder.write_record({"model": "dybnn-reactnet-18", "seed": 0})
    written = json.loads(folder.config.read_text())
    assert written["format"] == FORMAT == 2 and written["record"] == "larq-dybnn training run"
    assert folder.read_record() is None  # nothing trained here yet
    folder.checkpoints.mkdir()
    assert folder.read_record()["model"] == "dybnn-reactnet-18"
    # A version-1 record (no format key): the options added later, as runs were built.
    old = migrate({"model": "dybnn-reactnet-18", "reduction": None, "init_scheme": None})
    assert (old["reduction"], old["init_scheme"], old["dynamize"], old["hyper_pool_stride"],
            old["format"]) == (16, "global", False, 1, 2)
    assert migrate(old) == old
    assert migrate({"model": "reactnet-18", "format": 2}) == {"model": "reactnet-18",
                                                              "format": 2}
