"""Registration of this package's Keras objects, so saved models load by name."""

from __future__ import annotations

from typing import Callable, TypeVar

import tensorflow as tf

T = TypeVar("T", bound=type)

PACKAGE = "larq_dybnn"


def register(*aliases: str) -> Callable[[T], T]:
    """Register a class as a Keras serializable object under extra string aliases.

    The class is registered as ``larq_dybnn>ClassName`` (the Keras way, used when a
    model is saved), under its bare class name (the Larq way, so that
    ``input_quantizer="DynamicSign"`` works) and under each alias, such as
    ``"dynamic_sign"``.

    Arguments:
        *aliases: extra names the class can be looked up by.

    Returns:
        A class decorator.
    """

    def decorator(cls: T) -> T:
        cls = tf.keras.utils.register_keras_serializable(package=PACKAGE)(cls)
        custom_objects = tf.keras.utils.get_custom_objects()
        for name in (cls.__name__, *aliases):
            custom_objects[name] = cls
        return cls

    return decorator
