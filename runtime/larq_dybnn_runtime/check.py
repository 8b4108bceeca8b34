"""Check a `.tflite` file whole before an interpreter opens it (no TensorFlow needed).

TFLite's interpreter and LCE's kernels trust a file's offsets and operator options; a
damaged or crafted file can crash the process. `check_flatbuffer` reads every field
of every table through bounds-checked reads, checks indices and LCE's options. It needs
`flatbuffers` and the TFLite schema's generated Python: the `tflite` package on a
device, TensorFlow's copy on a PC (`larq_dybnn.converter.flatbuffer` uses it there).
"""

from __future__ import annotations

import flatbuffers.table
from flatbuffers import encode, flexbuffers
from flatbuffers import number_types as N

__all__ = ["check_flatbuffer", "LCE_OPTIONS", "printable"]


def printable(text: str) -> str:
    """`text` with non-printable characters (escape codes, newlines) written as
    Python escapes, for names read from files that reach a terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


class _OutOfBounds(ValueError):
    pass


class _CheckedTable(flatbuffers.table.Table):
    """A flatbuffers table whose every read is bounds-checked: Python's reader slices
    strings silently and lets a vector claim any length; the interpreter's C++ reader
    trusts both."""

    def _read(self, flags, off: int) -> int:
        if off < 0 or off + flags.bytewidth > len(self.Bytes):
            raise _OutOfBounds(f"an offset ({off}) points outside the file")
        return encode.Get(flags.packer_type, self.Bytes, off)

    def Get(self, flags, off):  # noqa: N802 - flatbuffers' names
        return flags.py_type(self._read(flags, off))

    def Offset(self, vtableOffset):  # noqa: N802,N803
        vtable = self.Pos - self._read(N.SOffsetTFlags, self.Pos)
        end = self._read(N.VOffsetTFlags, vtable)
        return self._read(N.VOffsetTFlags, vtable + vtableOffset) if vtableOffset < end else 0

    def Indirect(self, off):  # noqa: N802
        return off + self._read(N.UOffsetTFlags, off)

    def String(self, off):  # noqa: N802
        off += self._read(N.UOffsetTFlags, off)
        length = self._read(N.UOffsetTFlags, off)
        start = off + N.UOffsetTFlags.bytewidth
        if start + length > len(self.Bytes):
            raise _OutOfBounds(f"a string of {length} bytes runs past the end of the file")
        return bytes(self.Bytes[start:start + length])

    def VectorLen(self, off):  # noqa: N802
        off += self.Pos
        off += self._read(N.UOffsetTFlags, off)
        length = self._read(N.UOffsetTFlags, off)
        if off + N.UOffsetTFlags.bytewidth + length > len(self.Bytes):
            raise _OutOfBounds(f"a vector of {length} elements runs past the end of the file")
        return length

    def Vector(self, off):  # noqa: N802
        off += self.Pos
        return off + self._read(N.UOffsetTFlags, off) + N.UOffsetTFlags.bytewidth

    def Union(self, t2, off):  # noqa: N802
        off += self.Pos
        t2.Pos = off + self._read(N.UOffsetTFlags, off)
        t2.Bytes = self.Bytes

    def GetVectorAsNumpy(self, flags, off):  # noqa: N802
        if flags is N.BoolFlags:  # flatbuffers' own reader fails on these
            flags = N.Uint8Flags
        length, start = self.VectorLen(off), self.Vector(off)
        if start + length * flags.bytewidth > len(self.Bytes):
            raise _OutOfBounds(f"a vector of {length} numbers runs past the end of the file")
        return encode.GetVectorAsNumpy(N.to_numpy_type(flags), self.Bytes, length, start)


#: Union fields of the TFLite schema and the name of the enum that names their tables.
_UNIONS = {"BuiltinOptions": "BuiltinOptions", "BuiltinOptions2": "BuiltinOptions2",
           "Details": "QuantizationDetails", "ArraySegments": "SparseIndexVector"}
_SKIPPED_SUFFIXES = ("IsNone", "Length", "AsNumpy", "Type", "BufferHasIdentifier")


def _checked(obj):
    obj._tab = _CheckedTable(obj._tab.Bytes, obj._tab.Pos)
    return obj


def _walk(obj, schema, budget: list[int], depth: int = 0) -> None:
    """Read every field of a generated table (and of the tables below it) through
    bounds-checked reads. `budget` caps the tables visited: a crafted file can point a
    table at itself."""
    if depth > 32:
        raise ValueError("its tables nest more than 32 deep")
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("it holds more tables than its size allows")
    _checked(obj)
    cls = type(obj)
    for name, method in vars(cls).items():
        if name.startswith(("_", "GetRootAs", "Init")) or name.endswith(_SKIPPED_SUFFIXES):
            continue
        if not callable(method):
            continue
        arguments = method.__code__.co_argcount
        if arguments == 2:  # a vector: element j
            if hasattr(cls, f"{name}AsNumpy"):
                getattr(obj, f"{name}AsNumpy")()
                continue
            for j in range(getattr(obj, f"{name}Length")()):
                value = getattr(obj, name)(j)
                if hasattr(value, "_tab"):
                    _walk(value, schema, budget, depth + 1)
            continue
        value = getattr(obj, name)()
        if name in _UNIONS and value is not None:
            kind = getattr(obj, f"{name}Type")()
            enum = getattr(schema, _UNIONS[name], None)
            names = {v: k for k, v in vars(enum).items() if not k.startswith("_")} if enum else {}
            table_class = getattr(schema, names.get(kind, ""), None)
            if table_class is None or not hasattr(table_class, "Init"):
                raise ValueError(f"a {name} union has the unknown type {kind}")
            options = table_class()
            options.Init(value.Bytes, value.Pos)
            _walk(options, schema, budget, depth + 1)
        elif hasattr(value, "_tab"):
            _walk(value, schema, budget, depth + 1)


#: LCE's custom ops and the integer options their kernels read from the flexbuffer.
LCE_OPTIONS = {
    "LceBconv2d": ("stride_height", "stride_width", "dilation_height_factor",
                   "dilation_width_factor", "padding", "pad_values", "channels_in",
                   "fused_activation_function"),
    "LceBMaxPool2d": ("filter_height", "filter_width", "stride_height", "stride_width",
                      "padding"),
}


def _check_custom_options(code: str, options: bytes, where: str) -> None:
    keys = LCE_OPTIONS.get(code)
    if keys is None:
        return
    try:
        mapping = flexbuffers.GetRoot(bytearray(options)).AsMap
        values = {key: mapping[key].AsInt for key in mapping.Keys.Value}
    except Exception as error:  # flexbuffers raises plain errors on bad bytes
        raise ValueError(f"{where} ({code}) has unreadable options "
                         f"({type(error).__name__})") from None
    missing = [key for key in keys if not isinstance(values.get(key), int)]
    if missing:
        raise ValueError(f"{where} ({code}) lacks the options {', '.join(missing)}")
    for key in keys:
        if key.startswith(("stride", "dilation", "filter", "channels")) and not (
                0 < values[key] <= 2**16):
            raise ValueError(f"{where} ({code}) has {key} = {values[key]}")


def _check_indices(model, size: int) -> None:
    codes = model.OperatorCodesLength()
    names = []
    for i in range(codes):
        code = model.OperatorCodes(i)
        names.append(printable(code.CustomCode().decode("utf-8", "replace"))
                     if code.CustomCode() else "")
    buffers = model.BuffersLength()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        tensors = graph.TensorsLength()

        def valid(indices, what: str) -> None:
            bad = [int(i) for i in indices if not -1 <= int(i) < tensors]
            if bad:
                raise ValueError(f"subgraph {g}: {what} names tensor {bad[0]} of {tensors}")

        valid(graph.InputsAsNumpy() if graph.InputsLength() else [], "an input")
        valid(graph.OutputsAsNumpy() if graph.OutputsLength() else [], "an output")
        for t in range(tensors):
            if not 0 <= graph.Tensors(t).Buffer() < max(buffers, 1):
                raise ValueError(f"tensor {t} names buffer {graph.Tensors(t).Buffer()}, "
                                 "which does not exist")
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if not 0 <= op.OpcodeIndex() < codes:
                raise ValueError(f"operator {o} names operator code {op.OpcodeIndex()} of "
                                 f"{codes}")
            for field in ("Inputs", "Outputs", "Intermediates"):
                if getattr(op, f"{field}Length")():
                    valid(getattr(op, f"{field}AsNumpy")(), f"operator {o}'s {field.lower()}")
            if op.LargeCustomOptionsOffset() > 1 and (
                    op.LargeCustomOptionsOffset() + op.LargeCustomOptionsSize() > size):
                raise ValueError(f"operator {o}'s options end after the end of the file")
            if names[op.OpcodeIndex()] and op.CustomOptionsLength():
                _check_custom_options(names[op.OpcodeIndex()],
                                      op.CustomOptionsAsNumpy().tobytes(), f"operator {o}")
            elif names[op.OpcodeIndex()] in LCE_OPTIONS:
                raise ValueError(f"operator {o} ({names[op.OpcodeIndex()]}) has no options")
    if model.SubgraphsLength() and model.Subgraphs(0).OperatorsLength() == 0:
        raise ValueError("its main subgraph has no operators")
    for b in range(buffers):
        buffer = model.Buffers(b)
        if buffer.Offset() > 1 and buffer.Offset() + buffer.Size() > size:
            raise ValueError(f"buffer {b} ends after the end of the file")
    for m in range(model.MetadataLength()):
        if not 0 <= model.Metadata(m).Buffer() < buffers:
            raise ValueError(f"metadata {m} names a buffer that does not exist")


def _schema():
    """The TFLite schema's generated Python: the `tflite` package (on a device), else
    TensorFlow's copy."""
    try:
        import tflite as schema

        schema.Model  # noqa: B018 - the package, not another module of that name
        return schema
    except (ImportError, AttributeError):
        from tensorflow.lite.python import schema_py_generated as schema

        return schema


def check_flatbuffer(flatbuffer: bytes, *, source: str = "`flatbuffer`",
                     schema=None) -> None:
    """Check that a TFLite file is whole and consistent before an interpreter opens it.

    TFLite's interpreter trusts the offsets in a file, and LCE's kernels the options
    of their ops: a file cut short, with one offset past its end in any field, or
    with random bytes as a binary convolution's options can crash the process instead
    of raising. This reads every field of every table in the file through
    bounds-checked reads (as a flatbuffers verifier would), checks every tensor,
    buffer and operator-code index, parses the options of LCE's ops as their kernels
    will, and requires at least one operator in the main subgraph.

    Arguments:
        flatbuffer: the file's bytes.
        source: how to name the file in errors.
        schema: the TFLite schema's generated Python module (default: `_schema()`).

    Raises:
        ValueError: naming `source`, for a file that is not a whole TFLite model.
    """
    schema = schema or _schema()
    if not isinstance(flatbuffer, (bytes, bytearray)):
        raise TypeError(f"`flatbuffer` must be bytes, got {type(flatbuffer).__name__}.")
    try:
        if len(flatbuffer) < 8 or bytes(flatbuffer[4:8]) != b"TFL3":
            raise ValueError("its file identifier is not 'TFL3'")
        model = _checked(schema.Model.GetRootAsModel(flatbuffer, 0))
        if model.SubgraphsLength() < 1:
            raise ValueError("it has no subgraph")
        _walk(model, schema, [max(64, len(flatbuffer) // 4)])
        _check_indices(model, len(flatbuffer))
    except (ValueError, _OutOfBounds) as error:
        raise ValueError(f"{source} is not a whole TFLite model (truncated or damaged?): "
                         f"{error}") from None
    except Exception as error:  # flatbuffers raises plain errors on bad offsets
        raise ValueError(f"{source} is not a whole TFLite model (truncated or damaged?): "
                         f"{type(error).__name__}: {error}") from None
