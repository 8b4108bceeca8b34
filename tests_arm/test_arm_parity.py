"""Exported models on LCE's aarch64 kernels (bgemm and indirect bgemm, the code
phones and Raspberry Pis run), emulated with qemu: the same outputs as LCE's x86
interpreter, for every zoo architecture, dynamic and static, float and int8 hyper
weights, a CIFAR and an ImageNet-stem input, and for the shipped CIFAR-10 weights on
real test images."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import randomize_and_calibrate

from larq_dybnn.device.verify import DEVICE_KERNELS, ArmCheck, run_on_arm, verify_arm
from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.converter.parity import Parity
from larq_dybnn.zoo import build_model

# (model, input size, stem, int8 hyper weights). DyBNN models with both hyper-weight
# forms at the CIFAR size; at a small ImageNet-stem size ReActNet-18 with both forms
# and ReActNet-A (the slowest conversion) with the export default, int8.
CASES = [
    ("dybnn-reactnet-18", 32, "cifar", False), ("dybnn-reactnet-18", 32, "cifar", True),
    ("reactnet-18", 32, "cifar", False),
    ("dybnn-reactnet-18", 64, "imagenet", False), ("dybnn-reactnet-18", 64, "imagenet", True),
    ("reactnet-18", 64, "imagenet", False),
    ("dybnn-reactnet-a", 32, "cifar", False), ("dybnn-reactnet-a", 32, "cifar", True),
    ("reactnet-a", 32, "cifar", False),
    ("dybnn-reactnet-a", 64, "imagenet", True),
]


def _assert_matches_x86(check, *, exact: bool = True, flipped: int = 0):
    """ARM against x86 LCE. The binary kernels compute exactly; the float ops (MEAN,
    FC, ADD, the output transform of a binary conv) of the builds sum in other orders,
    and in a deep DyBNN a rounding difference can flip one binary activation near its
    threshold and move that sample's later thresholds (as the x86 conversion tests
    allow). `flipped` samples may differ that way (their outputs, not the others');
    `exact=False` allows it for a few samples of random models."""
    parity = check.vs_x86
    assert parity.non_finite == 0, check
    if exact:
        off = round(parity.samples * (1 - parity.close_fraction))
        disagree = round(parity.samples * (1 - parity.top1_agreement))
        assert off <= flipped and disagree <= flipped, check
        if not flipped:
            assert parity.max_abs_diff < 1e-3, check
    else:
        assert parity.top1_agreement >= 0.9, check
        assert parity.close_fraction >= 0.85, check


@pytest.mark.parametrize("name, size, stem, int8", CASES,
                         ids=[f"{n}-{s}-{'int8' if i else 'float'}" for n, s, _, i in CASES])
def test_arm_kernels_match_x86_lce(arm, tmp_path, name, size, stem, int8):
    model = build_model(name, input_shape=(size, size, 3), num_classes=10,
                        width_multiplier=0.25, stem=stem)
    x = np.random.default_rng(size).normal(size=(16, size, size, 3)).astype(np.float32)
    randomize_and_calibrate(model, x, seed=7)
    path = tmp_path / "model.tflite"
    path.write_bytes(export_tflite(model, int8_hyper_weights=int8))
    checks = verify_arm(path, environment=arm, samples=x,
                        keras_model=None if int8 else model, kernels=DEVICE_KERNELS)
    assert [c.kernel for c in checks] == list(DEVICE_KERNELS)
    for check in checks:
        _assert_matches_x86(check, exact=not name.startswith("dybnn"))
        if not int8:  # float hyper weights: Keras computes the same network
            assert check.vs_keras.top1_agreement >= 0.9, check


@pytest.mark.parametrize("name", ["reactnet-18", "dybnn-reactnet-18"])
def test_shipped_cifar10_models_on_arm(arm, tmp_path, cifar10_test_batch, name):
    from larq_dybnn.zoo import DyBNNReActNet18, ReActNet18

    builder = DyBNNReActNet18 if name.startswith("dybnn") else ReActNet18
    model = builder(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                    num_classes=10, weights="cifar10")
    x, y = cifar10_test_batch
    x, y = x[::2], y[::2]  # 50 images, 5 per class
    path = tmp_path / "shipped.tflite"
    path.write_bytes(export_tflite(model))  # the default: int8 hyper weights
    (bgemm, indirect) = verify_arm(path, environment=arm, samples=x, labels=y)
    # Static ReActNet: exact. DyBNN: one of the 50 images may take a flipped binary
    # activation (seen once: bgemm, image max |diff| 0.69, top-1 unchanged; with the
    # current weights 2 of the first 400 test images move on both kernels, max |diff|
    # 0.375, the same with the op library built with -ffp-contract=off: TFLite's float
    # ops, not LCE's).
    for check in (bgemm, indirect):
        _assert_matches_x86(check, flipped=1 if name.startswith("dybnn") else 0)
    assert abs(bgemm.accuracy - indirect.accuracy) <= 1 / len(y)
    assert min(bgemm.accuracy, indirect.accuracy) >= 0.6
    # With tflite-runtime's default XNNPACK delegate (what a device runs unless told
    # otherwise) the float ops sum in another order: the same top-1, but a rounding
    # difference can flip a binary activation and move one sample's outputs.
    for check in verify_arm(path, environment=arm, samples=x, labels=y, xnnpack=True):
        assert check.vs_x86.top1_agreement >= 0.98, check
        assert check.vs_x86.close_fraction >= 0.95, check
        assert abs(check.accuracy - bgemm.accuracy) <= 0.02, check


def test_the_runner_refuses_an_unknown_kernel_and_a_foreign_library(arm, tmp_path):
    from larq_dybnn.device.emulation import ArmSetupError

    with pytest.raises(ValueError, match="`kernels` must be some of"):
        run_on_arm(arm, tmp_path / "x.tflite", np.zeros((1, 8, 8, 3)), kernels=["fast"])
    model = build_model("tiny-dybnn", input_shape=(8, 8, 3), num_classes=10)
    path = tmp_path / "tiny.tflite"
    path.write_bytes(export_tflite(model))
    wrong = tmp_path / "x86.so"  # an x86 library cannot be loaded on aarch64
    import larq_compute_engine

    wrong.write_bytes(next(iter(__import__("pathlib").Path(
        larq_compute_engine.__file__).parent.rglob("*.so"))).read_bytes())
    from dataclasses import replace

    with pytest.raises(ArmSetupError, match="larq_dybnn_runtime: error"):
        run_on_arm(replace(arm, library=wrong), path, np.zeros((1, 8, 8, 3), np.float32))


def test_verify_arm_command_on_real_images(arm, tmp_path, capsys):
    """`larq-dybnn verify-arm` with the shipped DyBNN model's file, real CIFAR-10 test
    images prepared by its input contract, and the Keras model."""
    import json

    from conftest import ARM_DIR, LCE_SOURCE, main_conftest

    from larq_dybnn.converter import export_and_verify
    from larq_dybnn.zoo import DyBNNReActNet18
    from larq_dybnn_cli import main

    model = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                            num_classes=10, weights="cifar10")
    keras_path = tmp_path / "model.keras"
    model.save(keras_path)
    tflite = tmp_path / "model.tflite"
    contract = main_conftest.CIFAR10_CLASSES
    from larq_dybnn.contract import contract_for

    export_and_verify(model, output_path=tflite, benchmark=False, int8_hyper_weights=False,
                      contract=contract_for("cifar", image_size=32, class_names=contract))
    archive = main_conftest.CIFAR10_DIR / "cifar10-test-jpg.tar.gz"
    report = tmp_path / "arm.json"
    assert main(["verify-arm", str(tflite), "--data", str(archive), "--limit", "20",
                 "--keras", str(keras_path), "--arm-dir", str(ARM_DIR), "--lce-source",
                 str(LCE_SOURCE), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "ARM bgemm (20 samples): vs x86 LCE top-1 agreement" in out
    checks = json.loads(report.read_text())["checks"]
    assert [c["kernel"] for c in checks] == ["bgemm", "indirect_bgemm"]
    for check in checks:
        # As in test_shipped_cifar10_models_on_arm: one DyBNN sample may take a flipped
        # binary activation between the x86 and ARM builds' float ops (with the seed-2
        # weights, the 20 images have one: ARM matches Keras to 1e-5, x86 LCE does not).
        _assert_matches_x86(ArmCheck(kernel=check["kernel"], vs_x86=Parity(**check["vs_x86"])),
                            flipped=1)
        assert check["vs_keras"]["top1_agreement"] >= 0.95, check
        assert check["accuracy"] >= 0.5, check
