"""Sample images prepared for a model (`larq_dybnn.training.inputs.prepare_inputs`), the
one path of `convert --verify` and `verify-arm --data`: every kind of source, the
contract's checks, the one preprocessing rule."""

from __future__ import annotations

import numpy as np
import pytest

import larq_dybnn  # noqa: F401  (legacy Keras first)
from conftest import CIFAR10_CLASSES, CIFAR10_DIR, _require
from larq_dybnn.contract import contract_for
from larq_dybnn.training import preprocessing
from larq_dybnn.training.inputs import prepare_inputs

CIFAR = contract_for("cifar", image_size=32, class_names=CIFAR10_CLASSES)


@pytest.mark.parametrize("kind", ["archive", "folder of archives"])
def test_cifar10_archives_are_read_as_the_contract_says(kind):
    folder = _require(CIFAR10_DIR)
    source = folder / "cifar10-test-jpg.tar.gz" if kind == "archive" else folder
    prepared = prepare_inputs(source, model="m", image_size=(32, 32), contract=CIFAR,
                              limit=20)
    assert prepared.samples.shape == (20, 32, 32, 3) and prepared.samples.dtype == np.float32
    assert prepared.class_names == list(CIFAR10_CLASSES) and prepared.preprocess == "cifar"
    assert not prepared.notes and not prepared.guessed
    # Normalized with CIFAR-10's statistics: roughly zero-mean, unit-spread pixels.
    assert abs(float(prepared.samples.mean())) < 0.5 and 0.5 < prepared.samples.std() < 1.5
    if kind == "archive":  # an archive is read whole, classes in turn: balanced
        assert np.bincount(prepared.labels).tolist() == [2] * 10
    assert "preprocess=cifar" in prepared.source


def test_a_dataset_name_goes_through_load_with_its_split():
    prepared = prepare_inputs("digits", model="m", image_size=(8, 8), contract=None,
                              limit=30, split="test")
    assert prepared.samples.shape[:3] == (30, 8, 8) and prepared.preprocess == "digits"
    assert prepared.guessed and "guessed" in prepared.notes[0]
    assert "'test'" in prepared.source


def test_the_scalings_and_an_override(tmp_path):
    folder = _require(CIFAR10_DIR)
    unit = prepare_inputs(folder, model="m", image_size=(32, 32), contract=CIFAR,
                          preprocess="unit", limit=5)
    assert unit.samples.min() >= 0 and unit.samples.max() <= 1
    assert unit.notes and "overrides the recorded 'cifar'" in unit.notes[0]
    with pytest.raises(ValueError, match="`preprocess` must be one of"):
        prepare_inputs(folder, model="m", image_size=(32, 32), contract=CIFAR,
                       preprocess="mnist", limit=5)


def test_contract_checks_name_the_source(tmp_path):
    folder = _require(CIFAR10_DIR)
    other = contract_for("cifar", image_size=32, class_names=[str(i) for i in range(10)])
    with pytest.raises(ValueError, match=str(folder)):
        prepare_inputs(folder, model="m", image_size=(32, 32), contract=other, limit=5)
    larger = contract_for("cifar", image_size=40, class_names=CIFAR10_CLASSES)
    with pytest.raises(ValueError, match="resize"):
        prepare_inputs(folder, model="m", image_size=(40, 40), contract=larger, limit=5)
    resized = prepare_inputs(folder, model="m", image_size=(40, 40), contract=larger,
                             resize=True, limit=5)
    assert resized.samples.shape == (5, 40, 40, 3)


def test_the_evaluation_pipeline_takes_every_name():
    from larq_dybnn.training import data

    digits = data.load("digits", split="test")
    # "imagenet" also resizes the short side and crops the centre: not a pure scaling.
    for name in set(preprocessing.EVALUATION_PREPROCESSING) - {"imagenet"}:
        x, _ = next(iter(preprocessing.pipeline(digits, training=False, batch_size=4,
                                                preprocess=name, image_size=8)))
        expected = preprocessing.ARRAY_PREPROCESSING[name](
            np.stack([img.numpy() for img, _ in digits.dataset.take(4)]).astype(np.float32))
        np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="for training"):
        preprocessing.pipeline(digits, training=True, batch_size=4, preprocess="unit",
                               image_size=8)
