"""The `larq-dybnn-runtime` wheel for aarch64 Linux (Raspberry Pi OS 64-bit, ...).

Not run by hand: `make wheel-arm` (larq_dybnn.device.wheel) stages the runner package
with the cross-compiled LCE op library and the upstream licenses, then runs this with
the platform tag read off the library.
"""

import os

from setuptools import setup
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70
    from wheel.bdist_wheel import bdist_wheel


class PlatformWheel(bdist_wheel):
    """py3-none-PLATFORM: the library is loaded with ctypes, not as a CPython
    extension, so any Python 3 on that platform can use it."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        return "py3", "none", self.plat_name


class BinaryDistribution(Distribution):
    """Holds a prebuilt native library: installed to platlib, as auditwheel requires."""

    def has_ext_modules(self):
        return True


setup(
    name="larq-dybnn-runtime",
    version=os.environ["LARQ_DYBNN_RUNTIME_VERSION"],
    description="Run larq-dybnn's exported .tflite classifiers on aarch64 Linux with "
                "Larq Compute Engine's kernels: photo in, label out",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=["larq_dybnn_runtime"],
    package_data={"larq_dybnn_runtime": ["liblce_ops.so", "licenses/*"]},
    python_requires=">=3.9",
    # tflite-runtime 2.14 has cp39-cp311 aarch64 wheels and accepts numpy 2, with which
    # its interpreter fails: numpy stays below 2.
    # tflite (the TFLite schema's generated Python) and flatbuffers check each file
    # whole before the interpreter, which trusts its offsets, opens it.
    install_requires=["tflite-runtime>=2.14,<2.15", "numpy>=1.23.2,<2", "Pillow>=9",
                      "tflite>=2.14", "flatbuffers>=23"],
    entry_points={"console_scripts": [
        "larq-dybnn-run = larq_dybnn_runtime.classify:main"]},
    cmdclass={"bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
    zip_safe=False,
)
