"""Execute notebooks in a real Jupyter kernel and store them with their outputs.

    python notebooks/execute.py                    # every notebook in notebooks/
    python notebooks/execute.py notebooks/zoo.ipynb

Each notebook runs top to bottom in its own folder (as Jupyter runs it), with
`LARQ_DYBNN_CIFAR10_DIR` pointing at the CIFAR-10 copy if it is not set. Execution
metadata (timings) is dropped so that a re-run changes only what the outputs show.
A notebook that fails is left as it was; the file is replaced atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(path: Path, *, cwd: Path | None = None, timeout: int = 900) -> nbformat.NotebookNode:
    """Run `path` in a fresh python3 kernel; raises nbclient's CellExecutionError."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    client.execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    return notebook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("LARQ_DYBNN_CIFAR10_DIR",
                          str(HERE.parent.parent / "shared" / "data" / "cifar10"))
    for path in args.notebooks or sorted(HERE.glob("*.ipynb")):
        started = time.perf_counter()
        notebook = execute(path)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".ipynb")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            nbformat.write(notebook, stream)
        os.replace(temporary, path)
        print(f"{path}: executed in {time.perf_counter() - started:.0f} s, "
              f"{path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
