"""Argument checks shared by the layers; every error names the argument at fault."""

from __future__ import annotations

import math
import numbers

import tensorflow as tf


def positive_int(name: str, value: object) -> int:
    """Return `value` if it is a positive integer, else raise naming `name`.

    Raises:
        ValueError: if `value` is not an integer greater than 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def one_of(name: str, value: object, choices) -> object:
    """Return `value` if it is one of `choices`, else raise naming `name` and them.

    Raises:
        ValueError: if `value` is not in `choices`.
    """
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(str, choices))}, "
                         f"got {value!r}.")
    return value


def _positive_finite(value: object) -> bool:
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value) and value > 0)


def optional_positive_float(name: str, value: object) -> float | None:
    """Return `value` as a float if it is None or a positive number, else raise.

    Raises:
        ValueError: if `value` is neither None nor a number greater than 0.
    """
    if value is None:
        return None
    if not _positive_finite(value):
        raise ValueError(f"`{name}` must be None or a positive finite number, "
                         f"got {value!r}.")
    return float(value)


def positive_float(name: str, value: object) -> float:
    """Return `value` as a float if it is a positive finite number, else raise.

    Raises:
        ValueError: naming `name`, for None, NaN, inf, zero or a negative number.
    """
    if not _positive_finite(value):
        raise ValueError(f"`{name}` must be a positive finite number, got {value!r}.")
    return float(value)


def channels_last_shape(
    layer_name: str, input_shape: object, *, require_4d: bool, reason: str = ""
) -> tf.TensorShape:
    """Check an input shape for a channels-last layer and return it.

    Arguments:
        layer_name: name of the layer, used in the error message.
        input_shape: the shape the layer is being built for.
        require_4d: whether the input must be NHWC (batch, height, width, channels).
        reason: appended to the error raised when a 4-D input is required.

    Returns:
        The shape as a `tf.TensorShape`.

    Raises:
        ValueError: if the rank is unknown, lower than 2, not 4 when `require_4d`, or
            the channel dimension is unknown.
    """
    shape = tf.TensorShape(input_shape)
    if shape.rank is None:
        raise ValueError(f"Layer '{layer_name}' needs an input of known rank.")
    if require_4d and shape.rank != 4:
        raise ValueError(
            f"Layer '{layer_name}' needs a 4-D NHWC input (batch, height, width, "
            f"channels), got shape {shape}.{(' ' + reason) if reason else ''}"
        )
    if shape.rank < 2:
        raise ValueError(
            f"Layer '{layer_name}' needs an input with a batch and a channel axis, "
            f"got shape {shape}."
        )
    if shape[-1] is None:
        raise ValueError(
            f"Layer '{layer_name}' needs a known number of channels (last axis), "
            f"got shape {shape}."
        )
    return shape


def printable(text: str) -> str:
    """`text` with every non-printable character (escape codes, newlines, other
    control characters) written as a Python escape, for names read from files that
    reach a terminal: a name cannot clear the screen or forge a line of output."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))
