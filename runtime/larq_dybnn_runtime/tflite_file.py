"""Read the input contract stored in a `.tflite` file, without TensorFlow.

larq-dybnn writes the contract as JSON into a buffer named by the metadata entry
`larq_dybnn.input_contract` (see `larq_dybnn.contract`). This reads the three tables it
needs (Model.metadata, Metadata, Model.buffers) with every offset bounds-checked, so a
damaged file is an error, never a read outside the file.
"""

from __future__ import annotations

import json
import struct

__all__ = ["CONTRACT_NAME", "ContractError", "read_contract"]

CONTRACT_NAME = "larq_dybnn.input_contract"
# Field slots (vtable offsets) of the TFLite schema: Model.buffers is field 4,
# Model.metadata field 6; Metadata.name 0, Metadata.buffer 1; Buffer.data 0.
_MODEL_BUFFERS, _MODEL_METADATA = 4 + 2 * 4, 4 + 2 * 6
_METADATA_NAME, _METADATA_BUFFER, _BUFFER_DATA = 4, 6, 4
#: A contract is a few kilobytes; 1 MiB bounds a crafted one.
_MAX_CONTRACT_BYTES = 2**20


class ContractError(ValueError):
    """A `.tflite` file whose contract cannot be read (or that has none)."""


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.source = data, source

    def _u(self, fmt: str, at: int) -> int:
        size = struct.calcsize(fmt)
        if at < 0 or at + size > len(self.data):
            raise ContractError(f"{self.source} is damaged: an offset points outside the file.")
        return struct.unpack_from(fmt, self.data, at)[0]

    def field(self, table: int, slot: int) -> int | None:
        """Absolute position of a field's value, or None when absent."""
        vtable = table - self._u("<i", table)
        if slot >= self._u("<H", vtable):
            return None
        offset = self._u("<H", vtable + slot)
        return table + offset if offset else None

    def indirect(self, at: int) -> int:
        return at + self._u("<I", at)

    def vector(self, table: int, slot: int) -> tuple[int, int]:
        """(first element's position, length) of a vector field; (0, 0) when absent."""
        at = self.field(table, slot)
        if at is None:
            return 0, 0
        start = self.indirect(at)
        length = self._u("<I", start)
        if start + 4 + length > len(self.data):
            raise ContractError(f"{self.source} is damaged: a vector runs past its end.")
        return start + 4, length

    def string(self, table: int, slot: int) -> bytes:
        start, length = self.vector(table, slot)
        return self.data[start:start + length]


def read_contract(data: bytes, *, source: str = "the model") -> dict:
    """The contract JSON of a `.tflite` file's metadata.

    Arguments:
        data: the file's bytes.
        source: how to name the file in errors.

    Returns:
        The contract as a dict (`image_size`, `channels`, `preprocess`, `mean`, `std`,
        `resize`, `class_names`).

    Raises:
        ContractError: naming `source`, for a file that is not TFLite, has no contract,
            or holds a damaged one.
    """
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ContractError(f"{source} is not a TFLite model (no 'TFL3' identifier).")
    reader = _Reader(data, source)
    model = reader.indirect(0)
    metadata, count = reader.vector(model, _MODEL_METADATA)
    buffers, buffer_count = reader.vector(model, _MODEL_BUFFERS)
    for i in range(count):
        entry = reader.indirect(metadata + 4 * i)
        if reader.string(entry, _METADATA_NAME) != CONTRACT_NAME.encode():
            continue
        at = reader.field(entry, _METADATA_BUFFER)
        index = reader._u("<I", at) if at is not None else 0
        if not 0 <= index < buffer_count:
            raise ContractError(f"{source} is damaged: its contract names buffer {index}.")
        buffer = reader.indirect(buffers + 4 * index)
        start, length = reader.vector(buffer, _BUFFER_DATA)
        if length > _MAX_CONTRACT_BYTES:
            raise ContractError(f"{source}: its contract is {length:,} bytes, too large.")
        try:
            contract = json.loads(data[start:start + length].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ContractError(f"{source}: its contract is not JSON ({error}).") from None
        _check(contract, source)
        return contract
    raise ContractError(
        f"{source} records no input contract, so how to prepare an image for it is "
        "unknown. Export it with larq-dybnn (which writes the contract), or prepare the "
        "samples yourself and run them with `python -m larq_dybnn_runtime --inputs`.")


def _check(contract: object, source: str) -> None:
    try:
        height, width = (int(v) for v in contract["image_size"])
        names = [str(n) for n in contract["class_names"]]
        if not (0 < height <= 4096 and 0 < width <= 4096 and int(contract["channels"]) == 3
                and len(contract["mean"]) == 3 and len(contract["std"]) == 3
                and all(float(v) > 0 for v in contract["std"])
                and contract["resize"] in ("none", "short_side_centre_crop") and names):
            raise ValueError("values out of range")
        if not all(n.isprintable() for n in names):
            raise ValueError("a class name holds control characters")
    except (KeyError, TypeError, ValueError) as error:
        raise ContractError(f"{source}: its input contract is malformed ({error}).") from None
