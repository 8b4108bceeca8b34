"""Pretrained-weights registry: names -> URL + sha256, verified downloads, loading.

`weights=` of a zoo model is None (random initialization), the path of a local `.h5`
weights file (as written by `model.save_weights("file.h5")`), or a name registered
here for that model. Downloads go through `tf.keras.utils.get_file`, are verified
against their sha256, and a file that does not match is deleted.

Weights trained by this project ship inside the package (`pretrained/`, listed in
`pretrained/manifest.json`) and are registered at import: for example
`DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
num_classes=10, weights="cifar10")` loads them without network access, after checking
their sha256 as a download would be checked. Each entry also records the builder
options it was trained with (width, stem, input shape, dynamic terms, reduction); a
model built with other options is a clear error. `register_weights` adds entries
(for your own releases, or for tests that serve a file on loopback).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

__all__ = [
    "WeightsEntry",
    "register_weights",
    "registered_weights",
    "check_weights",
    "load_weights",
]

#: Environment variable that overrides the download cache (default `~/.keras`).
CACHE_ENV = "LARQ_DYBNN_CACHE_DIR"


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable weights file.

    Attributes:
        model: zoo model name, e.g. "dybnn_reactnet_a".
        name: weights name, e.g. "imagenet".
        url: where to download the `.h5` weights file from.
        sha256: hex digest of the file.
        num_classes: classifier outputs the weights were trained with.
        include_top: whether the file holds the classifier (False: a no-top file).
        options: builder options the weights were trained with; a model built with
            other values of these options cannot load them.
        path: a file shipped with the package (used instead of `url`).
        accuracy: documented accuracies (e.g. `{"keras": 0.62, "lce": 0.62}`).
        input_contract: the preprocessing and class names the weights were trained
            with (`larq_dybnn.contract.InputContract.as_dict()`), or None.
    """

    model: str
    name: str
    url: str
    sha256: str
    num_classes: int
    include_top: bool = True
    options: dict = field(default_factory=dict)
    path: str | None = None
    accuracy: dict = field(default_factory=dict)
    input_contract: dict | None = None

    @property
    def filename(self) -> str:
        suffix = "" if self.include_top else "_notop"
        return f"{self.model}_{self.name}{suffix}.h5"


_REGISTRY: dict[tuple[str, str, bool], WeightsEntry] = {}


def register_weights(
    *,
    model: str,
    name: str,
    url: str,
    sha256: str,
    num_classes: int,
    include_top: bool = True,
    options: dict | None = None,
    path: str | os.PathLike | None = None,
    accuracy: dict | None = None,
    input_contract: dict | None = None,
) -> WeightsEntry:
    """Register a weights file under `name` for zoo model `model`.

    Arguments:
        model: zoo model name (the built model's `name`), e.g. "reactnet_18".
        name: the string users pass as `weights=`.
        url: download URL of the `.h5` file.
        sha256: its hex sha256 digest.
        num_classes: classifier outputs of the weights.
        include_top: False for a no-top file.
        options: builder options the weights need (e.g. `{"width_multiplier": 0.25,
            "stem": "cifar"}`); other values are refused with a clear error.
        path: a local file to load instead of downloading `url` (still checked
            against `sha256`).
        accuracy: documented accuracies, shown by `registered_weights`.
        input_contract: the weights' input contract as a dict; a model built with
            them carries it (`model.input_contract`) and writes it when saved.

    Returns:
        The entry.

    Raises:
        ValueError: for an empty name or URL, a sha256 that is not 64 hex digits, or
            a `name` that is an existing file path (which `weights=` would take as a
            local file).
    """
    if not name or not (url or path):
        raise ValueError("`name` and one of `url` or `path` must be non-empty.")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise ValueError(f"`sha256` must be 64 hex digits, got {sha256!r}.")
    if os.path.exists(name):
        raise ValueError(f"`name` {name!r} is also a local path; choose another name.")
    entry = WeightsEntry(model, name, url or "", sha256.lower(), int(num_classes),
                         include_top, dict(options or {}),
                         None if path is None else os.fspath(path), dict(accuracy or {}),
                         None if input_contract is None else dict(input_contract))
    _REGISTRY[(model, name, include_top)] = entry
    return entry


def registered_weights(model: str | None = None) -> list[WeightsEntry]:
    """List the registered weights, optionally only those of one model."""
    return [e for e in _REGISTRY.values() if model is None or e.model == model]


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _local(entry: WeightsEntry) -> str:
    """A shipped file, checked against its sha256 like a download."""
    if not os.path.isfile(entry.path):
        raise ValueError(
            f"Weights '{entry.name}' for {entry.model}: the shipped file '{entry.path}' "
            "is missing; reinstall larq-dybnn."
        )
    actual = _sha256(entry.path)
    if actual != entry.sha256:
        raise ValueError(
            f"Weights '{entry.name}' for {entry.model} in '{entry.path}' have sha256 "
            f"{actual}, expected {entry.sha256}; the file is damaged, reinstall larq-dybnn."
        )
    return entry.path


def _download(entry: WeightsEntry) -> str:
    cache_dir = os.environ.get(CACHE_ENV) or None
    if cache_dir is not None:
        # Keras silently falls back to /tmp/.keras for a cache dir that does not exist
        # yet; create it so the user's choice is honoured.
        try:
            os.makedirs(cache_dir, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"{CACHE_ENV}={cache_dir!r} cannot be used as the weights cache: {error}"
            ) from None
    cache_subdir = os.path.join("larq_dybnn", "models", entry.model)
    try:
        return tf.keras.utils.get_file(
            fname=entry.filename,
            origin=entry.url,
            file_hash=entry.sha256,
            hash_algorithm="sha256",
            cache_dir=cache_dir,
            cache_subdir=cache_subdir,
        )
    except ValueError:
        # get_file leaves a file that fails verification in the cache; remove it.
        base = cache_dir or os.path.join(os.path.expanduser("~"), ".keras")
        if not os.access(base, os.W_OK):
            base = os.path.join("/tmp", ".keras")
        bad = Path(base) / cache_subdir / entry.filename
        actual = _sha256(bad) if bad.exists() else "unknown"
        bad.unlink(missing_ok=True)
        raise ValueError(
            f"Weights '{entry.name}' for {entry.model} downloaded from {entry.url} "
            f"have sha256 {actual}, expected {entry.sha256}. The file was deleted; "
            "check the URL or the registered hash."
        ) from None


def _check_options(entry: WeightsEntry, options: dict | None) -> None:
    if not entry.options or options is None:
        return
    wrong = {k: options.get(k) for k, v in entry.options.items()
             if _normal(options.get(k)) != _normal(v)}
    if wrong:
        raise ValueError(
            f"`weights`='{entry.name}' of {entry.model} were trained with "
            + ", ".join(f"{k}={v!r}" for k, v in entry.options.items())
            + "; this model was built with "
            + ", ".join(f"{k}={v!r}" for k, v in wrong.items())
            + ". Build it with the options of the weights, or weights=None."
        )


def _normal(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def check_weights(
    weights: str | os.PathLike | None, *, model: str, include_top: bool, num_classes: int
) -> None:
    """Check a `weights` argument without downloading, before a model is built.

    Raises:
        ValueError: as `load_weights`, for every problem that can be seen without
            the file's contents.
    """
    if weights is not None:
        _entry(os.fspath(weights), model=model, include_top=include_top,
               num_classes=num_classes)


def _entry(
    weights: str, *, model: str, include_top: bool, num_classes: int
) -> tuple[WeightsEntry | None, bool]:
    """Return (registry entry or None for a local file, whether to load by name)."""
    if os.path.exists(weights):
        if not str(weights).endswith(".h5"):
            raise ValueError(
                f"`weights` file '{weights}' is not an .h5 weights file (write one "
                "with `model.save_weights('file.h5')`)."
            )
        return None, not include_top
    entry = _REGISTRY.get((model, weights, include_top))
    by_name = False
    if entry is None and not include_top:
        entry, by_name = _REGISTRY.get((model, weights, True)), True
    if entry is None:
        known = sorted({e.name for e in registered_weights(model)})
        raise ValueError(
            f"`weights` must be None, the path of an .h5 weights file, or a name "
            f"registered for {model} ({', '.join(known) or 'none registered'}); got "
            f"{weights!r}, which is neither an existing file nor a registered name."
        )
    if include_top and entry.num_classes != num_classes:
        raise ValueError(
            f"`num_classes`={num_classes} does not match weights '{weights}' of "
            f"{model}, which have {entry.num_classes} classes. Use "
            f"num_classes={entry.num_classes}, or include_top=False and add your own "
            "classifier."
        )
    return entry, by_name


def recorded_option(weights, *, model: str, option: str):
    """The value of builder option `option` recorded for registered weights.

    Arguments:
        weights: the builder's `weights` argument (None, a path or a name).
        model: registry key of the model (e.g. "dybnn_reactnet_18").
        option: the option's name (e.g. "reduction").

    Returns:
        The recorded value, or None when `weights` is not a registered name or its
        entry does not record the option.
    """
    entry = registered_entry(weights, model=model)
    return None if entry is None else entry.options.get(option)


def registered_entry(weights, *, model: str) -> WeightsEntry | None:
    """The registry entry `weights` names for `model`, or None (no weights, a local
    file, or a name not registered)."""
    if weights is None or os.path.exists(os.fspath(weights)):
        return None
    return _REGISTRY.get((model, os.fspath(weights), True)) or _REGISTRY.get(
        (model, os.fspath(weights), False))


#: The classifier size of a zoo model built without named weights (ImageNet).
DEFAULT_NUM_CLASSES = 1000


def resolve_num_classes(num_classes: int | None, weights, *, model: str) -> int:
    """The classifier size to build with: the given one, else that of the named
    weights, else `DEFAULT_NUM_CLASSES`. An explicit size that differs from the
    weights' is an error later (`load_weights`)."""
    if num_classes is not None:
        return num_classes
    entry = registered_entry(weights, model=model)
    return DEFAULT_NUM_CLASSES if entry is None else entry.num_classes


def load_weights(
    model: tf.keras.Model,
    weights: str | os.PathLike | None,
    *,
    model_name: str,
    include_top: bool,
    num_classes: int,
    options: dict | None = None,
) -> None:
    """Load `weights` into a freshly built zoo model.

    Arguments:
        model: the model.
        weights: None, a local `.h5` path, or a registered name.
        model_name: registry key of the model.
        include_top: whether the model has its classifier; a no-top model loads a
            full file by layer name, skipping the classifier.
        num_classes: classifier outputs of the model.
        options: the builder's options, checked against the entry's.

    Raises:
        ValueError: for an unknown name, a `num_classes` or builder options that do
            not fit, a hash mismatch, or a file whose weights do not fit the model.
    """
    if weights is None:
        return
    weights = os.fspath(weights)
    entry, by_name = _entry(
        weights, model=model_name, include_top=include_top, num_classes=num_classes
    )
    if entry is not None:
        _check_options(entry, options)
    if entry is None:
        path = weights
    else:
        path = _local(entry) if entry.path else _download(entry)
    try:
        model.load_weights(path, by_name=by_name)
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"`weights` '{weights}' do not fit {model.name} (include_top="
            f"{include_top}, num_classes={num_classes}): {error}"
        ) from None


#: The folder of the weights shipped with the package.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def _register_shipped() -> None:
    manifest = PRETRAINED_DIR / "manifest.json"
    if not manifest.is_file():
        return
    for item in json.loads(manifest.read_text()):
        register_weights(
            model=item["model"], name=item["name"], url="", sha256=item["sha256"],
            num_classes=item["num_classes"], options=item["options"],
            path=PRETRAINED_DIR / item["file"], accuracy=item.get("accuracy", {}),
            input_contract=item.get("input_contract"),
        )


_register_shipped()
