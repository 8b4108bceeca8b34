"""Installed layout: larq_dybnn, larq_dybnn.zoo and larq_dybnn.converter, and no
top-level `zoo` or `converter`, for editable and regular installs alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECK = """
import importlib, sys
import larq_dybnn, larq_dybnn.zoo, larq_dybnn.converter
assert hasattr(larq_dybnn.zoo, "TinyDyBNN") and hasattr(larq_dybnn.converter, "export_tflite")
for name in ("zoo", "converter"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        pass
    else:
        sys.exit(f"top-level {name!r} is importable")
print(larq_dybnn.__file__)
print(larq_dybnn.zoo.__file__)
"""


def _run_check(cwd: Path, extra_path: str | None = None) -> list[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    if extra_path:
        env["PYTHONPATH"] = extra_path
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_development_install_from_outside_the_repo(tmp_path):
    """The test environment's own (editable) install."""
    package_file, zoo_file = _run_check(tmp_path)
    assert Path(package_file).parent.name == "larq_dybnn"
    assert Path(zoo_file).parent.name in ("zoo", "larq_dybnn")


@pytest.mark.skipif(not (REPO / "setup.py").exists(), reason="needs the source tree")
def test_regular_install_from_outside_the_repo(tmp_path):
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(REPO)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    top_level = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert "larq_dybnn" in top_level
    assert not top_level & {"zoo", "converter", "tests", "notebooks"}, top_level
    assert (target / "larq_dybnn" / "zoo" / "tiny.py").exists()
    assert (target / "larq_dybnn" / "converter" / "export.py").exists()
    # The shipped weights are package data of the built wheel, not only source files.
    shipped = REPO / "zoo" / "pretrained"
    for item in (json.loads((shipped / "manifest.json").read_text())
                 if (shipped / "manifest.json").exists() else []):
        installed = target / "larq_dybnn" / "zoo" / "pretrained" / item["file"]
        assert installed.read_bytes() == (shipped / item["file"]).read_bytes()
    if (shipped / "manifest.json").exists():
        assert (target / "larq_dybnn" / "zoo" / "pretrained" / "manifest.json").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    package_file, zoo_file = _run_check(elsewhere, extra_path=str(target))
    assert Path(package_file).is_relative_to(target)
    assert Path(zoo_file).is_relative_to(target / "larq_dybnn" / "zoo")
