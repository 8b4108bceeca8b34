"""Shared fixtures: real CIFAR-10 images from the shared data copy, weight helpers, the
cost study's scripts as modules."""

from __future__ import annotations

import importlib.util
import os
import sys
import tarfile
from types import ModuleType
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import larq_dybnn  # noqa: E402,F401  (selects legacy Keras before TensorFlow loads)
import tensorflow as tf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CIFAR10_DIR = Path(
    os.environ.get("LARQ_DYBNN_CIFAR10_DIR", REPO.parent / "shared" / "data" / "cifar10")
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
from larq_dybnn.training.preprocessing import CIFAR10_MEAN, CIFAR10_STD  # noqa: E402


COST = REPO / "experiments" / "cifar10-recipe" / "cost"


def cost_script(name: str) -> ModuleType:
    """The cost study's script `experiments/cifar10-recipe/cost/<name>.py` as a fresh
    module (its folder on `sys.path`, as when it runs: the scripts import `plot`)."""
    if str(COST) not in sys.path:
        sys.path.insert(0, str(COST))
    spec = importlib.util.spec_from_file_location(f"cost_{name}", COST / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = (
        f"CIFAR-10 copy not found at {path}; set LARQ_DYBNN_CIFAR10_DIR to the folder "
        "holding cifar10-test-jpg.tar.gz."
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def cifar10_test_batch() -> tuple[np.ndarray, np.ndarray]:
    """The first 10 test images of each CIFAR-10 class, normalized, with labels."""
    archive = _require(CIFAR10_DIR / "cifar10-test-jpg.tar.gz")
    wanted = {f"cifar10/test/{name}/{i:04d}.jpg": label
              for label, name in enumerate(CIFAR10_CLASSES) for i in range(10)}
    images, labels = {}, {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name in wanted:
                data = tar.extractfile(member).read()
                images[member.name] = tf.io.decode_jpeg(data, channels=3).numpy()
                labels[member.name] = wanted[member.name]
            if len(images) == len(wanted):
                break
    assert len(images) == len(wanted), f"missing images in {archive}"
    names = sorted(images)
    x = np.stack([images[n] for n in names]).astype(np.float32) / 255.0
    x = (x - CIFAR10_MEAN) / CIFAR10_STD
    return x, np.array([labels[n] for n in names])


def randomize_weights(model_or_layer, *, seed: int = 0, scale: float = 0.5) -> None:
    """Give every float weight random values, so zero-initialized dynamic terms act.

    BatchNorm variances stay positive. Binary kernels get random values too (their
    sign and magnitude then vary per channel).
    """
    rng = np.random.default_rng(seed)
    for weight in model_or_layer.weights:
        shape = tuple(weight.shape)
        if "moving_variance" in weight.name:
            value = rng.uniform(0.5, 1.5, size=shape)
        elif "alpha" in weight.name:
            value = rng.uniform(0.05, 0.5, size=shape)
        else:
            value = rng.normal(0.0, scale, size=shape)
        weight.assign(value.astype(weight.dtype.as_numpy_dtype))


def randomize_and_calibrate(model, x: np.ndarray, *, seed: int = 0) -> None:
    """Random weights for a deep model, with BatchNorm statistics that fit them.

    Random BN statistics let activations grow by orders of magnitude over a dozen
    residual blocks; instead, BN gets random scales and offsets and its moving
    statistics are set to the batch statistics of `x`, as training would.
    """
    randomize_weights(model, seed=seed, scale=0.3)
    rng = np.random.default_rng(seed + 1)
    for weight in model.weights:
        name, shape = weight.name, tuple(weight.shape)
        if "hyper_function" in name and "kernel" in name:
            # He-like for the hidden layer, small heads: dynamic terms of a sane size.
            std = (1.0 if "hidden" in name else 0.2) / np.sqrt(shape[0])
            weight.assign(rng.normal(0.0, std, size=shape).astype(np.float32))
        elif "hyper_function" in name or name.split("/")[-1].split(":")[0] in (
            "threshold", "gamma", "zeta"
        ) and "batch_normalization" not in name and "_bn" not in name:
            weight.assign(rng.normal(0.0, 0.1, size=shape).astype(np.float32))
    batch_norms = [l for l in model.layers if isinstance(l, tf.keras.layers.BatchNormalization)]
    for bn in batch_norms:
        bn.gamma.assign(rng.uniform(0.5, 1.5, size=bn.gamma.shape).astype(np.float32))
        bn.beta.assign(rng.normal(0.0, 0.2, size=bn.beta.shape).astype(np.float32))
    momenta = [bn.momentum for bn in batch_norms]
    for bn in batch_norms:
        bn.momentum = 0.0
    model(x, training=True)
    for bn, momentum in zip(batch_norms, momenta):
        bn.momentum = momentum


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


#: Test files ordered by their longest test (real processes, kernels, conversions of
#: deep models). They start first, so that the two pytest-xdist workers finish together
#: instead of one waiting while the other runs a long test picked up last.
SLOW_FIRST = (
    "test_notebooks.py", "test_imagenet_path.py", "test_sweep.py", "test_train.py",
    "test_resume.py", "test_distribute.py", "test_pretrained.py", "test_zoo_conversion.py",
    "test_int8.py", "test_demo.py", "test_converter.py", "test_conversion.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
