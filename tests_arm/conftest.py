"""Fixtures of the emulated-aarch64 tests (`make test-arm`): the prepared environment,
and the helpers of the main suite's conftest."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("main_conftest", REPO / "tests" / "conftest.py")
main_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(main_conftest)

randomize_and_calibrate = main_conftest.randomize_and_calibrate
cifar10_test_batch = main_conftest.cifar10_test_batch  # a session fixture

#: LCE's kernel sources the op library is built from, and the environment's cache.
LCE_SOURCE = Path(os.environ.get(
    "LARQ_DYBNN_LCE_SOURCE", REPO.parent / "shared" / "third_party" / "lce-0.16.0-kernels"))
ARM_DIR = Path(os.environ.get("LARQ_DYBNN_ARM_DIR", REPO / ".arm"))


@pytest.fixture(scope="session")
def arm():
    """The emulated aarch64 environment (set up on first use, then reused)."""
    from larq_dybnn.device.emulation import prepare

    return prepare(ARM_DIR, lce_source=LCE_SOURCE, print_fn=lambda line: print(line))
