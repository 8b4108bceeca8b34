"""Installed layout: the library (larq_dybnn with its zoo and converter), the training
application (larq_dybnn.training, larq_dybnn.sweep) and the command line's parser
(larq_dybnn_cli), no top-level `zoo` or `converter`, for editable and regular installs
alike; importing the library does not load the application, and the command line's
help loads no TensorFlow."""

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
    assert {"larq_dybnn", "larq_dybnn_cli.py"} <= top_level
    assert not top_level & {"zoo", "converter", "application", "training", "sweep",
                            "commands", "tests", "notebooks"}, top_level
    assert (target / "larq_dybnn" / "zoo" / "tiny.py").exists()
    assert (target / "larq_dybnn" / "converter" / "export.py").exists()
    assert (target / "larq_dybnn" / "training" / "loop.py").exists()
    assert (target / "larq_dybnn" / "sweep" / "runner.py").exists()
    assert (target / "larq_dybnn" / "commands" / "__init__.py").exists()
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


LIBRARY_ONLY = """
import sys
import larq_dybnn
from larq_dybnn import DynamicPReLU, DynamicSign, HyperFunction, mac_counts, summary
loaded = sorted(m for m in sys.modules if m.startswith("larq_dybnn"))
print(" ".join(loaded))
"""


def test_importing_the_library_does_not_load_the_training_application(tmp_path):
    result = subprocess.run([sys.executable, "-c", LIBRARY_ONLY], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(result.stdout.split())
    assert "larq_dybnn.quantizers" in loaded and "larq_dybnn.layers" in loaded
    application = {m for m in loaded
                   if m.startswith(("larq_dybnn.training", "larq_dybnn.sweep",
                                    "larq_dybnn.commands"))}
    assert not application, application


HELP = """
import contextlib, io, sys
import larq_dybnn_cli
commands = ["demo", "train", "sweep", "evaluate", "convert", "inspect"]
for argv in [["--help"]] + [[name, "--help"] for name in commands]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        larq_dybnn_cli.main(argv)
    assert "usage: larq-dybnn" in out.getvalue(), argv
loaded = [m for m in ("tensorflow", "larq", "larq_dybnn") if m in sys.modules]
print("loaded:", loaded)
"""


def test_command_line_help_loads_no_tensorflow(tmp_path):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, "-c", HELP], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "loaded: []"
    assert result.stderr == ""  # no TensorFlow start-up lines
