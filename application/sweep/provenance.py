"""What a run was trained or evaluated with: commit, versions, machine."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

__all__ = ["provenance"]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance() -> dict:
    """The commit and versions of the installed package a run uses.

    The commit is that of the checkout the package is installed from (an editable
    install), never of the folder the sweep happens to start in; a regular install
    has none unless `LARQ_DYBNN_COMMIT` names it (as the campaign scripts do).
    """
    import larq
    import larq_compute_engine
    import tensorflow as tf

    import larq_dybnn

    checkout = Path(larq_dybnn.__file__).resolve().parents[1]
    editable = (checkout / "setup.py").is_file() and (checkout / "larq_dybnn").is_dir()
    commit = os.environ.get("LARQ_DYBNN_COMMIT")
    dirty = None
    if commit is None and editable:
        commit = _git("-C", str(checkout), "rev-parse", "HEAD")
        if commit is not None:
            dirty = bool(_git("-C", str(checkout), "status", "--porcelain",
                              "--untracked-files=no"))
    return {
        "commit": commit, "dirty": dirty, "larq_dybnn": larq_dybnn.__version__,
        "installed": "editable" if editable else "regular",
        "tensorflow": tf.__version__, "larq": larq.__version__,
        "larq_compute_engine": larq_compute_engine.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
