"""Load Keras models from files that may come from strangers, without running their code.

A Keras model file is code as much as data: a `Lambda` layer or an RNN cell wrapper
stores a Python function (marshalled bytecode in `.h5`, a module and function name in
`.keras`), a config may name any module, which Keras imports while deserializing, and a
SavedModel is a TensorFlow program whose functions and initializers run when it loads.

`load_model` is safe by construction rather than by a list of known attacks:

1. **One format, decided as tf_keras decides it.** A `.keras` file must be a zip
   archive and nothing else; a `.h5`/`.hdf5` file must be HDF5 and nothing else (a file
   that is both, a polyglot, is refused: tf_keras picks by suffix, a checker by
   content). Any other suffix is refused. The file is read once into a private copy,
   and that copy is what is checked and loaded.
2. **An allowlist.** Every object in the model config must be a known class of
   tf_keras, Larq or this package (`Lambda` excepted), every function named by string
   a known activation, initializer, regularizer, constraint or quantizer, and no
   argument may hold code (`function`, `*_fn` and their `*_type` fields), except the
   math and array ops of tf_keras' `TFOpLambda` layers. Numbers must be finite and fit
   in 64 bits, nesting is capped, and the config's decompressed size is capped.
3. **Keras' safe mode** around every load, the legacy `.h5` loader included.
4. **No SavedModel without consent.** A SavedModel's graph is a program that no config
   check covers (a resource initializer runs at load time), so it loads only with
   `unsafe=True` (`--unsafe-load`).

What this does not promise: that a model is correct, small to compute, or free of
bugs in TensorFlow's own kernels or HDF5 parser; `unsafe=True` opts out of all of it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import tensorflow as tf

__all__ = ["load_model", "check_model_config", "read_model_config", "UnsafeModelError",
           "MAX_CONFIG_BYTES"]

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
#: Values tf_keras' serializer writes for data, not code.
DATA_CLASSES = frozenset({"__tensor__", "__numpy__", "__bytes__"})
#: Largest model config (decompressed) read from a file: ReActNet-A's is about 0.3 MB.
MAX_CONFIG_BYTES = 64 * 2**20
#: Deepest nesting of a model config (a ReActNet-A config nests about 12 levels).
MAX_DEPTH = 64
#: Largest integer a config may hold: a signed 64-bit one (Keras writes object ids as
#: integers; TensorFlow and NumPy overflow past this).
MAX_INTEGER = 2**63 - 1
#: A `.keras` member may not inflate more than this many times its stored size (plus
#: 1 MiB): weights barely compress, a zip bomb inflates a thousandfold.
MAX_INFLATION = 200
#: Compression methods tf_keras writes and Python reads.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_HDF5_SUFFIXES = (".h5", ".hdf5")
_NOT_CALLABLE_BY_NAME = frozenset({"get", "serialize", "deserialize"})
#: Arguments that hold a function (with `*_fn` and `*_fn_type`): only TFOpLambda's.
_CODE_ARGUMENTS = ("function", "function_type", "output_shape_type")
_IDENTIFIER_SUFFIXES = ("_initializer", "_regularizer", "_constraint", "_quantizer",
                        "activation")


class UnsafeModelError(ValueError):
    """A model file would run code from outside tf_keras, Larq and larq_dybnn, or is in
    a form whose safety cannot be checked."""


def _defined_in_trusted(obj: object) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return _trusted(module, TRUSTED_MODULES)


@lru_cache(maxsize=1)
def _allowlists() -> tuple[frozenset, frozenset]:
    """(class names, function names) a config may use, read off the trusted packages."""
    import larq

    from larq_dybnn import hyper, layers, quantizers  # noqa: F401  (register their objects)

    class_modules = (tf.keras.layers, tf.keras.initializers, tf.keras.regularizers,
                     tf.keras.constraints, tf.keras.mixed_precision, larq.layers,
                     larq.quantizers, larq.constraints)
    name_modules = (tf.keras.activations, tf.keras.initializers, tf.keras.regularizers,
                    tf.keras.constraints, larq.quantizers, larq.constraints,
                    larq.activations, larq.math)
    classes = {name for module in class_modules for name, obj in vars(module).items()
               if isinstance(obj, type) and not name.startswith("_")
               and _defined_in_trusted(obj)}
    classes |= {"Functional", "Sequential", "Model"} | set(TF_OP_LAYERS)
    names = {name for module in name_modules for name, obj in vars(module).items()
             if callable(obj) and not name.startswith("_") and _defined_in_trusted(obj)}
    for name, obj in tf.keras.utils.get_custom_objects().items():
        if _defined_in_trusted(obj):
            (classes if isinstance(obj, type) else names).add(name.split(">")[-1])
            names.add(name)
    classes -= set(CODE_LAYERS)
    names -= _NOT_CALLABLE_BY_NAME | set(CODE_LAYERS)
    return frozenset(classes), frozenset(names)


# -- reading ----------------------------------------------------------------------------
def _parse_json(text: str | bytes, what: str) -> object:
    def refuse_constant(name: str) -> float:
        raise ValueError(f"{what}: the number {name} is not allowed in a model config")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        raise ValueError(f"{what}: its JSON is nested too deeply to read.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what}: damaged JSON ({type(error).__name__}: {error}).") from None


def _read_member(archive: zipfile.ZipFile, name: str, *, path: str,
                 required: bool = True) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        if required:
            raise ValueError(f"Cannot load '{path}': the archive has no {name}.") from None
        return None
    if info.file_size > MAX_CONFIG_BYTES:
        raise ValueError(f"Cannot load '{path}': its {name} declares {info.file_size:,} "
                         f"bytes, more than the {MAX_CONFIG_BYTES:,} a model config may "
                         "have.")
    with archive.open(info) as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"Cannot load '{path}': its {name} inflates past "
                         f"{MAX_CONFIG_BYTES:,} bytes.")
    return data


def _check_archive(archive: zipfile.ZipFile, path: str) -> None:
    for info in archive.infolist():
        if info.compress_type not in ZIP_METHODS:
            raise ValueError(f"Cannot load '{path}': member {info.filename!r} uses zip "
                             f"compression method {info.compress_type}, not stored or "
                             "deflated.")
        if info.file_size > MAX_INFLATION * info.compress_size + 2**20:
            raise ValueError(f"Cannot load '{path}': member {info.filename!r} declares "
                             f"{info.file_size:,} bytes from {info.compress_size:,} "
                             "stored ones (a zip bomb?).")


def _keras_config(file: Path, path: str) -> object:
    try:
        with zipfile.ZipFile(file) as archive:
            _check_archive(archive, path)
            metadata = _read_member(archive, "metadata.json", path=path, required=False)
            if metadata is not None:
                _parse_json(metadata, f"'{path}' (metadata.json)")
            return _parse_json(_read_member(archive, "config.json", path=path),
                               f"'{path}' (config.json)")
    except (OSError, zipfile.BadZipFile, NotImplementedError, EOFError) as error:
        raise ValueError(f"Cannot load '{path}': its archive cannot be read "
                         f"({type(error).__name__}: {error}).") from None


def _h5_config(file: Path, path: str) -> object:
    import h5py

    try:
        with h5py.File(file, "r") as handle:
            config = handle.attrs.get("model_config")
    except (OSError, ValueError, RuntimeError) as error:
        raise ValueError(f"Cannot load '{path}': its HDF5 structure cannot be read "
                         f"({type(error).__name__}: {error}).") from None
    if config is None:
        raise UnsafeModelError(f"'{path}' holds no model config (weights only?); it "
                               "cannot be loaded as a model.")
    if isinstance(config, bytes) and len(config) > MAX_CONFIG_BYTES:
        raise ValueError(f"Cannot load '{path}': its model config has {len(config):,} "
                         f"bytes, more than {MAX_CONFIG_BYTES:,}.")
    return _parse_json(config, f"'{path}' (model_config)")


def _file_format(path: Path, shown: Path | None = None) -> str:
    """'keras' or 'h5', decided as tf_keras decides (suffix first), with the content
    required to agree; raises for anything else, naming `shown` (default `path`)."""
    import h5py

    file, path = path, shown or path
    if path.is_dir():
        raise UnsafeModelError(
            f"'{path}' is a SavedModel folder. A SavedModel is a TensorFlow program: its "
            "graph functions and initializers run when it loads, and no config check "
            "covers them. Load it with unsafe=True (--unsafe-load) only if you trust "
            "it, or ask for a .keras file.")
    if not file.is_file():
        raise ValueError(f"Cannot load '{path}': it is not a regular file.")
    suffix = path.suffix.lower()
    is_zip = zipfile.is_zipfile(file)
    is_hdf5 = h5py.is_hdf5(str(file))
    if path.suffix == ".keras":
        if not is_zip:
            raise ValueError(f"Cannot load '{path}': a .keras file must be a zip archive.")
        if is_hdf5:
            raise UnsafeModelError(f"'{path}' is both a zip archive and an HDF5 file; "
                                   "refusing an ambiguous file.")
        return "keras"
    if suffix in _HDF5_SUFFIXES:
        if not is_hdf5:
            raise ValueError(f"Cannot load '{path}': a {path.suffix} file must be HDF5.")
        if is_zip:
            raise UnsafeModelError(f"'{path}' is both an HDF5 file and a zip archive; "
                                   "refusing an ambiguous file.")
        return "h5"
    raise ValueError(f"Cannot load '{path}' as a Keras model: its name must end in "
                     ".keras, .h5 or .hdf5 (what it holds is decided by the name, as "
                     "Keras does).")


def read_model_config(path: str | os.PathLike) -> list[object]:
    """The model config stored in a `.keras` or `.h5` file.

    Arguments:
        path: the model file.

    Returns:
        A list with the parsed model config.

    Raises:
        UnsafeModelError: for a SavedModel folder, a file that is two formats at once,
            or a file with no model config (a `.h5` of weights only).
        ValueError: for a file whose config cannot be read, naming the file.
    """
    return _read_config(Path(path), Path(path))


def _read_config(file: Path, shown: Path) -> list[object]:
    form = _file_format(file, shown)
    return [_keras_config(file, str(shown)) if form == "keras" else _h5_config(file, str(shown))]


# -- checking ---------------------------------------------------------------------------
def _entries(value: object) -> Iterator[tuple[object, str | None, str | None, int]]:
    """Every value of a config with its key, the layer it belongs to and its depth
    (iteratively: a deep config cannot exhaust Python's stack)."""
    stack: list[tuple[object, str | None, str | None, int]] = [(value, None, None, 0)]
    while stack:
        item, key, layer, depth = stack.pop()
        if isinstance(item, dict):
            config = item.get("config")
            if "class_name" in item and isinstance(config, dict) and isinstance(
                    config.get("name"), str):
                layer = config["name"]
        yield item, key, layer, depth
        if isinstance(item, dict):
            stack.extend((child, str(k), layer, depth + 1) for k, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, key, layer, depth + 1) for child in item)


def _trusted(name: object, allowed: tuple[str, ...]) -> bool:
    return isinstance(name, str) and any(
        name == root or name.startswith(root + ".") for root in allowed)


def _refuse(where: str, what: str) -> None:
    raise UnsafeModelError(f"{where} {what}; refusing to load it. Load it with "
                           "unsafe=True (--unsafe-load) only if you trust the file.")


def _check_object(entry: dict, where: str, classes: frozenset, names: frozenset) -> None:
    class_name = entry.get("class_name")
    config = entry.get("config")
    if class_name in CODE_LAYERS or class_name == "__lambda__":
        _refuse(where, f"is a {class_name} layer, which runs Python code stored in the file")
    module = entry.get("module")
    if "module" in entry and module is not None and not _trusted(module, TRUSTED_MODULES):
        _refuse(where, f"uses {class_name!r} from module {module!r}, outside tf_keras, "
                       "larq and larq_dybnn")
    registered = entry.get("registered_name")
    if isinstance(registered, str) and ">" in registered and not _trusted(
            registered.split(">", 1)[0], TRUSTED_PACKAGES):
        _refuse(where, f"uses the registered object {registered!r} from another package")
    if class_name in DATA_CLASSES:
        return
    if class_name == "function":
        if not (isinstance(config, str) and config in names):
            _refuse(where, f"names the function {config!r}, which is not a known "
                           "activation, initializer, constraint or quantizer")
        return
    if not isinstance(class_name, str) or class_name.split(">")[-1] not in classes:
        _refuse(where, f"uses the class {class_name!r}, which is not a known tf_keras, "
                       "larq or larq_dybnn class")
    if class_name in TF_OP_LAYERS:
        function = (config or {}).get("function") if isinstance(config, dict) else None
        if not (isinstance(function, str) and (
                function.startswith(TF_OP_NAMESPACES) or function in TF_OP_FUNCTIONS)):
            _refuse(where, f"calls the TensorFlow function {function!r}, which is not a "
                           "math or array op")
    elif isinstance(config, dict):
        for key in config:
            if key in _CODE_ARGUMENTS or key.endswith(("_fn", "_fn_type")):
                _refuse(where, f"has the argument {key!r}, which holds code")


def check_model_config(config: object, *, source: str = "the model") -> None:
    """Refuse a model config that would run code from outside tf_keras, Larq and
    larq_dybnn when deserialized or called.

    Arguments:
        config: a parsed model config (see `read_model_config`).
        source: how to name the file in errors.

    Raises:
        UnsafeModelError: naming the first offending layer: a `Lambda` layer, a class
            or function not on the allowlist, an argument that holds code, a module or
            registered package outside tf_keras, Larq and larq_dybnn, or a TensorFlow-op
            layer calling something other than math and array ops.
        ValueError: for numbers that are not finite or do not fit in 64 bits, or a
            config nested deeper than `MAX_DEPTH`.
    """
    classes, names = _allowlists()
    for value, key, layer, depth in _entries(config):
        where = f"{source}: layer '{layer}'" if layer else source
        if depth > MAX_DEPTH:
            raise ValueError(f"{source}: the model config is nested more than {MAX_DEPTH} "
                             "levels deep.")
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) and abs(value) > MAX_INTEGER:
            raise ValueError(f"{where}: the number {value} in {key!r} does not fit in "
                             "64 bits.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: the number {value} in {key!r} is not finite.")
        if key == "name" and isinstance(value, str) and not value.isprintable():
            raise ValueError(f"{source}: a layer name holds control characters "
                             f"({value.encode('unicode_escape').decode('ascii')[:60]!r}).")
        if isinstance(value, str) and key is not None and key.endswith(
                _IDENTIFIER_SUFFIXES) and value not in names:
            _refuse(where, f"names {value!r} as its {key}, which is not a known "
                           "activation, initializer, regularizer, constraint or quantizer")
        if isinstance(value, dict) and "class_name" in value:
            _check_object(value, where, classes, names)


# -- loading ----------------------------------------------------------------------------
def load_model(path: str | os.PathLike, *, unsafe: bool = False) -> tf.keras.Model:
    """Load a `.keras` or `.h5` model with this package's layers, checking first that
    it runs no code from outside tf_keras, Larq and larq_dybnn.

    Arguments:
        path: the model file (or, with `unsafe=True`, a SavedModel folder).
        unsafe: skip every check (and Keras' own safe mode) for a file you trust.

    Returns:
        The model, not compiled.

    Raises:
        FileNotFoundError: if `path` does not exist.
        UnsafeModelError: (a ValueError) naming the layer or form that is refused.
        ValueError: if it cannot be loaded as a Keras model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model at '{path}'.")
    if unsafe:
        return _load(path, path, safe=False)
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    folder = tempfile.mkdtemp(prefix="larq-dybnn-load-")
    try:
        # Check and load one private copy: the file cannot change in between.
        if path.is_dir() or not path.is_file() or path.suffix.lower() not in (
                ".keras", *_HDF5_SUFFIXES):
            _file_format(path)  # raises, naming the file and why
        copy = Path(folder) / f"model{path.suffix}"
        with open(path, "rb") as source, open(copy, "xb") as target:
            shutil.copyfileobj(source, target)
        for config in _read_config(copy, path):
            if isinstance(config, dict):
                # Loaded with compile=False: tf_keras drops the optimizer's config unread.
                config = {k: v for k, v in config.items() if k != "compile_config"}
            check_model_config(config, source=f"'{path}'")
        with SafeModeScope(True):
            return _load(copy, path, safe=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _load(copy: Path, path: Path, *, safe: bool) -> tf.keras.Model:
    try:
        if copy.suffix == ".keras" and not copy.is_dir():
            return tf.keras.models.load_model(copy, compile=False, safe_mode=safe)
        return tf.keras.models.load_model(copy, compile=False)
    except Exception as error:  # Keras raises many types for unreadable files
        text = str(error).replace(str(copy), str(path))
        raise ValueError(
            f"Cannot load '{path}' as a Keras model (.keras or .h5): "
            f"{type(error).__name__}: {text}") from None
