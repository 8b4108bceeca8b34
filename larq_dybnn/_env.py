"""Make sure ``tf.keras`` is legacy Keras 2 (tf-keras) before Larq is imported, and
keep AutoGraph out of tf-keras' own code.

TensorFlow 2.16 decides once, when it is first imported, whether ``tf.keras`` is
Keras 3 or the legacy tf-keras package, by reading ``TF_USE_LEGACY_KERAS``.
Larq, larq-zoo and Larq Compute Engine need the legacy one.
"""

from __future__ import annotations

import os
import sys

_LEGACY_VALUES = ("1", "true", "True")

_KERAS3_MESSAGE = (
    "larq_dybnn needs legacy Keras (the tf-keras package), but TensorFlow was "
    "imported before larq_dybnn without TF_USE_LEGACY_KERAS=1, so tf.keras is "
    "Keras 3 for the rest of this Python process. Fix: restart the process (or "
    "notebook kernel) and either import larq_dybnn before tensorflow, or run\n"
    "    import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'\n"
    "before the first `import tensorflow` (or export TF_USE_LEGACY_KERAS=1 in the "
    "shell)."
)


def tensorflow_uses_legacy_keras() -> bool:
    """Tell whether the imported TensorFlow serves legacy Keras as ``tf.keras``.

    Returns:
        True when ``tf.keras`` is tf-keras (Keras 2), False when it is Keras 3.

    Raises:
        RuntimeError: if TensorFlow has not been imported yet.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None:
        raise RuntimeError("TensorFlow has not been imported yet.")
    flag = getattr(tf, "_tf_uses_legacy_keras", None)
    if flag is not None:
        return bool(flag)
    # Other TensorFlow versions: look at where tf.keras layers come from.
    return tf.keras.layers.Layer.__module__.startswith("tf_keras")


def ensure_legacy_keras() -> None:
    """Select legacy Keras for TensorFlow, or fail if it is too late to do so.

    When TensorFlow is not imported yet, this sets ``TF_USE_LEGACY_KERAS=1`` so that
    the coming import picks tf-keras. When TensorFlow is already imported, it checks
    that legacy Keras is active.

    Raises:
        ImportError: if TensorFlow was already imported with Keras 3 as ``tf.keras``;
            the message says how to fix it.
    """
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        return
    if not tensorflow_uses_legacy_keras():
        raise ImportError(_KERAS3_MESSAGE)


def skip_autograph_in_tf_keras() -> bool:
    """Let AutoGraph leave tf-keras' internals unconverted, as it does Keras' own.

    AutoGraph rewrites the Python source of every function a `tf.function` (or a
    Keras layer call on symbolic inputs) reaches, unless a rule in its conversion
    list says not to. TensorFlow 2.16's list names the ``keras`` package, whose
    code was ``tf.keras`` up to TensorFlow 2.15, but not ``tf_keras``, where the
    same code lives now; later TensorFlow versions add ``tf_keras`` to the list.
    Without the rule every process spends seconds rewriting Keras' source the
    first time it builds a model or traces a training step (measured with
    `benchmarks/startup_benchmark.py`). Larq's and larq_dybnn's own layers are
    still converted.

    Returns:
        True if the rule is in place, False if this TensorFlow has no such list
        (AutoGraph then behaves as TensorFlow ships it).
    """
    try:
        from tensorflow.python.autograph.core import config
    except ImportError:
        return False
    rules = getattr(config, "CONVERSION_RULES", None)
    if not isinstance(rules, tuple):
        return False
    if not any(isinstance(rule, config.DoNotConvert) and rule.matches("tf_keras")
               for rule in rules):
        config.CONVERSION_RULES = (*rules, config.DoNotConvert("tf_keras"))
    return True


def restore_quantized_scope_on_errors() -> bool:
    """Make Larq's `quantized_scope` restore the previous state when its body raises.

    Larq 0.14's `larq.context.quantized_scope` is a generator context manager without
    `try/finally`: a quantized layer whose `call` raises (a shape error in a notebook)
    leaves the scope switched on for the rest of the process, and from then on
    `model.get_weights()` returns binarized kernels and `dynamize` copies them. Larq's
    layers look the function up on `larq.context` at every call, so replacing it there
    fixes them all.

    Returns:
        True if the replacement is in place, False if this Larq has no such function.
    """
    import contextlib

    try:
        from larq import context
    except ImportError:
        return False
    original = getattr(context, "quantized_scope", None)
    if original is None or getattr(original, "_restores_on_errors", False):
        return original is not None

    @contextlib.contextmanager
    def quantized_scope(quantize):
        backup = context.should_quantize()
        context._quantized_scope.should_quantize = quantize
        try:
            yield quantize
        finally:
            context._quantized_scope.should_quantize = backup

    quantized_scope.__doc__ = original.__doc__
    quantized_scope._restores_on_errors = True
    quantized_scope._larq_original = original
    context.quantized_scope = quantized_scope
    return True
