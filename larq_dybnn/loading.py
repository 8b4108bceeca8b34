"""Load Keras models from files that may come from strangers, without running their code.

A Keras model file is code as much as data: a `Lambda` layer stores a Python function
(marshalled bytecode in `.h5` and SavedModel, a module and function name in `.keras`,
which tf_keras 2.16's `safe_mode` does not refuse: `pydoc.pipepager` with a `cmd`
argument runs a shell command), and a `.keras` config may name any module, which Keras
imports while deserializing. `load_model` reads the file's model config first (the
JSON inside `.keras` and `.h5`, the Keras metadata of a SavedModel) and refuses, naming
the layer, anything that would run code from outside tf_keras, Larq and this package.
`unsafe=True` opts out, for files the user trusts.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Iterator

import tensorflow as tf

__all__ = ["load_model", "check_model_config", "read_model_config", "UnsafeModelError"]

#: Modules a `.keras` config may name: Keras (as tf_keras writes it), Larq, larq-zoo
#: and this package.
TRUSTED_MODULES = ("keras", "tf_keras", "larq", "larq_zoo", "larq_dybnn")

#: Packages of registered names ("package>Class") a config may use.
TRUSTED_PACKAGES = ("keras", "tf_keras", "larq", "larq_zoo", "larq_dybnn")

#: Layers that call a Python function named or stored in the file.
CODE_LAYERS = ("Lambda",)

#: Layers that call a TensorFlow function named in the file (functional models record
#: `x + y` or `tf.nn.relu(x)` on Keras tensors as these), and the TensorFlow
#: namespaces they may call: math and array ops, never file, I/O or Python-calling ops.
TF_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")
TF_OP_NAMESPACES = ("__operators__.", "math.", "nn.", "linalg.", "image.", "bitwise.")
TF_OP_FUNCTIONS = frozenset({
    "reshape", "concat", "stack", "unstack", "transpose", "cast", "expand_dims",
    "squeeze", "clip_by_value", "maximum", "minimum", "add", "subtract", "multiply",
    "divide", "identity", "pad", "split", "tile", "gather", "where", "zeros_like",
    "ones_like", "shape", "sign", "abs", "square", "sqrt", "exp", "tanh", "sigmoid",
    "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "matmul", "einsum", "slice",
    "strided_slice", "broadcast_to", "stop_gradient", "round", "floor", "ceil", "pow",
    "negative", "one_hot", "argmax", "argmin", "range", "size", "rank", "fill",
})


class UnsafeModelError(ValueError):
    """A model file would run code from outside tf_keras, Larq and larq_dybnn."""


def read_model_config(path: str | os.PathLike) -> list[object]:
    """The model configs stored in a `.keras` or `.h5` file or SavedModel folder.

    Arguments:
        path: the model file or folder.

    Returns:
        Parsed JSON objects: the model config (`.keras`, `.h5`), or every Keras
        metadata record of a SavedModel.

    Raises:
        UnsafeModelError: for a file with no Keras model config (a `.h5` of weights
            only, a SavedModel without Keras metadata), which cannot be checked.
        ValueError: for a file whose config cannot be read, naming the file.
    """
    path = Path(path)
    try:
        if path.is_dir():
            return _saved_model_records(path)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return [json.loads(archive.read("config.json"))]
        with open(path, "rb") as handle:
            magic = handle.read(8)
        if magic == b"\x89HDF\r\n\x1a\n":
            return [_h5_config(path)]
    except (KeyError, OSError, zipfile.BadZipFile, json.JSONDecodeError,
            UnicodeDecodeError) as error:
        raise ValueError(f"Cannot load '{path}': its model config cannot be read "
                         f"({type(error).__name__}: {error}).") from None
    raise ValueError(f"Cannot load '{path}' as a Keras model: it is not a .keras archive, "
                     ".h5 file or SavedModel folder.")


def _h5_config(path: Path) -> object:
    import h5py

    with h5py.File(path, "r") as handle:
        config = handle.attrs.get("model_config")
    if config is None:
        raise UnsafeModelError(f"'{path}' holds no model config (weights only?); it "
                               "cannot be loaded as a model.")
    return json.loads(config.decode() if isinstance(config, bytes) else config)


def _saved_model_records(path: Path) -> list[object]:
    metadata = path / "keras_metadata.pb"
    if not metadata.is_file():
        raise UnsafeModelError(
            f"SavedModel '{path}' has no Keras metadata (keras_metadata.pb), so what it "
            "would run cannot be checked; load it with unsafe=True (--unsafe-load) if "
            "you trust it.")
    from tf_keras.protobuf import saved_metadata_pb2

    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString(metadata.read_bytes())
    return [json.loads(node.metadata) for node in proto.nodes if node.metadata]


def _entries(value: object, layer: str | None) -> Iterator[tuple[dict, str | None]]:
    """Every dict of a config with the name of the layer it belongs to."""
    if isinstance(value, dict):
        config = value.get("config")
        if "class_name" in value and isinstance(config, dict) and isinstance(
                config.get("name"), str):
            layer = config["name"]
        yield value, layer
        for item in value.values():
            yield from _entries(item, layer)
    elif isinstance(value, list):
        for item in value:
            yield from _entries(item, layer)


def _trusted(name: object, allowed: tuple[str, ...]) -> bool:
    return isinstance(name, str) and any(
        name == root or name.startswith(root + ".") for root in allowed)


def check_model_config(config: object, *, source: str = "the model") -> None:
    """Refuse a model config that would run code from outside tf_keras, Larq and
    larq_dybnn when deserialized or called.

    Arguments:
        config: a parsed model config (see `read_model_config`).
        source: how to name the file in errors.

    Raises:
        UnsafeModelError: naming the first offending layer: a `Lambda` layer, a
            class or function from another module or package, or a TensorFlow-op
            layer calling something other than math and array ops.
    """
    for entry, layer in _entries(config, None):
        class_name = entry.get("class_name")
        where = f"{source}: layer '{layer}'" if layer else source
        if class_name in CODE_LAYERS or class_name == "__lambda__":
            raise UnsafeModelError(
                f"{where} is a {class_name} layer, which runs Python code stored in the "
                "file; refusing to load it. Load it with unsafe=True (--unsafe-load) "
                "only if you trust the file.")
        module = entry.get("module")
        if "module" in entry and module is not None and not _trusted(module, TRUSTED_MODULES):
            raise UnsafeModelError(
                f"{where} uses {class_name!r} from module {module!r}, outside tf_keras, "
                "larq and larq_dybnn; refusing to load it. Load it with unsafe=True "
                "(--unsafe-load) only if you trust the file.")
        registered = entry.get("registered_name")
        if isinstance(registered, str) and ">" in registered and not _trusted(
                registered.split(">", 1)[0], TRUSTED_PACKAGES):
            raise UnsafeModelError(
                f"{where} uses the registered object {registered!r} from another "
                "package; refusing to load it (--unsafe-load to trust it).")
        if class_name in TF_OP_LAYERS:
            function = (entry.get("config") or {}).get("function")
            if not (isinstance(function, str) and (
                    function.startswith(TF_OP_NAMESPACES) or function in TF_OP_FUNCTIONS)):
                raise UnsafeModelError(
                    f"{where} calls the TensorFlow function {function!r}, which is not a "
                    "math or array op; refusing to load it (--unsafe-load to trust it).")


def load_model(path: str | os.PathLike, *, unsafe: bool = False) -> tf.keras.Model:
    """Load a `.keras`, `.h5` or SavedModel with this package's layers, checking first
    that it runs no code from outside tf_keras, Larq and larq_dybnn.

    Arguments:
        path: the model file or SavedModel folder.
        unsafe: skip the check (and Keras' own safe mode) for a file you trust.

    Returns:
        The model, not compiled.

    Raises:
        FileNotFoundError: if `path` does not exist.
        UnsafeModelError: (a ValueError) naming the layer that would run code.
        ValueError: if it cannot be loaded as a Keras model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model at '{path}'.")
    if not unsafe:
        for config in read_model_config(path):
            check_model_config(config, source=f"'{path}'")
    try:
        if path.is_dir() or not zipfile.is_zipfile(path):
            return tf.keras.models.load_model(path, compile=False)
        return tf.keras.models.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as error:  # Keras raises many types for unreadable files
        raise ValueError(
            f"Cannot load '{path}' as a Keras model (.keras, .h5 or SavedModel "
            f"folder): {type(error).__name__}: {error}"
        ) from None
