"""The notebooks: stored executed (they read on a repository page), and each runs top
to bottom in a real Jupyter kernel from a clean working directory (with papermill, on
the small values of its `parameters` cell)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from conftest import CIFAR10_DIR, _require

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Notebooks that plot: each must store at least one image.
PLOTTING = {"zoo.ipynb", "deployment.ipynb"}


def test_the_notebooks_are_there():
    assert {"quickstart.ipynb", "zoo.ipynb", "deployment.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_with_small_outputs(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    code = [cell for cell in cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code), "not executed top to bottom"
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert sum(output.output_type in ("stream", "execute_result", "display_data")
               for output in outputs) >= len(code) // 2
    assert not [o for o in outputs if o.output_type == "error"]
    # No warnings or log noise; TFLite's one-line "INFO: Created ... delegate" is allowed.
    noise = [line for o in outputs if o.output_type == "stream" and o.name == "stderr"
             for line in o.text.splitlines() if line.strip() and not line.startswith("INFO:")]
    assert not noise, noise
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    if notebook.name in PLOTTING:
        assert images, "plots must be stored as images"
    assert notebook.stat().st_size < 400_000, "keep the stored outputs small"


#: Small values for each notebook's `parameters` cell: the same cells run, on fewer
#: images, epochs and timed runs than the stored (full) run.
SMALL = {
    "quickstart.ipynb": {"EPOCHS": 2, "TRAIN_EPOCHS": 1},
    "zoo.ipynb": {"TEST_IMAGES": 250, "PROBE_IMAGES": 64, "FINE_TUNE_IMAGES": 250},
    "deployment.ipynb": {"TEST_IMAGES": 100, "PARITY_IMAGES": 50, "LATENCY_RUNS": 1},
}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_parameters_cell_with_the_small_values(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "one cell tagged `parameters` (papermill's convention)"
    names = {line.split("=")[0].strip() for line in tagged[0].source.splitlines()
             if "=" in line and not line.startswith("#")}
    assert names == set(SMALL[notebook.name])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_a_jupyter_kernel(notebook, tmp_path, monkeypatch):
    """As a user's Jupyter runs it, with small parameters; any cell error fails."""
    import papermill

    _require(CIFAR10_DIR / "cifar10-test-jpg.tar.gz")
    monkeypatch.setenv("LARQ_DYBNN_CIFAR10_DIR", str(CIFAR10_DIR))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    executed = papermill.execute_notebook(
        str(notebook), str(tmp_path / notebook.name), parameters=SMALL[notebook.name],
        kernel_name="python3", cwd=str(tmp_path), progress_bar=False, log_output=False,
    )
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    tags = [cell.metadata.get("tags", []) for cell in code]
    assert "injected-parameters" in tags[tags.index(["parameters"]) + 1]
    if notebook.name == "deployment.ipynb":  # it wrote its files where it ran
        assert (tmp_path / "exported" / "dybnn_reactnet18_cifar10.tflite").is_file()
