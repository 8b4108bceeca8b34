"""Deprecated: the emulated aarch64 tools moved to `larq_dybnn.device`.

`larq_dybnn.arm` keeps working for one release and warns on import. Use
`larq_dybnn.device.emulation` (`prepare`, `ArmEnvironment`, `ArmSetupError`,
`build_op_library`) and `larq_dybnn.device.verify` (`verify_arm`, `run_on_arm`,
`ArmCheck`, `DEVICE_KERNELS`). The instruction counter (`larq_dybnn.arm.cost`) is
benchmark code now: `benchmarks/instruction_count.py`.
"""

import warnings

warnings.warn(
    "larq_dybnn.arm is deprecated and will be removed in the next release: import "
    "prepare, ArmEnvironment, ArmSetupError and build_op_library from "
    "larq_dybnn.device.emulation, and verify_arm, run_on_arm, ArmCheck and "
    "DEVICE_KERNELS from larq_dybnn.device.verify.",
    DeprecationWarning, stacklevel=2)

from larq_dybnn.device.emulation import (  # noqa: E402
    ArmEnvironment, ArmSetupError, build_op_library, prepare)
from larq_dybnn.device.verify import (  # noqa: E402
    DEVICE_KERNELS, ArmCheck, run_on_arm, verify_arm)

__all__ = [
    "ArmEnvironment", "ArmSetupError", "ArmCheck", "DEVICE_KERNELS", "build_op_library",
    "prepare", "run_on_arm", "verify_arm",
]
