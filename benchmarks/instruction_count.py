"""ARM instructions per inference, counted in the emulator: a deterministic cost.

Wall-clock time under qemu says little about a device, and on a shared 2-core machine
it is noisy. Guest instructions are exact and repeatable: qemu's TCG plugin
`libinsn.so` counts every aarch64 instruction a run executes. `count_instructions`
runs a model N+1 times and once in two emulated processes and takes the difference,
which removes Python's start-up and the model's loading.

Debian ships qemu without its plugins; `build_insn_plugin` compiles `libinsn.so` from
the source package of the installed qemu (`apt-get source`, a deb-src line is added
for the installed suite). Instruction counts are not cycles: a NEON instruction and a
scalar one count the same, and memory stalls are not seen.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from larq_dybnn.device.emulation import ArmEnvironment, ArmSetupError, _check_output, _require_apt

__all__ = ["build_insn_plugin", "count_instructions", "InstructionCount"]

_SOURCES = Path("/etc/apt/sources.list.d/larq-dybnn-qemu-src.sources")


def build_insn_plugin(directory: str | os.PathLike) -> Path:
    """Build (or reuse) qemu's instruction-counting plugin for the installed qemu.

    Arguments:
        directory: cache folder.

    Returns:
        The path of `libinsn.so`.

    Raises:
        ArmSetupError: off Debian, without root, or when download or build fails.
    """
    # The source version: a binary rebuild ("+b3") has no source package of its own.
    version = _check_output(["dpkg-query", "-W", "-f=${source:Version}", "qemu-user"],
                            "dpkg-query")
    root = Path(directory).resolve() / f"qemu-plugin-{re.sub(r'[^0-9A-Za-z.+-]', '_', version)}"
    plugin = root / "libinsn.so"
    if plugin.is_file():
        return plugin
    _require_apt("Building qemu's instruction-counting plugin")
    root.mkdir(parents=True, exist_ok=True)
    if not _SOURCES.is_file():
        _SOURCES.write_text(
            "Types: deb-src\nURIs: http://deb.debian.org/debian\n"
            "Suites: bookworm bookworm-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            "Types: deb-src\nURIs: http://deb.debian.org/debian-security\n"
            "Suites: bookworm-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
        _check_output(["apt-get", "update", "-qq"], "apt-get update")
    _check_output(["apt-get", "install", "-y", "-qq", "dpkg-dev", "libglib2.0-dev",
                   "pkg-config"], "apt-get install")
    done = subprocess.run(["apt-get", "source", "-qq", f"qemu={version}"], cwd=root,
                          capture_output=True, text=True)
    if done.returncode:
        raise ArmSetupError(f"apt-get source qemu={version} failed: {done.stderr[-1500:]}")
    source = next(p for p in root.iterdir() if p.is_dir() and p.name.startswith("qemu"))
    glib = _check_output(["pkg-config", "--cflags", "glib-2.0"], "pkg-config").split()
    _check_output(["gcc", "-O2", "-shared", "-fPIC", f"-I{source / 'include' / 'qemu'}",
                   *glib, str(source / "tests" / "plugin" / "insn.c"), "-o", str(plugin)],
                  "compiling libinsn.so")
    return plugin


@dataclass(frozen=True)
class InstructionCount:
    """Guest instructions of one inference.

    Attributes:
        model: the file.
        kernel: the ARM binary-conv kernel.
        per_inference: (count of `runs`+1 inferences - count of 1) / `runs`.
        runs: inferences in the difference.
    """

    model: str
    kernel: str
    per_inference: float
    runs: int


def _count(environment: ArmEnvironment, plugin: Path, model: Path, inputs: Path,
           kernel: str, repeat: int) -> int:
    with tempfile.TemporaryDirectory(prefix="larq-dybnn-insn-") as folder:
        log = Path(folder) / "plugin.log"
        command = [environment.qemu, "-plugin", str(plugin), "-d", "plugin", "-D", str(log),
                   *environment.command("-m", "larq_dybnn_runtime", str(model), "--library",
                                        str(environment.library), "--inputs", str(inputs),
                                        "--kernel", kernel, "--repeat", str(repeat),
                                        "--no-xnnpack")[1:]]
        done = subprocess.run(command, env=environment.environ(), capture_output=True,
                              text=True)
        if done.returncode:
            raise ArmSetupError(f"Counting run failed: {done.stderr.strip()[-1500:]}")
        text = log.read_text()
        match = re.search(r"total insns:\s*(\d+)", text) or re.search(r"insns:\s*(\d+)", text)
        if match is None:
            raise ArmSetupError(f"The plugin wrote no count: {text[-500:]}")
        return int(match[1])


def count_instructions(environment: ArmEnvironment, plugin: str | os.PathLike,
                       model_path: str | os.PathLike, *, kernels: Sequence[str] = ("bgemm",),
                       runs: int = 10) -> list[InstructionCount]:
    """Count aarch64 instructions per inference of a `.tflite` on each kernel.

    One thread, no XNNPACK, `PYTHONHASHSEED=0`, one BLAS thread: counts repeat to a
    few hundred instructions.

    Arguments:
        environment: from `larq_dybnn.arm.prepare`.
        plugin: `build_insn_plugin`'s library.
        model_path: the file.
        kernels: ARM kernels to count.
        runs: inferences in the difference.

    Returns:
        One `InstructionCount` per kernel.
    """
    from larq_dybnn.converter.interpreter import lce_interpreter

    model_path = Path(model_path).resolve()
    shape = lce_interpreter(model_path.read_bytes(), source=f"'{model_path}'").input_shapes[0][1:]
    counts = []
    with tempfile.TemporaryDirectory(prefix="larq-dybnn-insn-") as folder:
        inputs = Path(folder) / "x.npy"
        np.save(inputs, np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32))
        # A first emulated run compiles the runner's and numpy's bytecode: its count is
        # not that of a later run, so one run is made and discarded first.
        _count(environment, Path(plugin), model_path, inputs, kernels[0], 1)
        for kernel in kernels:
            once = _count(environment, Path(plugin), model_path, inputs, kernel, 1)
            many = _count(environment, Path(plugin), model_path, inputs, kernel, runs + 1)
            counts.append(InstructionCount(str(model_path), kernel, (many - once) / runs, runs))
    return counts
