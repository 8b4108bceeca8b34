"""Packaging for larq-dybnn.

The repository keeps the model zoo in ``zoo/`` and the LCE exporter in
``converter/`` and the training application in ``application/``, but they install
as ``larq_dybnn.zoo``, ``larq_dybnn.converter``, ``larq_dybnn.training``,
``larq_dybnn.sweep`` and ``larq_dybnn.commands``, so that the package never claims
generic top-level names and the tree reads: layers (``larq_dybnn/``), models
(``zoo/``), export (``converter/``), application (``application/``). The mapping
lives here, in ``package_dir``, because setup.cfg cannot express it for
sub-packages of another folder.
"""

from setuptools import setup

setup(
    packages=[
        "larq_dybnn", "larq_dybnn.zoo", "larq_dybnn.converter",
        "larq_dybnn.training", "larq_dybnn.sweep", "larq_dybnn.commands",
        "larq_dybnn.device", "larq_dybnn.arm", "larq_dybnn_runtime",
    ],
    # The command line's parser: a top-level module so that `larq-dybnn --help` does
    # not import the package (whose __init__ loads TensorFlow).
    py_modules=["larq_dybnn_cli"],
    package_dir={
        "larq_dybnn": "larq_dybnn",
        "larq_dybnn.zoo": "zoo",
        "larq_dybnn.converter": "converter",
        "larq_dybnn.training": "application/training",
        "larq_dybnn.sweep": "application/sweep",
        "larq_dybnn.commands": "application/commands",
        "larq_dybnn.device": "application/device",
        # The old name of larq_dybnn.device's emulation tools, for one release.
        "larq_dybnn.arm": "application/deprecated/arm",
        # The device-side runner: tflite-runtime, numpy and Pillow only (runtime/ also
        # builds it into the aarch64 wheel larq-dybnn-runtime).
        "larq_dybnn_runtime": "runtime/larq_dybnn_runtime",
    },
    # Trained weights shipped with the zoo (see zoo/pretrained/manifest.json).
    package_data={"larq_dybnn.zoo": ["pretrained/manifest.json", "pretrained/*.h5"],
                  "larq_dybnn.device": ["lce-sources.json", "lce_register.cc"]},
    include_package_data=False,
)
