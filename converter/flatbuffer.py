"""Read the operators of a TFLite flatbuffer (ops, custom LCE ops, fused activations)."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Collection

from tensorflow.lite.python import schema_py_generated as schema

from larq_dybnn._checks import printable
from larq_dybnn_runtime.check import check_flatbuffer as _check

__all__ = ["Operator", "read_operators", "op_histogram", "layer_of", "check_flatbuffer"]

_BUILTIN_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items()
    if not name.startswith("_")
}
_OPTION_NAMES = {
    value: name for name, value in vars(schema.BuiltinOptions).items()
    if not name.startswith("_")
}
_ACTIVATION_NAMES = {
    value: name for name, value in vars(schema.ActivationFunctionType).items()
    if not name.startswith("_")
}


@dataclass(frozen=True)
class Operator:
    """One operator of the main subgraph.

    Attributes:
        name: builtin name (e.g. "FULLY_CONNECTED") or custom code (e.g. "LceBconv2d").
        fused_activation: fused activation (e.g. "RELU"), or None when the op has none.
        inputs: names of the input tensors ("" for an omitted optional input).
        outputs: names of the output tensors. The converter names tensors after the
            Keras layer that made them ("model/layer/..."), cut to about 50
            characters.
    """

    name: str
    fused_activation: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


def _model(flatbuffer: bytes) -> "schema.Model":
    if not isinstance(flatbuffer, (bytes, bytearray)):
        raise TypeError(f"`flatbuffer` must be bytes, got {type(flatbuffer).__name__}.")
    if len(flatbuffer) < 8 or bytes(flatbuffer[4:8]) != b"TFL3":
        raise ValueError(
            "`flatbuffer` is not a TFLite model: its file identifier is not 'TFL3'."
        )
    try:
        model = schema.Model.GetRootAsModel(flatbuffer, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("it has no subgraph")
        return model
    except ValueError as error:
        raise ValueError(f"`flatbuffer` is not a valid TFLite model: {error}") from None
    except Exception as error:  # flatbuffers raises plain errors on bad offsets
        raise ValueError(
            f"`flatbuffer` is not a valid TFLite model ({type(error).__name__})."
        ) from None


def _fused_activation(op: "schema.Operator") -> str | None:
    option_name = _OPTION_NAMES.get(op.BuiltinOptionsType())
    table = op.BuiltinOptions()
    options_class = getattr(schema, option_name or "", None)
    if table is None or options_class is None:
        return None
    options = options_class()
    options.Init(table.Bytes, table.Pos)
    if not hasattr(options, "FusedActivationFunction"):
        return None
    activation = _ACTIVATION_NAMES.get(options.FusedActivationFunction(), "NONE")
    return None if activation == "NONE" else activation


def read_operators(flatbuffer: bytes) -> list[Operator]:
    """List the operators of a TFLite model's main subgraph in execution order.

    Arguments:
        flatbuffer: the serialized model.

    Returns:
        One `Operator` per op.

    Raises:
        TypeError: if `flatbuffer` is not bytes.
        ValueError: if it is not a readable TFLite model.
    """
    model = _model(flatbuffer)
    try:
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            if code.CustomCode():
                codes.append(printable(code.CustomCode().decode("utf-8", "replace")))
            else:
                builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
                codes.append(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
        graph = model.Subgraphs(0)

        def tensor_name(index: int) -> str:
            return (printable(graph.Tensors(index).Name().decode("utf-8", "replace"))
                    if index >= 0 else "")

        operators = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            operators.append(
                Operator(
                    codes[op.OpcodeIndex()],
                    _fused_activation(op),
                    tuple(tensor_name(op.Inputs(j)) for j in range(op.InputsLength())),
                    tuple(tensor_name(op.Outputs(j)) for j in range(op.OutputsLength())),
                )
            )
        return operators
    except Exception as error:
        raise ValueError(
            f"`flatbuffer` is not a valid TFLite model ({type(error).__name__}: "
            f"{error})."
        ) from None


def check_flatbuffer(flatbuffer: bytes, *, source: str = "`flatbuffer`") -> None:
    """Check that a TFLite file is whole and consistent before an interpreter opens it
    (`larq_dybnn_runtime.check.check_flatbuffer` with TensorFlow's schema: every field
    of every table read through bounds-checked reads, indices, LCE's operator options,
    at least one operator).

    Raises:
        TypeError: if `flatbuffer` is not bytes.
        ValueError: naming `source`, for a file that is not a whole TFLite model.
    """
    _check(flatbuffer, source=source, schema=schema)


def op_histogram(flatbuffer: bytes) -> collections.Counter:
    """Count a TFLite model's operators by name.

    Arguments:
        flatbuffer: the serialized model.

    Returns:
        A `collections.Counter` such as `{"LceBconv2d": 13, "MEAN": 14, ...}`.

    Raises:
        TypeError: if `flatbuffer` is not bytes.
        ValueError: if it is not a readable TFLite model.
    """
    return collections.Counter(op.name for op in read_operators(flatbuffer))


def layer_of(tensor_name: str, layer_names: Collection[str]) -> str | None:
    """The Keras layer a tensor belongs to, from its name ("model/layer/...").

    Arguments:
        tensor_name: a flatbuffer tensor name (cut to about 50 characters by the
            converter, so a long layer name may not be found).
        layer_names: the candidate layer names.

    Returns:
        The first path component of `tensor_name` (before the last) that is in
        `layer_names`, or None.
    """
    for part in tensor_name.split("/")[:-1]:
        if part in layer_names:
            return part
    return None
