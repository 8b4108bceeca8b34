"""Parity of an exported model on LCE's aarch64 kernels (emulated) with x86 LCE and Keras.

`run_on_arm` runs samples through `larq_dybnn_runtime` under qemu-aarch64;
`verify_arm` compares, per ARM kernel, with the x86 LCE interpreter and (given the
Keras model) with Keras, and gives ARM top-1 when labels are given.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from larq_dybnn.device.emulation import ArmEnvironment
from larq_dybnn.converter.flatbuffer import check_flatbuffer
from larq_dybnn.converter.interpreter import lce_outputs
from larq_dybnn.converter.parity import Parity, parity_of, run_keras
from larq_dybnn_runtime import KERNELS

__all__ = ["ArmCheck", "run_on_arm", "verify_arm", "DEVICE_KERNELS"]

#: The kernels LCE runs on aarch64 devices (the reference kernel is for comparison).
DEVICE_KERNELS = ("bgemm", "indirect_bgemm")


@dataclass(frozen=True)
class ArmCheck:
    """One ARM kernel's results.

    Attributes:
        kernel: "bgemm", "indirect_bgemm" or "reference" (the names of
            `larq_dybnn.converter.interpreter.KERNELS`).
        vs_x86: parity with the x86 LCE interpreter.
        vs_keras: parity with the Keras model, if one was given.
        accuracy: ARM top-1 on the labels, if given.
        xnnpack: whether tflite-runtime's XNNPACK delegate ran the float ops.
    """

    kernel: str
    vs_x86: Parity
    vs_keras: Parity | None = None
    accuracy: float | None = None
    xnnpack: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        def described(parity: Parity) -> str:
            return (f"top-1 agreement {parity.top1_agreement:.2%}, max diff "
                    f"{parity.max_abs_diff:.3g}, within tolerance {parity.close_fraction:.2%}")

        delegate = " + XNNPACK" if self.xnnpack else ""
        text = f"ARM {self.kernel}{delegate} ({self.vs_x86.samples} samples): vs x86 LCE " + described(
            self.vs_x86)
        if self.vs_keras is not None:
            text += "; vs Keras " + described(self.vs_keras)
        if self.accuracy is not None:
            text += f"; ARM top-1 {self.accuracy:.2%}"
        return text


def run_on_arm(environment: ArmEnvironment, model_path: str | os.PathLike,
               samples: np.ndarray, *, kernels: Sequence[str] = ("bgemm",), repeat: int = 1,
               xnnpack: bool = False, timeout: float | None = 900) -> dict[str, np.ndarray]:
    """Outputs of a `.tflite` file for `samples` on emulated ARM kernels (one
    emulated process for all kernels).

    Arguments:
        environment: from `larq_dybnn.arm.prepare`.
        model_path: the `.tflite` file.
        samples: prepared float32 inputs `(N, ...)`.
        kernels: `larq_dybnn_runtime.KERNELS` keys.
        repeat: how many times the samples run (cost measurements).
        xnnpack: apply tflite-runtime's default XNNPACK delegate to the float ops (as a
            device does by default); False runs TFLite's builtin kernels, like LCE's
            x86 interpreter, so that outputs compare exactly.
        timeout: seconds before the emulated run is stopped.

    Returns:
        `{kernel: outputs (N, ...)}`.

    Raises:
        ValueError: for an unknown kernel or a damaged file.
        ArmSetupError: if the emulated run fails.
    """
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown or not kernels:
        raise ValueError(f"`kernels` must be some of {sorted(KERNELS)}, got {list(kernels)}.")
    model_path = Path(model_path)
    check_flatbuffer(model_path.read_bytes(), source=f"'{model_path}'")
    with tempfile.TemporaryDirectory(prefix="larq-dybnn-arm-") as folder:
        inputs, outputs = Path(folder) / "inputs.npy", Path(folder) / "outputs.npz"
        np.save(inputs, np.asarray(samples, dtype=np.float32))
        environment.run("-m", "larq_dybnn_runtime", str(model_path.resolve()), "--library",
                        str(environment.library), "--inputs", str(inputs), "--outputs",
                        str(outputs), "--kernel", ",".join(kernels), "--repeat", str(repeat),
                        *([] if xnnpack else ["--no-xnnpack"]), timeout=timeout)
        with np.load(outputs) as stored:
            return {kernel: stored[kernel] for kernel in kernels}


def verify_arm(
    model_path: str | os.PathLike,
    *,
    environment: ArmEnvironment,
    samples: np.ndarray,
    labels: np.ndarray | None = None,
    keras_model=None,
    kernels: Sequence[str] = DEVICE_KERNELS,
    xnnpack: bool = False,
) -> list[ArmCheck]:
    """Run a `.tflite` file on each ARM kernel and compare (see the module docstring).

    Arguments:
        model_path: the exported file.
        environment: from `larq_dybnn.arm.prepare`.
        samples: prepared float32 inputs (as the model's input contract says).
        labels: class indices of the samples, for ARM top-1.
        keras_model: the Keras model the file was exported from, for ARM-vs-Keras.
        kernels: which ARM kernels to run.
        xnnpack: as in `run_on_arm` (False compares like with like).

    Returns:
        One `ArmCheck` per kernel.

    Raises:
        ValueError: for an unknown kernel, a damaged file or labels that do not fit.
        ArmSetupError: if an emulated run fails.
    """
    samples = np.asarray(samples, dtype=np.float32)
    x86 = lce_outputs(Path(model_path).read_bytes(), samples)  # x86 LCE, default kernel
    keras = None if keras_model is None else run_keras(keras_model, samples)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(samples),):
            raise ValueError(f"`labels` must hold one class per sample ({len(samples)}), "
                             f"got shape {labels.shape}.")
    checks = []
    outputs = run_on_arm(environment, model_path, samples, kernels=kernels, xnnpack=xnnpack)
    for kernel, arm in outputs.items():
        checks.append(ArmCheck(
            kernel=kernel, vs_x86=parity_of(x86, arm),
            vs_keras=None if keras is None else parity_of(keras, arm),
            accuracy=None if labels is None else float(np.mean(arm.argmax(-1) == labels)),
            xnnpack=xnnpack,
        ))
    return checks
