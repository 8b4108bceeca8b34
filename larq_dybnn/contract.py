"""The input contract of a trained model: image size, preprocessing, class names.

A model trained by `larq-dybnn train` records how its inputs must be prepared, so that
every consumer (evaluate, convert --verify, notebooks, an app on a phone) applies the
same preprocessing instead of guessing, and data that does not fit is an error.

    image_size      (height, width) the model takes
    channels        3 (RGB)
    preprocess      the name of the recipe ("cifar", "imagenet", "digits")
    mean, std       per channel, on pixels scaled to [0, 1]: x = (p / 255 - mean) / std
    resize          how images of another size are brought to `image_size`:
                    "none" (they must already have it) or "short_side_centre_crop"
    class_names     the labels in output order

Where it is stored (`write_contract` / `read_contract`, one format everywhere, JSON):

- `.keras`: a member `larq_dybnn_input_contract.json` of the zip archive;
- `.h5`: the root attribute `larq_dybnn_input_contract`;
- SavedModel folder: `assets/larq_dybnn_input_contract.json`;
- `.tflite`: an entry `larq_dybnn.input_contract` of the flatbuffer's metadata table
  (a buffer holding the JSON). TFLite's standard NormalizationOptions metadata needs
  tflite-support, which does not install beside TensorFlow 2.16's pinned stack; the
  JSON entry carries the same numbers (mean/std on 0..255 pixels are `255 * mean`,
  `255 * std`) and the labels, and runtimes ignore metadata they do not know.

Every write is atomic: a reader sees the old file or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from larq_dybnn._checks import printable
from larq_dybnn._io import atomic_write_bytes, replacing

__all__ = [
    "InputContract", "contract_for", "read_contract", "write_contract", "add_to_flatbuffer",
    "CONTRACT_NAME",
]

#: Name of the contract in every format (file member, attribute, metadata entry).
CONTRACT_NAME = "larq_dybnn.input_contract"
_MEMBER = "larq_dybnn_input_contract.json"
_H5_ATTRIBUTE = "larq_dybnn_input_contract"

#: Per-channel mean and std (on [0, 1] pixels) and resize mode of each recipe.
RECIPES = {
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "none"),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "short_side_centre_crop"),
    "digits": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "none"),
}


@dataclass(frozen=True)
class InputContract:
    """How a model's inputs must be prepared (see the module docstring).

    Attributes:
        image_size: `(height, width)`.
        channels: input channels (3).
        preprocess: recipe name, a key of `larq_dybnn.training.preprocessing.PREPROCESSING`.
        mean, std: per channel, on [0, 1]-scaled pixels.
        resize: "none" or "short_side_centre_crop".
        class_names: labels in output order.
    """

    image_size: tuple[int, int]
    channels: int
    preprocess: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str
    class_names: tuple[str, ...]

    def __post_init__(self):
        problems = []
        if len(self.image_size) != 2 or any(int(v) <= 0 for v in self.image_size):
            problems.append(f"image_size {self.image_size} is not two positive sizes")
        if self.channels <= 0:
            problems.append(f"channels {self.channels} is not positive")
        if self.preprocess not in RECIPES:
            problems.append(f"preprocess {self.preprocess!r} is not one of {sorted(RECIPES)}")
        else:
            # One interpretation everywhere: the recipe's name and the recorded numbers
            # must say the same, so a runtime using either prepares the same inputs.
            mean, std, resize = RECIPES[self.preprocess]
            if len(self.mean) != self.channels or len(self.std) != self.channels or not (
                    np.allclose(self.mean, mean[:self.channels], rtol=0, atol=1e-6)
                    and np.allclose(self.std, std[:self.channels], rtol=0, atol=1e-6)):
                problems.append(
                    f"mean {self.mean} / std {self.std} are not the numbers of the recipe "
                    f"{self.preprocess!r} ({mean} / {std})")
            if self.resize != resize:
                problems.append(f"resize {self.resize!r} is not the recipe's {resize!r}")
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            problems.append("class_names must be a non-empty list of distinct names")
        unprintable = [name for name in self.class_names if not str(name).isprintable()
                       or len(str(name)) > 200]
        if unprintable:
            problems.append(f"class name {printable(unprintable[0])[:60]!r} holds control "
                            "characters or is longer than 200 characters")
        if problems:
            raise ValueError("; ".join(problems))

    def check_outputs(self, outputs: int, *, source: str) -> None:
        """Raise if a model with `outputs` classes does not fit the recorded names.

        Raises:
            ValueError: naming `source`, the class count and the output count.
        """
        if int(outputs) != len(self.class_names):
            raise ValueError(
                f"The input contract of {source} names {len(self.class_names)} classes, "
                f"but the model has {outputs} outputs.")

    def as_dict(self) -> dict:
        """JSON-ready fields, with the 0..255 form of mean and std for runtimes."""
        return {
            **asdict(self), "image_size": list(self.image_size), "mean": list(self.mean),
            "std": list(self.std), "class_names": list(self.class_names),
            "mean_255": [255 * m for m in self.mean], "std_255": [255 * s for s in self.std],
            "format": 1,
        }

    @classmethod
    def from_dict(cls, value: dict, *, source: str = "the record") -> "InputContract":
        """Build from `as_dict()` output.

        Raises:
            ValueError: naming `source` and the field, for a malformed record.
        """
        try:
            contract = cls(
                image_size=tuple(int(v) for v in value["image_size"]),
                channels=int(value["channels"]), preprocess=str(value["preprocess"]),
                mean=tuple(float(v) for v in value["mean"]),
                std=tuple(float(v) for v in value["std"]), resize=str(value["resize"]),
                class_names=tuple(str(v) for v in value["class_names"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            detail = str(error) if isinstance(error, ValueError) else repr(error)
            raise ValueError(f"The input contract in {source} is malformed: {detail}") from None
        return contract

    def describe(self) -> str:
        """One line for reports and `larq-dybnn inspect`."""
        height, width = self.image_size
        names = ", ".join(self.class_names[:5]) + (", ..." if len(self.class_names) > 5 else "")
        return (
            f"{height}x{width}x{self.channels}, preprocess '{self.preprocess}' "
            f"(x = (pixel / 255 - mean) / std, mean {_fmt(self.mean)}, std "
            f"{_fmt(self.std)}), resize {self.resize}, {len(self.class_names)} classes "
            f"({names})"
        )

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """Apply the recorded normalization to 0..255 images (float32 out)."""
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        return ((np.asarray(images, np.float32) / 255.0 - mean) / std).astype(np.float32)

    def check_classes(self, class_names: Sequence[str], *, source: str) -> None:
        """Raise if `class_names` (of data) are not the model's, in the same order.

        Raises:
            ValueError: naming what the model expects and what `source` has.
        """
        given = tuple(class_names)
        if given == self.class_names:
            return
        if sorted(given) == sorted(self.class_names):
            problem = "the same classes in another order"
        else:
            problem = f"other classes ({_names(given)})"
        raise ValueError(
            f"The model was trained on the classes {_names(self.class_names)} in this "
            f"order, but '{source}' has {problem}; its labels would be read wrong."
        )

    def check_channels(self, channels: int, *, source: str) -> None:
        """Raise if images with `channels` channels do not fit the model.

        Raises:
            ValueError: naming the model's channels and the data's.
        """
        if int(channels) != self.channels:
            raise ValueError(
                f"The model takes {self.channels}-channel images, but '{source}' gives "
                f"{channels}-channel images."
            )

    def check_inputs(self, input_shape: Sequence[int | None], *, source: str) -> None:
        """Raise if the model's input (NHWC) is not the size and channels this contract
        says: a file would then promise one size and take another.

        Raises:
            ValueError: naming `source`, the model's input and the contract's.
        """
        height, width, channels = (list(input_shape)[1:] + [None] * 3)[:3]
        size = (height, width)
        if None not in size and tuple(int(v) for v in size) != tuple(self.image_size):
            raise ValueError(
                f"The input contract says {self.image_size[0]}x{self.image_size[1]} images, "
                f"but {source} takes {height}x{width}; export with a contract of the "
                "model's own size.")
        if channels is not None:
            self.check_channels(int(channels), source=source)

    def check_image_size(self, size: tuple[int, int], *, source: str, resize: bool) -> None:
        """Raise if images of `size` do not fit and no resize was asked for.

        Raises:
            ValueError: naming the model's size and the data's.
        """
        if tuple(size) == tuple(self.image_size) or resize or self.resize != "none":
            return
        raise ValueError(
            f"The model takes {self.image_size[0]}x{self.image_size[1]} images "
            f"(preprocess '{self.preprocess}'), but '{source}' has "
            f"{size[0]}x{size[1]} images. Pass --image-size / resize=True to resize "
            "them anyway, or use data of the size the model was trained on."
        )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")


def contract_for(preprocess: str, *, image_size: int | tuple[int, int],
                 class_names: Sequence[str], channels: int = 3) -> InputContract:
    """The contract of a model trained with `preprocess` at `image_size`.

    Raises:
        ValueError: for an unknown `preprocess`.
    """
    if preprocess not in RECIPES:
        raise ValueError(f"`preprocess` must be one of {sorted(RECIPES)}, got {preprocess!r}.")
    mean, std, resize = RECIPES[preprocess]
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    return InputContract(tuple(int(s) for s in size), channels, preprocess, mean, std,
                         resize, tuple(str(c) for c in class_names))


def _kind(path: Path) -> str:
    if path.is_dir():
        return "savedmodel"
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5", ".tflite"):
        return suffix[1:]
    raise ValueError(
        f"'{path}': the input contract is kept in .keras, .h5, SavedModel folders and "
        ".tflite files only."
    )


def add_to_flatbuffer(flatbuffer: bytes, contract: InputContract) -> bytes:
    """Return `flatbuffer` with the contract in its metadata table (replacing one)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(contract.as_dict()).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = CONTRACT_NAME.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != entry.name] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _from_flatbuffer(flatbuffer: bytes, source: str) -> InputContract | None:
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == CONTRACT_NAME.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            try:
                record = json.loads(bytes(data))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise ValueError(f"The input contract in {source} is not JSON: "
                                 f"{error}") from None
            return InputContract.from_dict(record, source=source)
    return None


def write_contract(path: str | os.PathLike, contract: InputContract) -> Path:
    """Record `contract` in a saved model file (see the module docstring), atomically.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for a file type that cannot hold the contract.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model at '{path}'.")
    text = json.dumps(contract.as_dict(), indent=2)
    kind = _kind(path)
    if kind == "savedmodel":
        (path / "assets").mkdir(exist_ok=True)
        return atomic_write_bytes(path / "assets" / _MEMBER, text.encode())
    if kind == "tflite":
        return atomic_write_bytes(path, add_to_flatbuffer(path.read_bytes(), contract))
    with replacing(path) as temporary:
        shutil.copyfile(path, temporary)
        if kind == "keras":
            with zipfile.ZipFile(path) as source, zipfile.ZipFile(temporary, "w") as target:
                for item in source.infolist():
                    if item.filename != _MEMBER:
                        target.writestr(item, source.read(item.filename))
                target.writestr(_MEMBER, text)
        else:
            import h5py

            with h5py.File(temporary, "a") as handle:
                handle.attrs[_H5_ATTRIBUTE] = text
    return path


def attach_contract(model, contract: InputContract) -> None:
    """Make an in-memory model carry `contract`: as `model.input_contract`, and in
    every file `model.save` writes (.keras, .h5, SavedModel), so that a model built
    with named weights keeps their preprocessing and class names when saved.

    Arguments:
        model: a Keras model.
        contract: its input contract.
    """
    model.input_contract = contract
    save = model.save

    def save_with_contract(filepath, *args, **kwargs):
        result = save(filepath, *args, **kwargs)
        if isinstance(filepath, (str, os.PathLike)) and (
                Path(filepath).is_dir() or Path(filepath).suffix.lower() in (".keras", ".h5")):
            write_contract(filepath, contract)
        return result

    model.save = save_with_contract


def read_contract(source: str | os.PathLike | bytes) -> InputContract | None:
    """The input contract recorded in a model file or flatbuffer; None without one.

    Arguments:
        source: a `.keras`, `.h5`, SavedModel folder or `.tflite` path, or the bytes
            of a flatbuffer.

    Raises:
        FileNotFoundError: if the path does not exist.
        ValueError: for a malformed record (naming the file).
    """
    if isinstance(source, (bytes, bytearray)):
        return _from_flatbuffer(bytes(source), "the flatbuffer")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"No model at '{path}'.")
    kind = _kind(path)
    text = None
    if kind == "savedmodel":
        member = path / "assets" / _MEMBER
        text = member.read_text() if member.is_file() else None
    elif kind == "tflite":
        return _from_flatbuffer(path.read_bytes(), f"'{path}'")
    elif kind == "keras":
        with zipfile.ZipFile(path) as archive:
            if _MEMBER in archive.namelist():
                text = archive.read(_MEMBER).decode()
    else:
        import h5py

        with h5py.File(path, "r") as handle:
            value = handle.attrs.get(_H5_ATTRIBUTE)
            text = value.decode() if isinstance(value, bytes) else value
    if text is None:
        return None
    try:
        return InputContract.from_dict(json.loads(text), source=f"'{path}'")
    except json.JSONDecodeError as error:
        raise ValueError(f"The input contract in '{path}' is not JSON: {error}") from None
