"""The input contract: recorded with a model in every format, enforced by consumers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import CIFAR10_CLASSES, CIFAR10_DIR

from larq_dybnn_cli import main
from larq_dybnn.contract import (
    InputContract,
    add_to_flatbuffer,
    contract_for,
    read_contract,
    write_contract,
)
from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.training.evaluation import evaluate
from larq_dybnn.zoo import TinyDyBNN

DIGITS = contract_for("digits", image_size=8, class_names=[str(i) for i in range(10)])


@pytest.fixture(scope="module")
def tiny():
    tf.keras.utils.set_random_seed(0)
    return TinyDyBNN(input_shape=(8, 8, 3), num_classes=10, width=32, blocks=1)


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "saved_model"])
def test_round_trip_through_every_save_format(tmp_path, tiny, name):
    path = tmp_path / name
    tiny.save(path)
    assert read_contract(path) is None  # a file saved by hand has none
    write_contract(path, DIGITS)
    assert read_contract(path) == DIGITS
    # The model still loads and computes the same.
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    loaded = tf.keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(loaded(x), tiny(x), atol=1e-6)
    # Writing again replaces the record, and leaves no temporary file.
    other = contract_for("cifar", image_size=8, class_names=list("abcdefghij"))
    write_contract(path, other)
    assert read_contract(path) == other
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_tflite_metadata_runs_in_lce_and_inspect_prints_it(tmp_path, tiny, capsys):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    plain = export_tflite(tiny)
    flatbuffer = add_to_flatbuffer(plain, DIGITS)
    assert read_contract(plain) is None and read_contract(flatbuffer) == DIGITS
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(Interpreter(flatbuffer).predict(x),
                                  Interpreter(plain).predict(x))
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuffer)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Input contract: 8x8x3, preprocess 'digits'" in out and "10 classes" in out
    # As a dict, runtimes also get mean and std on 0..255 pixels.
    record = DIGITS.as_dict()
    assert record["mean_255"] == [127.5] * 3 and record["std_255"] == [127.5] * 3


def test_contract_normalization_matches_the_training_pipeline():
    from larq_dybnn.training import preprocessing

    image = np.random.default_rng(0).integers(0, 256, size=(8, 8, 3)).astype(np.uint8)
    for name in ("cifar", "digits"):
        contract = contract_for(name, image_size=8, class_names=["a", "b"])
        expected, _ = preprocessing.PREPROCESSING[name](tf.constant(image), 0, False, 8)
        np.testing.assert_allclose(contract.normalize(image[None])[0], expected, atol=1e-5)


def _folder(root, classes, size):
    for label, name in enumerate(classes):
        for i in range(2):
            path = root / "test" / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image = np.full((*size, 3), 20 * label + i, np.uint8)
            tf.io.write_file(str(path), tf.io.encode_png(image))
    return root


@pytest.fixture
def saved(tmp_path, tiny):
    path = tmp_path / "model.keras"
    tiny.save(path)
    write_contract(path, contract_for("cifar", image_size=8,
                                      class_names=[f"c{i}" for i in range(10)]))
    return path


def test_other_class_names_or_order_is_an_error(tmp_path, saved):
    with pytest.raises(ValueError, match="trained on the classes c0, c1"):
        evaluate(saved, data=_folder(tmp_path / "other", [f"d{i}" for i in range(10)], (8, 8)))
    # A folder's classes are numbered in sorted order (c0, c1, ...); a model trained
    # with c1 first would read every c0 / c1 label wrong.
    data = _folder(tmp_path / "same", [f"c{i}" for i in range(10)], (8, 8))
    contract = read_contract(saved)
    write_contract(saved, InputContract(**{**contract.__dict__, "class_names": tuple(
        f"c{i}" for i in (1, 0, *range(2, 10)))}))
    with pytest.raises(ValueError, match="the same classes in another order"):
        evaluate(saved, data=data)


def test_other_image_size_needs_an_explicit_resize(tmp_path, saved):
    data = _folder(tmp_path / "big", [f"c{i}" for i in range(10)], (12, 12))
    with pytest.raises(ValueError, match=r"model takes 8x8 images .* has 12x12 images"):
        evaluate(saved, data=data)
    result = evaluate(saved, data=data, resize=True, preprocess="digits")
    assert result.examples == 20 and result.preprocess == "digits"
    assert any("resized from 12x12 to 8x8" in note for note in result.notes)
    assert any("--preprocess digits overrides the recorded 'cifar'" in n for n in result.notes)


def test_other_channels_is_an_error(tmp_path, tiny):
    path = tmp_path / "gray.keras"
    tiny.save(path)
    write_contract(path, InputContract((8, 8), 1, "digits", (0.5,), (0.5,), "none",
                                       tuple(str(i) for i in range(10))))
    with pytest.raises(ValueError, match="takes 1-channel images, but 'digits' gives 3"):
        evaluate(path, data="digits")


def test_recorded_preprocessing_is_applied(tmp_path, saved):
    data = _folder(tmp_path / "ok", [f"c{i}" for i in range(10)], (8, 8))
    result = evaluate(saved, data=data)
    assert result.preprocess == "cifar" and result.notes == ()


def test_a_model_without_a_record_keeps_the_old_behaviour_with_a_warning(tmp_path, tiny):
    path = tmp_path / "old.keras"
    tiny.save(path)
    with pytest.warns(UserWarning, match="records no input contract; the preprocessing "
                      "'digits' was guessed"):
        result = evaluate(path, data="digits")
    assert result.preprocess == "digits" and result.examples == 360


def test_digits_model_on_cifar_is_an_error_not_a_silent_ten_percent(tmp_path, tiny, capsys):
    if not (CIFAR10_DIR / "cifar10-test-jpg.tar.gz").exists():
        pytest.skip("no CIFAR-10 copy")
    path = tmp_path / "digits.keras"
    tiny.save(path)
    write_contract(path, DIGITS)
    code = main(["evaluate", str(path), "--data", str(CIFAR10_DIR), "--limit", "10"])
    assert code == 2
    err = capsys.readouterr().err
    assert "trained on the classes 0, 1, 2" in err and CIFAR10_CLASSES[0] in err
    # convert --verify applies the same checks.
    code = main(["convert", str(path), "-o", str(tmp_path / "d.tflite"), "--verify",
                 str(CIFAR10_DIR / "cifar10-test-jpg.tar.gz"), "--samples", "10"])
    assert code == 2 and "trained on the classes 0, 1, 2" in capsys.readouterr().err
    assert not (tmp_path / "d.tflite").exists()


def test_malformed_record_is_named(tmp_path, tiny):
    path = tmp_path / "m.tflite"
    path.write_bytes(export_tflite(tiny))
    with pytest.raises(ValueError, match="malformed"):
        InputContract.from_dict({"image_size": [8]}, source=f"'{path}'")
    other = tmp_path / "x.pb"
    other.write_text("")
    with pytest.raises(ValueError, match=r"kept in .keras, .h5, SavedModel"):
        write_contract(other, DIGITS)


@pytest.mark.parametrize("requested, recorded, expected, source", [
    (None, "cifar", "cifar", "recorded"),
    (None, "imagenet", "imagenet", "recorded"),
    ("cifar", "cifar", "cifar", "given"),
    ("imagenet", "cifar", "imagenet", "override"),
    ("cifar", None, "cifar", "given"),
    (None, None, "cifar", "guessed"),
])
def test_one_rule_resolves_the_preprocessing(requested, recorded, expected, source):
    from larq_dybnn.contract import contract_for
    from larq_dybnn.training.preprocessing import resolve_preprocess

    contract = None if recorded is None else contract_for(
        recorded, image_size=32, class_names=["a", "b"])
    resolved = resolve_preprocess(requested=requested, contract=contract, data="folder",
                                  image_size=32, model="m.keras")
    assert (resolved.name, resolved.source) == (expected, source)
    assert (resolved.note is None) == (source in ("recorded", "given"))
    if source == "guessed":
        assert "'m.keras' records no input contract" in resolved.note
    images = np.full((1, 2, 2, 3), 255, np.uint8)
    if contract is not None and source == "recorded":
        np.testing.assert_allclose(resolved.normalize(images), contract.normalize(images))


def test_the_guess_follows_data_and_size_and_unknown_names_are_refused():
    from larq_dybnn.training.preprocessing import resolve_preprocess

    guess = lambda data, size: resolve_preprocess(  # noqa: E731
        requested=None, contract=None, data=data, image_size=size, model="m").name
    assert (guess("digits", 8), guess("x", 64), guess("x", 224)) == ("digits", "cifar", "imagenet")
    with pytest.raises(ValueError, match="`preprocess` must be one of"):
        resolve_preprocess(requested="mnist", contract=None, data="x", image_size=32, model="m")
