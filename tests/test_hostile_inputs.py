"""Files from strangers and careless commands: no code runs from a model file, nothing
a user owns is overwritten, nothing broken is reported as fine.

Each case asserts the clear error (naming the file, layer or argument), that no
marker file a hostile file would write appears, and that the user's files are
byte-identical afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import json
import shlex
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
        path, match = _lambda_saved_model(tmp_path), "is a SavedModel folder"
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


# -- archives ---------------------------------------------------------------------------
def _tar_gz(path: Path, members: list[tuple[str, bytes, int | None]]) -> Path:
    """A .tar.gz whose members may declare another size than the bytes they hold."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, declared in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if declared is None:
                tar.addfile(info, io.BytesIO(data))
            else:  # a header that claims `declared` bytes, followed by a few
                info.size = declared
                tar.fileobj.write(info.tobuf(tar.format, tar.encoding, tar.errors))
                tar.fileobj.write(data.ljust(512, b"\0"))
                tar.offset += 512 + 512
                break
    import gzip

    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def _jpeg() -> bytes:
    return tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy()


def test_an_archive_member_claiming_a_gigabyte_is_refused_before_reading(tmp_path):
    from larq_dybnn.training import data as data_lib

    path = _tar_gz(tmp_path / "bomb.tar.gz", [
        ("d/train/cat/0.jpg", _jpeg(), None),
        ("d/train/dog/1.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 60, 2**30)])
    with pytest.raises(ValueError, match=r"bomb.tar.gz:d/train/dog/1.jpg' declares "
                       r"1,073,741,824 bytes"):
        data_lib.load(str(path), split="train")


def test_a_truncated_archive_names_the_file(tmp_path):
    from larq_dybnn.training import data as data_lib

    whole = _tar_gz(tmp_path / "whole.tar.gz", [
        (f"d/train/c{i % 2}/{i}.jpg", _jpeg(), None) for i in range(20)])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match="'.*cut.tar.gz' is not a readable tar archive "
                       r"\(damaged or truncated\?\)"):
        data_lib.load(str(cut), split="train")
    with pytest.raises(ValueError, match="outside -100%..100%"):
        data_lib.load(str(whole), split="train[:150%]")


# -- files a user owns ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """A small trained-shape model for digits (8x8) as .keras and as a .tflite."""
    from larq_dybnn.converter.conversion import export_tflite
    from larq_dybnn.zoo import TinyDyBNN

    folder = tmp_path_factory.mktemp("tiny")
    model = TinyDyBNN(input_shape=(8, 8, 3), width=32, blocks=1)
    keras_path = folder / "m.keras"
    model.save(keras_path)
    tflite_path = folder / "m.tflite"
    tflite_path.write_bytes(export_tflite(model))
    return model, keras_path, tflite_path


@pytest.mark.parametrize("argv, clash", [
    (["convert", "{m}", "-o", "{m}"], "-o/--output '{m}' is the same file as the model"),
    (["convert", "{m}", "-o", "{d}/x.tflite", "--report", "{d}/x.tflite"],
     "--report '{d}/x.tflite' is the same file as -o/--output"),
    (["evaluate", "{m}", "--data", "digits", "--json", "{m}"],
     "--json '{m}' is the same file as the model"),
])
def test_an_output_that_is_an_input_is_an_error(tiny_files, tmp_path, capsys, argv, clash):
    _, keras_path, _ = tiny_files
    model = tmp_path / "m.keras"
    model.write_bytes(keras_path.read_bytes())
    fill = {"m": str(model), "d": str(tmp_path)}
    before = model.read_bytes()
    assert main([a.format(**fill) for a in argv]) == 2
    assert clash.format(**fill) in capsys.readouterr().err
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_a_truncated_tflite_is_an_error_not_a_crash(tiny_files, tmp_path, capsys):
    from larq_dybnn.converter.flatbuffer import check_flatbuffer

    _, _, tflite_path = tiny_files
    data = tflite_path.read_bytes()
    check_flatbuffer(data)
    for fraction in np.linspace(0.05, 0.995, 60):
        with pytest.raises(ValueError, match="not a whole TFLite model"):
            check_flatbuffer(data[: int(len(data) * fraction)], source="cut")
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) * 9 // 10])
    assert main(["evaluate", str(cut), "--data", "digits", "--limit", "10"]) == 2
    assert f"'{cut}' is not a whole TFLite model" in capsys.readouterr().err
    # An upper-case suffix is still a TFLite file.
    upper = tmp_path / "model.TFLITE"
    upper.write_bytes(data)
    assert main(["evaluate", str(upper), "--data", "digits", "--limit", "10"]) == 0


def _lce_options_offset(data: bytes, op_name: str) -> tuple[int, int]:
    """(start, length) of the first `op_name` operator's custom options in the file."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(data, 0)
    codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    graph = model.Subgraphs(0)
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        if codes[op.OpcodeIndex()] == op_name.encode():
            table = op._tab
            slot = table.Offset(14)  # custom_options, the operator's 6th field
            assert table.VectorLen(slot) == op.CustomOptionsLength()
            return table.Vector(slot), table.VectorLen(slot)
    raise AssertionError(f"no {op_name}")


_RUN_IN_LCE = """
import sys
import numpy as np
from larq_compute_engine.tflite.python.interpreter import Interpreter
for path in sys.argv[1:]:
    try:
        interpreter = Interpreter(open(path, "rb").read(), num_threads=1)
        interpreter.predict(np.zeros([1, *interpreter.input_shapes[0][1:]], np.float32))
    except Exception:
        pass
    print(path, flush=True)
"""


def test_a_crafted_tflite_is_refused_or_runs_without_crashing(tiny_files, tmp_path):
    """Damaged offsets anywhere in the tables, and random bytes as LceBconv2d's options:
    every file the check passes is run by LCE's interpreter in a child process, which
    must not die of a signal."""
    import subprocess
    import sys

    from larq_dybnn.converter.flatbuffer import check_flatbuffer

    _, _, tflite_path = tiny_files
    data = tflite_path.read_bytes()
    start, length = _lce_options_offset(data, "LceBconv2d")
    rng = np.random.default_rng(0)
    for trial in range(20):
        crafted = bytearray(data)
        crafted[start:start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        with pytest.raises(ValueError, match="LceBconv2d"):
            check_flatbuffer(bytes(crafted), source="crafted")
    weights_start = min(len(data), 4096)  # offsets and tables come first, then weights
    passed, refused = [], []
    for trial in range(300):
        crafted = bytearray(data)
        at = 4 * int(rng.integers(1, weights_start // 4))
        crafted[at:at + 4] = int(rng.choice([2**31 - 1, 2**32 - 8, len(data) + 4, 1])).to_bytes(
            4, "little")
        path = tmp_path / f"crafted-{trial}.tflite"
        path.write_bytes(crafted)
        try:
            check_flatbuffer(bytes(crafted), source="crafted")
        except ValueError:
            refused.append(str(path))
            continue
        passed.append(str(path))
    done = subprocess.run([sys.executable, "-c", _RUN_IN_LCE, *passed], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stdout.splitlines()[-1:])
    assert len(done.stdout.splitlines()) == len(passed)
    # The attack is real: unchecked, some refused file kills LCE's interpreter.
    unchecked = subprocess.run([sys.executable, "-c", _RUN_IN_LCE, *refused],
                               capture_output=True, text=True, timeout=600)
    assert unchecked.returncode < 0


def test_a_tflite_without_operators_is_refused(tiny_files, tmp_path, capsys):
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    _, _, tflite_path = tiny_files
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite_path.read_bytes(), 0))
    model.subgraphs[0].operators = []
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(bytes(builder.Output()))
    assert main(["evaluate", str(empty), "--data", "digits", "--limit", "10"]) == 2
    assert "main subgraph has no operators" in capsys.readouterr().err


# -- wrong results reported as fine -----------------------------------------------------
@pytest.mark.parametrize("flag, value", [
    ("--learning-rate", "nan"), ("--learning-rate", "inf"), ("--width-multiplier", "0"),
    ("--width-multiplier", "nan"), ("--weight-decay", "nan")])
def test_non_finite_or_empty_options_are_errors(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    try:
        status = main(["train", "--model", "tiny-dybnn", flag, value, "--epochs", "1",
                       "--output-dir", str(out)])
    except SystemExit as stop:  # refused by the parser
        status = stop.code
    assert status == 2
    err = capsys.readouterr().err
    assert flag in err or flag.lstrip("-").replace("-", "_") in err, err
    assert not out.exists()


def test_a_diverged_model_or_nan_samples_are_never_verified(tiny_files, tmp_path):
    from larq_dybnn.converter import export_and_verify
    from larq_dybnn.converter.parity import parity_of

    model, _, _ = tiny_files
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(np.float32)
    bad = x.copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`samples` holds 1 non-finite"):
        export_and_verify(model, samples=bad, benchmark=False)
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 10\)"):
        export_and_verify(model, samples=x, labels=np.full(4, 99), benchmark=False)
    diverged = tf.keras.models.clone_model(model)
    diverged.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    out = tmp_path / "diverged.tflite"
    with pytest.raises(ValueError, match="non-finite weights"):
        export_and_verify(diverged, output_path=out, samples=x, benchmark=False)
    assert not out.exists()
    parity = parity_of(np.array([[1.0, np.nan], [1.0, 2.0]]), np.array([[1.0, 0.0], [1.0, 2.0]]))
    assert parity.non_finite == 1 and parity.top1_agreement == 0.5
    assert parity.close_fraction == 0.5 and parity.max_abs_diff == np.inf


# -- output folders ---------------------------------------------------------------------
def _user_folder(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    folder = tmp_path / "my-project"
    (folder / "logs").mkdir(parents=True)
    files = {"notes.txt": b"mine", "logs/today.log": b"also mine"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder, files


@pytest.mark.parametrize("restart", [True, False])
def test_train_refuses_a_folder_that_holds_no_run(tmp_path, capsys, restart):
    folder, files = _user_folder(tmp_path)
    argv = ["train", "--model", "tiny-dybnn", "--epochs", "1", "--output-dir", str(folder)]
    assert main(argv + (["--restart"] if restart else [])) == 2
    assert "is not empty and holds no training run (logs, notes.txt)" in capsys.readouterr().err
    assert {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} == set(files)
    assert all((folder / n).read_bytes() == d for n, d in files.items())


def test_a_run_folder_in_use_is_locked_and_stale_temporaries_are_removed(tmp_path, capsys):
    from larq_dybnn.training.locks import lock_folder
    from larq_dybnn.training import TrainConfig
    from larq_dybnn.training import loop

    out = tmp_path / "run"
    out.mkdir()
    with lock_folder(out, what="training run"):
        assert main(["train", "--model", "tiny-dybnn", "--epochs", "1",
                     "--output-dir", str(out)]) == 2
        assert f"is in use by pid {os.getpid()}" in capsys.readouterr().err
    stale = out / ".model.tmp-x1y2.keras"
    stale.write_bytes(b"half a model")
    config = TrainConfig(model="tiny-dybnn", output_dir=str(out), epochs=1)
    with contextlib.ExitStack() as held:
        loop._start(config, lambda _: None, held)
        assert not stale.exists()
        assert (out / "config.json").is_file()


def test_stale_savedmodel_folders_of_dead_conversions_are_removed():
    import tempfile

    from larq_dybnn.converter.export import remove_stale_savedmodels

    root = Path(tempfile.gettempdir())
    dead = root / "larq-dybnn-savedmodel-999999999-abc"
    mine = root / f"larq-dybnn-savedmodel-{os.getpid()}-abc"
    for folder in (dead, mine):
        (folder / "variables").mkdir(parents=True, exist_ok=True)
    try:
        assert remove_stale_savedmodels() >= 1
        assert not dead.exists() and mine.exists()
    finally:
        import shutil

        shutil.rmtree(mine, ignore_errors=True)


def test_written_files_respect_the_umask_and_keep_an_existing_mode(tmp_path, tiny_files):
    from larq_dybnn._io import atomic_write_bytes
    from larq_dybnn.contract import contract_for, write_contract

    old = os.umask(0o022)
    try:
        new = atomic_write_bytes(tmp_path / "new.json", b"{}")
        assert new.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.json"
        kept.write_bytes(b"[]")
        kept.chmod(0o640)
        atomic_write_bytes(kept, b"{}")
        assert kept.stat().st_mode & 0o777 == 0o640
        _, keras_path, _ = tiny_files
        model = tmp_path / "m.keras"
        model.write_bytes(keras_path.read_bytes())
        model.chmod(0o644)
        write_contract(model, contract_for("digits", image_size=8,
                                           class_names=[str(i) for i in range(10)]))
        assert model.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# -- errors that name the file ----------------------------------------------------------
def _image_folder(root: Path, *, sizes=None, broken: int | None = None) -> Path:
    """root/test/<class>/<i>.jpg, 10 classes x 2 images of 8x8 (or `sizes[i]`)."""
    for i in range(20):
        folder = root / "test" / f"c{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        size = (sizes or {}).get(i, 8)
        data = tf.io.encode_jpeg(np.full((size, size, 3), 40 * (i % 5), np.uint8)).numpy()
        if i == broken:
            data = data[:20] + b"\x00garbage" * 8  # a JPEG header, then junk
        (folder / f"{i}.jpg").write_bytes(data)
    return root


@pytest.mark.parametrize("case, message", [
    ("broken", "Cannot decode image '.*/test/c3/13.jpg'"),
    ("sizes", "Image '.*/test/c7/17.jpg' .* is 20x20, not 8x8"),
])
def test_a_bad_image_is_named_in_evaluate(tiny_files, tmp_path, capsys, case, message):
    import re

    _, keras_path, _ = tiny_files
    data = _image_folder(tmp_path / "data", broken=13 if case == "broken" else None,
                         sizes={17: 20} if case == "sizes" else None)
    assert main(["evaluate", str(keras_path), "--data", str(data), "--preprocess",
                 "digits"]) == 2
    assert re.search(message, capsys.readouterr().err)
    if case == "sizes":  # --resize resizes every image, not only when the first differs
        assert main(["evaluate", str(keras_path), "--data", str(data), "--preprocess",
                     "digits", "--resize"]) == 0


def test_a_model_of_another_size_is_not_silently_padded(tmp_path, capsys):
    from larq_dybnn.zoo import TinyDyBNN

    path = tmp_path / "sixteen.keras"
    TinyDyBNN(input_shape=(16, 16, 3), width=32, blocks=1).save(path)
    assert main(["evaluate", str(path), "--data", "digits", "--preprocess", "digits"]) == 2
    assert "takes 16x16 images, but 'digits' has 8x8 images; pass --resize" in \
        capsys.readouterr().err


def test_damaged_records_are_named(tmp_path, tiny_files):
    from larq_dybnn.contract import read_contract
    from larq_dybnn.sweep import results
    from larq_dybnn.training.checkpoints import trim_history

    _, keras_path, _ = tiny_files
    model = tmp_path / "m.keras"
    model.write_bytes(keras_path.read_bytes())
    with zipfile.ZipFile(model, "a") as archive:
        archive.writestr("larq_dybnn_input_contract.json", "{not json")
    with pytest.raises(ValueError, match=f"input contract in '{model}' is not JSON"):
        read_contract(model)
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\n0,1.0\nthree,2.0\n")
    with pytest.raises(ValueError, match=f"'{history}' is not a readable training history"):
        trim_history(history, epochs=1)
    run = tmp_path / "runs" / "a" / "seed-0"
    run.mkdir(parents=True)
    (run / "evaluation.json").write_text("{truncated")
    with pytest.raises(ValueError, match=f"'{run / 'evaluation.json'}' is not readable JSON"):
        results.collect(tmp_path / "runs")


def test_contracts_are_checked_when_written_and_read(tiny_files):
    from larq_dybnn.contract import InputContract, contract_for
    from larq_dybnn.converter import export_and_verify

    good = contract_for("digits", image_size=8, class_names=[str(i) for i in range(10)])
    record = good.as_dict()
    for change, message in [
        ({"std": [0.0, 0.5, 0.5]}, "are not the numbers of the recipe 'digits'"),
        ({"mean": [float("nan")] * 3}, "are not the numbers of the recipe 'digits'"),
        ({"preprocess": "sepia"}, "preprocess 'sepia' is not one of"),
        ({"image_size": [0, 8]}, "is not two positive sizes"),
        ({"class_names": ["a", "a"]}, "distinct names"),
    ]:
        with pytest.raises(ValueError, match=f"contract in 'x' is malformed: .*{message}"):
            InputContract.from_dict({**record, **change}, source="'x'")
    model, _, _ = tiny_files
    three = contract_for("digits", image_size=8, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="names 3 classes, but the model has 10 outputs"):
        export_and_verify(model, contract=three, benchmark=False)


def test_resume_falls_back_to_the_newest_readable_checkpoint(tmp_path):
    from larq_dybnn.training.checkpoints import EpochCheckpoints

    def fresh():
        inputs = tf.keras.Input((4,))
        model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))
        model.compile(tf.keras.optimizers.Adam(1e-3), "mse")
        model.optimizer.build(model.trainable_variables)
        return model, EpochCheckpoints(tmp_path / "checkpoints", model)

    _, saver = fresh()
    saver.on_epoch_end(0)
    saver.on_epoch_end(1)
    newest = sorted((tmp_path / "checkpoints").glob("ckpt-2.data*"))[0]
    newest.write_bytes(newest.read_bytes()[:10])  # a write cut short
    model, checkpoints = fresh()
    assert checkpoints.restore() == 1
    assert "ckpt-2' is missing or damaged" in checkpoints.fallback
    for path in (tmp_path / "checkpoints").glob("ckpt-2*"):
        path.unlink()  # deleted
    assert fresh()[1].restore() == 1
    for path in (tmp_path / "checkpoints").glob("ckpt-1.data*"):
        path.write_bytes(b"")
    with pytest.raises(ValueError, match="No readable checkpoint .*--restart"):
        fresh()[1].restore()


def test_provenance_names_the_installed_package_not_the_current_folder(tmp_path,
                                                                      monkeypatch):
    import subprocess

    from larq_dybnn.sweep.provenance import provenance

    monkeypatch.delenv("LARQ_DYBNN_COMMIT", raising=False)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a",
                    "commit", "-q", "--allow-empty", "-m", "other"], check=True)
    other = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
                           capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(tmp_path)
    record = provenance()
    assert record["commit"] != other
    if record["installed"] == "regular":
        assert record["commit"] is None


def test_a_damaged_run_record_is_named_and_left_alone(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"model": "tiny-dybnn", "se')
    before = (out / "config.json").read_bytes()
    assert main(["train", "--model", "tiny-dybnn", "--epochs", "1", "--restart",
                 "--output-dir", str(out)]) == 2
    assert f"'{out / 'config.json'}' is not a readable run record" in capsys.readouterr().err
    assert (out / "config.json").read_bytes() == before


# -- outputs are ordinary files or nothing ----------------------------------------------
@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
def test_an_output_is_never_written_through_a_link_or_node(tiny_files, tmp_path, capsys, kind):
    _, keras_path, _ = tiny_files
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.tflite"
    if kind == "symlink":
        out.symlink_to(victim)
    elif kind == "hardlink":
        os.link(victim, out)
    else:  # stands in for a device node such as /dev/null, which only root can make
        os.mkfifo(out)
    assert main(["convert", str(keras_path), "-o", str(out)]) == 2
    assert "not an ordinary file; refusing to write over it" in capsys.readouterr().err
    assert victim.read_bytes() == b"precious"
    assert out.is_symlink() if kind == "symlink" else True
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("name", [".lock", "history.csv"])
def test_run_files_do_not_follow_links(tmp_path, capsys, name):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    run = tmp_path / "run"
    argv = ["train", "--model", "tiny-dybnn", "--epochs", "1", "--output-dir", str(run)]
    assert main(argv) == 0
    import shutil

    shutil.rmtree(run / "checkpoints")  # the run starts over in its own folder
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    assert main(argv) == 2
    assert f"'{run / name}'" in capsys.readouterr().err
    assert victim.read_bytes() == b"precious"


def test_restart_never_deletes_what_the_run_reads(tiny_files, tmp_path, capsys):
    _, keras_path, _ = tiny_files
    run = tmp_path / "run"
    argv = ["train", "--model", "tiny-dybnn", "--epochs", "1", "--output-dir", str(run)]
    assert main(argv) == 0
    before = (run / "model.keras").read_bytes()
    assert main(argv + ["--restart", "--init-from", str(run / "model.keras")]) == 2
    assert "--restart would delete" in capsys.readouterr().err
    assert (run / "model.keras").read_bytes() == before
    assert json.loads((run / "config.json").read_text())["record"] == "larq-dybnn training run"


def test_a_config_json_with_familiar_keys_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": "mine", "seed": 1}))
    (folder / "model.keras").write_bytes(b"my own model")
    argv = ["train", "--model", "tiny-dybnn", "--epochs", "1", "--output-dir", str(folder),
            "--restart"]
    assert main(argv) == 2
    assert "is not the record of a training run" in capsys.readouterr().err
    assert (folder / "model.keras").read_bytes() == b"my own model"


# -- nothing silent ---------------------------------------------------------------------
def test_a_failing_larq_layer_does_not_leave_quantized_scope_on():
    import larq as lq

    layer = lq.layers.QuantConv2D(4, 3, kernel_quantizer="ste_sign",
                                  kernel_constraint="weight_clip")
    layer.build((None, 8, 8, 3))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        layer(np.zeros((1, 8, 8, 5), np.float32))  # wrong channels: raises inside the scope
    assert lq.context.should_quantize() is False
    # Larq's own context manager leaves it on.
    original = lq.context.quantized_scope._larq_original
    try:
        with original(True):
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    leaked = lq.context.should_quantize()
    lq.context._quantized_scope.should_quantize = False
    assert leaked is True


def test_a_contract_of_another_size_is_refused_at_export(tiny_files):
    from larq_dybnn.contract import contract_for
    from larq_dybnn.converter import convert

    model, _, _ = tiny_files
    with pytest.raises(ValueError, match="contract says 16x16 images, but model .* takes 8x8"):
        convert(model, contract=contract_for("digits", image_size=16,
                                             class_names=[str(i) for i in range(10)]))


def test_a_diverged_run_saves_no_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "tiny-dybnn", "--epochs", "1", "--learning-rate", "1e38",
                 "--output-dir", str(out)]) == 2
    assert "Training diverged" in capsys.readouterr().err
    assert not (out / "model.keras").exists()


@pytest.mark.parametrize("repeat", ["0", "-1"])
def test_the_runner_refuses_zero_repeats(tmp_path, capsys, repeat):
    import larq_dybnn_runtime

    with pytest.raises(SystemExit) as exit_info:
        larq_dybnn_runtime.main([str(tmp_path / "m.tflite"), "--library", "x.so",
                                 "--inputs", "x.npy", "--repeat", repeat])
    assert exit_info.value.code == 2
    assert "--repeat must be between 1" in capsys.readouterr().err


# -- names from files are escaped -------------------------------------------------------
def test_names_with_escape_codes_never_reach_the_terminal(tiny_files, tmp_path):
    from larq_dybnn.contract import InputContract, contract_for
    from larq_dybnn.converter.flatbuffer import read_operators

    good = contract_for("digits", image_size=8, class_names=[str(i) for i in range(10)])
    record = good.as_dict()
    record["class_names"][3] = "cat\x1b[2J\nInput contract: forged"
    with pytest.raises(ValueError, match=r"class name 'cat\\\\x1b\[2J\\\\nInput"):
        InputContract.from_dict(record, source="evil")
    _, _, tflite_path = tiny_files
    data = tflite_path.read_bytes().replace(b"LceBconv2d", b"Lce\x1b[2Jv2d")
    names = {op.name for op in read_operators(data)}
    assert "Lce\\x1b[2Jv2d" in names and not any("\x1b" in n for n in names)
    keras = tmp_path / "named.keras"
    inputs = tf.keras.Input((4,))
    tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="d")(inputs)).save(keras)
    _rewrite_keras(keras, lambda c: c["config"]["layers"][1]["config"].update(
        name="d\x1b[31m"))
    with pytest.raises(ValueError, match="layer name holds control characters"):
        load_model(keras)


# -- bounded work from small inputs -----------------------------------------------------
def _png_declaring(height: int, width: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 16)  # a few rows; the rest missing
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def test_an_image_declaring_huge_dimensions_is_refused_before_decoding(tiny_files, tmp_path,
                                                                       capsys):
    from larq_dybnn.training.data import image_dimensions

    folder = tmp_path / "images" / "test" / "cat"
    folder.mkdir(parents=True)
    (folder / "bomb.png").write_bytes(_png_declaring(20000, 20000))
    for i in range(9):
        (tmp_path / "images" / "test" / f"c{i}").mkdir()
        (tmp_path / "images" / "test" / f"c{i}" / "ok.jpg").write_bytes(
            tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy())
    assert image_dimensions(_png_declaring(20000, 20000)) == (20000, 20000)
    jpeg = tf.io.encode_jpeg(np.zeros((7, 9, 3), np.uint8)).numpy()
    assert image_dimensions(jpeg) == (7, 9)
    _, keras_path, _ = tiny_files
    assert main(["evaluate", str(keras_path), "--data", str(tmp_path / "images")]) == 2
    assert "bomb.png' declares 20000x20000 pixels" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "tiny-dybnn", "--width-multiplier", "1000"],
     "`width_multiplier` must be at most 8.0"),
    (["train", "--model", "tiny-dybnn", "--image-size", "100000"], "expected at most 4,096"),
    (["train", "--model", "tiny-dybnn", "--logical-cpus", "100000"], "expected at most 256"),
    (["evaluate", "m.keras", "--data", "digits", "--limit", "99999999999"],
     "expected at most 10,000,000"),
    (["verify-arm", "{tflite}", "--kernels", "bgemm,turbo", "--lce-source", "."],
     "--kernels: 'turbo'"),
])
def test_options_that_size_memory_or_threads_are_capped(tiny_files, tmp_path, capsys,
                                                        argv, message):
    _, _, tflite_path = tiny_files
    argv = [a.format(tflite=tflite_path) for a in argv]
    if argv[0] == "train":
        argv += ["--epochs", "1", "--output-dir", str(tmp_path / "run")]
    if argv[0] == "verify-arm":
        argv += ["--arm-dir", str(tmp_path / "arm")]
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "arm").exists()  # checked before anything is set up


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from larq_dybnn._io import atomic_write_bytes

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"Cannot write '.*report.json': No space left on device"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_device_check_reads_files_as_the_pc_check_does(tiny_files):
    """The runtime checks files with the `tflite` package's schema (no TensorFlow on a
    device); it accepts and refuses what the PC's check, with TensorFlow's, does."""
    import tflite
    from tensorflow.lite.python import schema_py_generated as tf_schema

    from larq_dybnn_runtime.check import check_flatbuffer

    _, _, tflite_path = tiny_files
    data = tflite_path.read_bytes()
    rng = np.random.default_rng(1)
    for schema in (tflite, tf_schema):
        check_flatbuffer(data, schema=schema)
    verdicts = []
    for trial in range(60):
        crafted = bytearray(data)
        at = 4 * int(rng.integers(1, 1024))
        crafted[at:at + 4] = (2**31 - 1).to_bytes(4, "little")
        outcome = []
        for schema in (tflite, tf_schema):
            try:
                check_flatbuffer(bytes(crafted), schema=schema)
                outcome.append(True)
            except ValueError:
                outcome.append(False)
        verdicts.append(tuple(outcome))
    assert all(a == b for a, b in verdicts), verdicts
    assert any(not a for a, _ in verdicts)
