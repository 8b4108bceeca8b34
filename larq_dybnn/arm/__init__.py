"""Run exported models on Larq Compute Engine's aarch64 kernels, emulated with qemu.

Phones and Raspberry Pis run LCE's NEON kernels, which are other code than the x86
kernels of LCE's Python package. `prepare` sets up an emulated aarch64 Python with
tflite-runtime and LCE's ops cross-compiled from source; `verify_arm` checks an
exported file's outputs there against x86 LCE and Keras (`larq-dybnn verify-arm`).
The device-side runner is the top-level module `larq_dybnn_runtime`, which needs only
tflite-runtime and numpy (docs/guides/deployment.md).
"""

from larq_dybnn.arm.environment import ArmEnvironment, ArmSetupError, build_op_library, prepare
from larq_dybnn.arm.verify import DEVICE_KERNELS, ArmCheck, run_on_arm, verify_arm

__all__ = [
    "ArmEnvironment", "ArmSetupError", "ArmCheck", "DEVICE_KERNELS", "build_op_library",
    "prepare", "run_on_arm", "verify_arm",
]
