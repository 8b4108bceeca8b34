"""Weights shipped with the package: they load offline, are checked against their
sha256, give the documented accuracy in Keras and in the LCE interpreter, and refuse
models built with other options."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pytest
from conftest import CIFAR10_DIR

from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.converter.int8 import quantize_hyper_weights
from larq_dybnn.converter import lce_outputs
from larq_dybnn.sweep.evaluation import evaluation_arrays
from larq_dybnn.zoo import DyBNNReActNet18, ReActNet18, registered_weights
from larq_dybnn.zoo import weights as weights_lib

MANIFEST = weights_lib.PRETRAINED_DIR / "manifest.json"
ENTRIES = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else []
BUILDERS = {"reactnet_18": ReActNet18, "dybnn_reactnet_18": DyBNNReActNet18}


@functools.lru_cache(maxsize=2)
def _check_images(preprocess: str, split: str):
    """The check images, decoded once per test worker for both shipped models."""
    return evaluation_arrays({"data": str(CIFAR10_DIR), "preprocess": preprocess}, split, 32)


def _build(entry, **changes):
    options = {k: v for k, v in entry["options"].items()
               if k not in ("binary_weights", "output_bound")}
    if entry["model"] == "reactnet_18":
        options.pop("dynamic")
    options["input_shape"] = tuple(options["input_shape"])
    return BUILDERS[entry["model"]](num_classes=entry["num_classes"], weights=entry["name"],
                                    **{**options, **changes})


def test_shipped_weights_are_registered():
    assert ENTRIES, "no weights shipped in zoo/pretrained/manifest.json"
    assert {e["model"] for e in ENTRIES} == {"reactnet_18", "dybnn_reactnet_18"}
    for entry in ENTRIES:
        registered = {(r.model, r.name) for r in registered_weights(entry["model"])}
        assert (entry["model"], "cifar10") in registered


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["model"] for e in ENTRIES])
def test_documented_accuracy_in_keras_and_lce(entry):
    if not (CIFAR10_DIR / "cifar10-test-jpg.tar.gz").exists():
        pytest.skip("no CIFAR-10 copy")
    model = _build(entry)
    accuracy = entry["accuracy"]
    x, y = _check_images(entry["input_contract"]["preprocess"], accuracy["check_split"])
    keras = np.concatenate([np.asarray(model(x[i:i + 500], training=False))
                            for i in range(0, len(x), 500)])
    # Documented for float32 hyper weights (the file then computes exactly the Keras
    # model) and for the export default, int8 hyper weights (the same file with its
    # hyper kernels stored in int8, as `export_tflite` derives it).
    plain = export_tflite(model, int8_hyper_weights=False)
    lce = lce_outputs(plain, x)
    lce_int8 = lce_outputs(quantize_hyper_weights(plain, model)[0], x)
    assert abs(np.mean(keras.argmax(-1) == y) - accuracy["check_keras"]) <= 0.005
    assert abs(np.mean(lce.argmax(-1) == y) - accuracy["check_lce"]) <= 0.005
    assert abs(np.mean(lce_int8.argmax(-1) == y) - accuracy["check_lce_int8"]) <= 0.005
    # How often the default export gives the notebook's answer, as documented.
    agreement = np.mean(lce_int8.argmax(-1) == keras.argmax(-1))
    assert abs(agreement - accuracy["check_lce_int8_agreement"]) <= 0.005
    assert accuracy["check_keras"] > 0.5  # a trained model, far above chance (0.1)


@pytest.mark.parametrize("changes, match", [
    ({"width_multiplier": 0.5}, "width_multiplier=0.5"),
    ({"stem": "imagenet", "input_shape": (224, 224, 3)}, "stem='imagenet'"),
    ({"input_shape": (64, 64, 3)}, r"input_shape=\(64, 64, 3\)"),
])
def test_other_options_with_the_weights_are_a_clear_error(changes, match):
    entry = ENTRIES[0]
    with pytest.raises(ValueError, match=f"were trained with .*{match}"):
        _build(entry, **changes)


def test_dynamic_options_must_match():
    entry = next(e for e in ENTRIES if e["model"] == "dybnn_reactnet_18")
    other = 16 if entry["options"]["reduction"] != 16 else 64
    with pytest.raises(ValueError, match=f"reduction={other}"):
        _build(entry, reduction=other)
    with pytest.raises(ValueError, match="dynamic='sign'"):
        _build(entry, dynamic="sign")


def test_a_damaged_file_is_refused(tmp_path, monkeypatch):
    entry = ENTRIES[0]
    damaged = tmp_path / entry["file"]
    shutil.copy(weights_lib.PRETRAINED_DIR / entry["file"], damaged)
    with open(damaged, "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    key = (entry["model"], entry["name"], True)
    original = weights_lib._REGISTRY[key]
    import dataclasses

    monkeypatch.setitem(weights_lib._REGISTRY, key,
                        dataclasses.replace(original, path=str(damaged)))
    with pytest.raises(ValueError, match="the file is damaged"):
        _build(entry)


def test_the_documented_call_builds_with_the_reduction_of_the_weights(monkeypatch):
    """Without `reduction`, a DyBNN model takes that of its named weights, and otherwise
    the zoo's DEFAULT_REDUCTION. The shipped file registered again as trained with
    r=16 (at width 0.25 every hidden layer has min_hidden=8 units, so r=16 and r=64
    build the same shapes) tells the two apart."""
    from larq_dybnn import DynamicSign
    from larq_dybnn.zoo import DEFAULT_REDUCTION, register_weights

    monkeypatch.setattr(weights_lib, "_REGISTRY", dict(weights_lib._REGISTRY))
    entry = next(e for e in ENTRIES if e["model"] == "dybnn_reactnet_18")
    register_weights(model=entry["model"], name="cifar10-r16", url="file:///nowhere.h5",
                     sha256=entry["sha256"], num_classes=entry["num_classes"],
                     options={**entry["options"], "reduction": 16},
                     path=MANIFEST.parent / entry["file"])
    options = dict(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                   num_classes=10)

    def reductions(model):
        return {layer.input_quantizer.reduction for layer in model.layers
                if isinstance(getattr(layer, "input_quantizer", None), DynamicSign)}

    assert reductions(DyBNNReActNet18(weights="cifar10", **options)) == {
        entry["options"]["reduction"]}
    assert reductions(DyBNNReActNet18(weights="cifar10-r16", **options)) == {16}
    assert reductions(DyBNNReActNet18(**options)) == {DEFAULT_REDUCTION} == {64}


def test_named_weights_give_the_class_count_and_carry_their_contract(tmp_path):
    """As a new user calls it (no num_classes): the weights' 10 classes; the model
    carries the weights' input contract into a saved file, and `evaluate` applies it
    without guessing."""
    import warnings

    from larq_dybnn.contract import read_contract
    from larq_dybnn.training.evaluation import evaluate
    from larq_dybnn.zoo import DyBNNReActNet18

    model = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                            weights="cifar10")
    assert model.output_shape == (None, 10)
    assert model.input_contract.preprocess == "cifar"
    path = tmp_path / "mine.keras"
    model.save(path)
    assert read_contract(path) == model.input_contract
    with pytest.raises(ValueError, match="`num_classes`=5 does not match weights"):
        DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                        weights="cifar10", num_classes=5)
    archive = CIFAR10_DIR / "cifar10-test-jpg.tar.gz"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(path, data=str(archive), split="test", limit=50)
    assert not [w for w in caught if "guessed" in str(w.message)]  # no guessing
    assert result.preprocess == "cifar" and result.accuracy > 0.5
    assert not any("guessed" in note for note in result.notes)
