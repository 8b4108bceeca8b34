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
        "larq_dybnn.training", "larq_dybnn.sweep", "larq_dybnn.commands", "larq_dybnn.arm",
        "larq_dybnn.device",
    ],
    # The command line's parser: a top-level module so that `larq-dybnn --help` does
    # not import the package (whose __init__ loads TensorFlow).
    # The device-side runner: needs only tflite-runtime and numpy (larq_dybnn.arm).
    py_modules=["larq_dybnn_cli", "larq_dybnn_runtime"],
    package_dir={
        "larq_dybnn": "larq_dybnn",
        "larq_dybnn.zoo": "zoo",
        "larq_dybnn.converter": "converter",
        "larq_dybnn.training": "application/training",
        "larq_dybnn.sweep": "application/sweep",
        "larq_dybnn.commands": "application/commands",
        "larq_dybnn.device": "application/device",
    },
    # Trained weights shipped with the zoo (see zoo/pretrained/manifest.json).
    package_data={"larq_dybnn.zoo": ["pretrained/manifest.json", "pretrained/*.h5"],
                  "larq_dybnn.arm": ["lce_register.cc"],
                  "larq_dybnn.device": ["lce-sources.json"]},
    include_package_data=False,
)
