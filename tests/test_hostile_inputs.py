"""Files from strangers and careless commands: no code runs from a model file, nothing
a user owns is overwritten, nothing broken is reported as fine.

Each case asserts the clear error (naming the file, layer or argument), that no
marker file a hostile file would write appears, and that the user's files are
byte-identical afterwards.
"""

from __future__ import annotations

import io
import json
import shlex
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from larq_dybnn.loading import UnsafeModelError, check_model_config, load_model
from larq_dybnn_cli import main


def _small_model() -> tf.keras.Model:
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(10, name="logits")(x))


def _rewrite_keras(path: Path, edit) -> None:
    """Edit the config.json inside a `.keras` archive."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def _shell_lambda_keras(tmp_path: Path, marker: Path) -> Path:
    """A `.keras` whose Lambda layer calls `pydoc.pipepager(text, cmd=...)`: a shell
    command run by tf_keras while loading, even in its safe mode."""
    path = tmp_path / "evil.keras"
    _small_model().save(path)

    def add_lambda(config):
        layers = config["config"]["layers"]
        layers.insert(2, {
            "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "name": "innocent",
            "config": {"name": "innocent", "trainable": True, "dtype": "float32",
                       "function": {"module": "pydoc", "class_name": "function",
                                    "config": "pipepager", "registered_name": "function"},
                       "function_type": "function", "module": "pydoc",
                       "output_shape": None, "output_shape_type": "raw",
                       "output_shape_module": None,
                       "arguments": {"cmd": f"touch {shlex.quote(str(marker))}"}},
            "inbound_nodes": [[["pool", 0, 0, {}]]],
        })
        layers[3]["inbound_nodes"] = [[["innocent", 0, 0, {}]]]

    _rewrite_keras(path, add_lambda)
    return path


def _module_keras(tmp_path: Path) -> Path:
    path = tmp_path / "module.keras"
    _small_model().save(path)

    def other_module(config):
        config["config"]["layers"][1]["module"] = "os"

    _rewrite_keras(path, other_module)
    return path


def _python_lambda(marker: str):
    return lambda x: (open(marker, "w").close(), x)[1]


def _lambda_h5(tmp_path: Path, marker: Path) -> Path:
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Lambda(lambda t: t, name="sneaky")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="out")(x))
    path = tmp_path / "evil.h5"
    model.save(path)
    # Swap the marshalled code for one that writes the marker when deserialized and
    # called (as loading a functional model does).
    import h5py
    from tf_keras.src.utils import generic_utils

    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Lambda":
                layer["config"]["function"] = generic_utils.func_dump(_python_lambda(str(marker)))
        handle.attrs["model_config"] = json.dumps(config)
    return path


def _lambda_saved_model(tmp_path: Path) -> Path:
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(inputs)
    model = tf.keras.Model(inputs, x)
    path = tmp_path / "evil_savedmodel"
    model.save(path, save_format="tf")
    return path


def test_a_keras_lambda_naming_a_function_runs_code_in_keras_but_not_here(tmp_path):
    marker = tmp_path / "pwned"
    path = _shell_lambda_keras(tmp_path, marker)
    before = path.read_bytes()
    with pytest.raises(UnsafeModelError, match=r"layer 'innocent' is a Lambda layer"):
        load_model(path)
    assert not marker.exists()
    assert path.read_bytes() == before
    # The attack is real: Keras' own loader, safe mode and all, runs the command.
    try:
        tf.keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception:  # noqa: BLE001 - the command ran before whatever fails next
        pass
    for _ in range(100):  # the shell runs it in the background
        if marker.exists():
            break
        time.sleep(0.05)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["h5", "savedmodel", "module"])
def test_every_format_is_checked_before_deserializing(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "h5":
        path, match = _lambda_h5(tmp_path, marker), "layer 'sneaky' is a Lambda layer"
    elif kind == "savedmodel":
        path, match = _lambda_saved_model(tmp_path), "layer 'doubler' is a Lambda layer"
    else:
        path, match = _module_keras(tmp_path), "from module 'os', outside tf_keras"
    with pytest.raises(UnsafeModelError, match=match):
        load_model(path)
    assert not marker.exists()
    if kind == "h5":  # the opt-out loads it, and the code in the file runs
        load_model(path, unsafe=True)
        assert marker.exists()


@pytest.mark.parametrize("config, match", [
    ({"class_name": "TFOpLambda", "config": {"name": "w", "function": "io.write_file"}},
     "layer 'w' calls the TensorFlow function 'io.write_file'"),
    ({"class_name": "Dense", "registered_name": "evilpkg>Dense", "config": {"name": "d"}},
     "registered object 'evilpkg>Dense'"),
])
def test_tensorflow_ops_and_foreign_registered_objects_are_refused(config, match):
    with pytest.raises(UnsafeModelError, match=match):
        check_model_config({"class_name": "Functional", "config": {"layers": [config]}})
    check_model_config({"class_name": "TFOpLambda",
                        "config": {"name": "a", "function": "__operators__.add"}})


def test_commands_refuse_hostile_models_and_the_opt_out_is_explicit(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = _shell_lambda_keras(tmp_path, marker)
    before = path.read_bytes()
    for argv in (
        ["evaluate", str(path), "--data", "digits"],
        ["convert", str(path), "-o", str(tmp_path / "out.tflite")],
        ["train", "--model", "tiny-dybnn", "--teacher", str(path), "--epochs", "1",
         "--output-dir", str(tmp_path / "run")],
        ["train", "--model", "tiny-dybnn", "--init-from", str(path), "--epochs", "1",
         "--output-dir", str(tmp_path / "run2")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "layer 'innocent' is a Lambda layer" in err and "--unsafe-load" in err, argv
        assert not marker.exists(), argv
        assert not (tmp_path / "out.tflite").exists()
    assert path.read_bytes() == before
