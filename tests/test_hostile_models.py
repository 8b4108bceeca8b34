"""Model files from strangers, by class of attack: each test builds the attack, shows
it is real against tf_keras where that is so, and shows `load_model` refuses it before
any of its code runs, naming the file and what is refused.

Classes: a file that is two formats at once; code outside a Lambda layer; a SavedModel
(a program); names and classes not on the allowlist; configs that cost unbounded work
or cannot be read.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from larq_dybnn.loading import (MAX_CONFIG_BYTES, UnsafeModelError, check_model_config,
                                load_model)


def _marker_lambda(marker: str):
    return lambda x: (open(marker, "w").close(), x)[1]


def _small(name: str = "logits") -> tf.keras.Model:
    inputs = tf.keras.Input((4,))
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2, name=name)(inputs))


def _lambda_h5(path: Path, marker: Path) -> Path:
    """A `.h5` whose Lambda layer holds marshalled code that writes `marker`."""
    import h5py
    from tf_keras.src.utils import generic_utils

    inputs = tf.keras.Input((4,))
    x = tf.keras.layers.Lambda(lambda t: t, name="sneaky")(inputs)
    tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="out")(x)).save(path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Lambda":
                layer["config"]["function"] = generic_utils.func_dump(
                    _marker_lambda(str(marker)))
        handle.attrs["model_config"] = json.dumps(config)
    return path


def _wait_for(marker: Path) -> bool:
    for _ in range(40):
        if marker.exists():
            return True
        time.sleep(0.05)
    return marker.exists()


# -- a file that is two formats ----------------------------------------------------------
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_a_polyglot_hdf5_and_zip_is_refused(tmp_path, suffix):
    marker = tmp_path / "pwned"
    h5 = _lambda_h5(tmp_path / "evil.h5", marker)
    harmless = tmp_path / "harmless.keras"
    _small().save(harmless)
    path = tmp_path / f"polyglot{suffix}"
    path.write_bytes(h5.read_bytes() + harmless.read_bytes())
    assert zipfile.is_zipfile(path)
    with pytest.raises(UnsafeModelError, match=r"polyglot\S*' is both .* refusing an "
                                               r"ambiguous file"):
        load_model(path)
    assert not marker.exists()
    if suffix == ".h5":  # real: tf_keras decides by suffix, loads the HDF5, and runs it
        try:
            tf.keras.models.load_model(path, compile=False)
        except Exception:  # noqa: BLE001 - the code ran while deserializing
            pass
        assert _wait_for(marker)


@pytest.mark.parametrize("name, content, match", [
    ("model.keras", b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "must be a zip archive"),
    ("model.h5", b"PK\x05\x06" + b"\0" * 18, "must be HDF5"),
    ("model.pkl", b"\x80\x04", "must end in .keras, .h5 or .hdf5"),
    ("model", b"", "must end in .keras, .h5 or .hdf5"),
])
def test_suffix_and_content_must_agree(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_a_device_or_fifo_is_not_read(tmp_path):
    import os

    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(ValueError, match="not a regular file"):
        load_model(fifo)


# -- code outside a Lambda layer --------------------------------------------------------
def test_a_cell_wrapper_with_a_lambda_residual_fn_is_refused(tmp_path):
    from tf_keras.src.layers.rnn.cell_wrappers import ResidualWrapper

    marker = tmp_path / "pwned"
    target = str(marker)
    cell = ResidualWrapper(tf.keras.layers.SimpleRNNCell(4),
                           residual_fn=lambda i, o: (open(target, "w").close(), i + o)[1])
    inputs = tf.keras.Input((3, 4))
    model = tf.keras.Model(inputs, tf.keras.layers.RNN(cell, name="rnn")(inputs))
    path = tmp_path / "wrapper.h5"
    model.save(path)
    marker.unlink(missing_ok=True)  # saving traced the call once
    with pytest.raises(UnsafeModelError, match=r"layer 'residual_wrapper' uses the class "
                                               r"'ResidualWrapper', which is not a known"):
        load_model(path)
    assert not marker.exists()
    # Real: tf_keras' legacy loader unmarshals the residual_fn and runs it.
    try:
        tf.keras.models.load_model(path, compile=False)
    except Exception:  # noqa: BLE001
        pass
    assert _wait_for(marker)


@pytest.mark.parametrize("config, match", [
    ({"class_name": "Dense", "config": {"name": "d", "units": 2, "kernel_fn": "x",
                                         "kernel_fn_type": "lambda"}},
     "argument 'kernel_fn(_type)?', which holds code"),
    ({"class_name": "Dense", "config": {"name": "d", "function": ["code"],
                                         "function_type": "lambda"}},
     "holds code"),
    ({"class_name": "Lambda", "config": {"name": "l"}}, "is a Lambda layer"),
    ({"class_name": "__lambda__", "config": {"code": "..."}}, "is a __lambda__ layer"),
    ({"class_name": "MyLayer", "config": {"name": "m"}}, "class 'MyLayer', which is not a "
                                                         "known"),
    ({"class_name": "Activation", "config": {"name": "a", "activation": "deserialize"}},
     "names 'deserialize' as its activation"),
    ({"class_name": "Dense", "config": {"name": "d", "kernel_initializer": "os.system"}},
     "names 'os.system' as its kernel_initializer"),
    ({"class_name": "Dense", "config": {"name": "d", "activation": {
        "module": "keras.activations", "class_name": "function", "config": "get",
        "registered_name": "function"}}}, "names the function 'get'"),
    ({"class_name": "TFOpLambda", "config": {"name": "w", "function": "io.write_file"}},
     "calls the TensorFlow function 'io.write_file'"),
    ({"class_name": "Dense", "registered_name": "evilpkg>Dense", "config": {"name": "d"}},
     "registered object 'evilpkg>Dense'"),
    ({"module": "os", "class_name": "Dense", "config": {"name": "d"}}, "module 'os'"),
    ({"class_name": "__typespec__", "config": {}}, "class '__typespec__'"),
])
def test_names_outside_the_allowlist_are_refused(config, match):
    with pytest.raises(UnsafeModelError, match=match):
        check_model_config({"class_name": "Functional", "config": {"layers": [config]}})


def test_the_allowlist_admits_the_zoo_and_keras_objects(tmp_path):
    from larq_dybnn.zoo import DyBNNReActNet18, ReActNet18, TinyDyBNN

    check_model_config({"class_name": "TFOpLambda",
                        "config": {"name": "a", "function": "__operators__.add"}})
    for model, names in (
            (TinyDyBNN(input_shape=(8, 8, 3), width=16, blocks=1, reduction=4),
             ("m.keras", "m.h5")),
            (DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25),
             ("m.h5",)),
            (ReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25),
             ("m.keras",))):
        for name in names:
            model.save(tmp_path / name)
            x = np.zeros((1, *model.input_shape[1:]), np.float32)
            np.testing.assert_array_equal(load_model(tmp_path / name)(x), model(x))


# -- a SavedModel is a program ----------------------------------------------------------
class _Writer(tf.keras.layers.Layer):  # not registered: Keras revives its traced call
    def __init__(self, target: str, **kwargs):
        super().__init__(**kwargs)
        self.target = target

    def call(self, inputs):
        tf.io.write_file(self.target, "pwned")
        return inputs


def test_a_savedmodel_whose_graph_writes_a_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, _Writer(str(marker), name="writer")(inputs))
    path = tmp_path / "saved"
    model.save(path, save_format="tf")
    marker.unlink(missing_ok=True)  # saving traced the call
    with pytest.raises(UnsafeModelError, match="is a SavedModel folder"):
        load_model(path)
    assert not marker.exists()
    # Real: revived without the class, the traced graph still writes the file.
    tf.keras.models.load_model(path, compile=False)(np.zeros((1, 4), np.float32))
    assert marker.exists()


def test_a_savedmodel_with_empty_keras_metadata_is_refused(tmp_path):
    path = tmp_path / "saved"
    _small().save(path, save_format="tf")
    (path / "keras_metadata.pb").write_bytes(b"")
    with pytest.raises(UnsafeModelError, match="is a SavedModel folder"):
        load_model(path)
    assert load_model(path, unsafe=True) is not None  # the explicit opt-out


# -- unbounded work and unreadable configs ----------------------------------------------
def _keras_with(tmp_path: Path, *, config: bytes | None = None, metadata: bytes | None = None,
                compress_type: int = zipfile.ZIP_DEFLATED) -> Path:
    path = tmp_path / "m.keras"
    _small().save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    if config is not None:
        files["config.json"] = config
    if metadata is not None:
        files["metadata.json"] = metadata
    out = tmp_path / "edited.keras"
    with zipfile.ZipFile(out, "w", compression=compress_type) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out


def test_a_config_inflating_past_the_cap_is_refused_before_reading(tmp_path):
    path = _keras_with(tmp_path, config=b" " * (MAX_CONFIG_BYTES + 10))
    assert path.stat().st_size < 1_000_000  # a small file that inflates
    with pytest.raises(ValueError, match="edited.keras'.*(zip bomb|more than)"):
        load_model(path)


@pytest.mark.parametrize("text, match", [
    (b"[" * 5000 + b"]" * 5000, "nested too deeply|nested more than"),
    (b'{"class_name": "Dense", "config": {"name": "d", "units": 1e999}}', "not finite"),
    (b'{"class_name": "Dense", "config": {"name": "d", "units": NaN}}', "NaN is not allowed"),
    (b'{"class_name": "Dense", "config": {"name": "d", "units": 100000000000000000000}}',
     "does not fit in 64 bits"),
    (b'{"class_name": ', "damaged JSON"),
])
def test_unreadable_or_unbounded_configs_are_named(tmp_path, text, match):
    path = _keras_with(tmp_path, config=text)
    with pytest.raises(ValueError, match=f"edited.keras'.*({match})"):
        load_model(path)


def test_damaged_metadata_and_unknown_compression_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"edited.keras' \(metadata.json\): damaged JSON"):
        load_model(_keras_with(tmp_path, metadata=b"{not json"))
    path = _keras_with(tmp_path, compress_type=zipfile.ZIP_LZMA)
    with pytest.raises(ValueError, match="compression method 14"):
        load_model(path)
