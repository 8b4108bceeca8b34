"""The emulated-aarch64 tooling's checks that need no emulator: a clear error off
Debian or without root, and bad arguments named (the parity itself runs in
`make test-arm`)."""

from __future__ import annotations

import pytest

from larq_dybnn.device import emulation as environment
from larq_dybnn.device.emulation import ArmSetupError, build_op_library
from larq_dybnn_cli import main


def test_setup_off_debian_or_without_root_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(environment.shutil, "which",
                        lambda program: "/usr/bin/apt-get" if program == "apt-get" else None)
    monkeypatch.setattr(environment.os, "geteuid", lambda: 1000)
    with pytest.raises(ArmSetupError, match="needs root .* qemu-user g\\+\\+-aarch64"):
        environment._host_tools(print)
    real_is_file = environment.Path.is_file
    monkeypatch.setattr(environment.Path, "is_file", lambda self: False if str(self) ==
                        "/etc/debian_version" else real_is_file(self))
    with pytest.raises(ArmSetupError, match="not Debian"):
        environment._host_tools(print)


def test_an_lce_source_without_kernels_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="`lce_source`: no '.*bconv2d.cc'"):
        build_op_library(tmp_path, tmp_path / "lib")


def test_verify_arm_names_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LARQ_DYBNN_LCE_SOURCE", raising=False)
    assert main(["verify-arm", str(tmp_path / "none.tflite"), "--lce-source", "x"]) == 2
    assert "No model at" in capsys.readouterr().err
    path = tmp_path / "cut.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 10)
    assert main(["verify-arm", str(path), "--lce-source", "x"]) == 2
    assert "is not a whole TFLite model" in capsys.readouterr().err


def test_the_device_runner_never_writes_over_its_inputs(tmp_path, capsys):
    """The runner needs tflite-runtime (aarch64 here only under qemu); its argument
    checks come first and run anywhere."""
    import numpy as np

    import larq_dybnn_runtime

    inputs = tmp_path / "x.npy"
    np.save(inputs, np.zeros((1, 8, 8, 3), np.float32))
    before = inputs.read_bytes()
    assert larq_dybnn_runtime.main([str(tmp_path / "m.tflite"), "--library", "lib.so",
                                    "--inputs", str(inputs), "--outputs", str(inputs)]) == 2
    assert "refusing to overwrite it" in capsys.readouterr().err
    assert inputs.read_bytes() == before


def test_verify_arm_without_prepared_sources_says_how_to_prepare_them(tmp_path, capsys):
    from larq_dybnn.converter.conversion import export_tflite
    from larq_dybnn.zoo import build_model

    path = tmp_path / "tiny.tflite"
    path.write_bytes(export_tflite(build_model("tiny-dybnn", input_shape=(8, 8, 3),
                                               num_classes=10)))
    missing = tmp_path / "lce"
    assert main(["verify-arm", str(path), "--lce-source", str(missing),
                 "--arm-dir", str(tmp_path / "arm")]) == 2
    assert f"larq-dybnn lce-sources {missing}" in capsys.readouterr().err
    assert not (tmp_path / "arm").exists()


def test_the_old_module_name_warns_and_still_works():
    import importlib
    import sys
    import warnings

    from larq_dybnn.device import verify

    sys.modules.pop("larq_dybnn.arm", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("larq_dybnn.arm")
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert messages and "larq_dybnn.device.emulation" in messages[0]
    assert old.prepare is environment.prepare and old.verify_arm is verify.verify_arm


def test_one_set_of_kernel_names_on_x86_and_on_the_device():
    import warnings

    import larq_dybnn_runtime
    from larq_dybnn.converter.interpreter import KERNELS as X86_KERNELS
    from larq_dybnn.device.verify import DEVICE_KERNELS

    assert set(DEVICE_KERNELS) <= set(larq_dybnn_runtime.KERNELS) & set(X86_KERNELS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert larq_dybnn_runtime.kernel_name("indirect") == "indirect_bgemm"
    assert "use 'indirect_bgemm'" in str(caught[0].message)
    assert larq_dybnn_runtime.kernel_name("bgemm") == "bgemm"
    with pytest.raises(ValueError, match="`kernel` must be one of"):
        larq_dybnn_runtime.kernel_name("fast")
