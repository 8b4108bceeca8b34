"""larq-dybnn: Dynamic Binary Neural Networks (DyBNN) for Larq.

Importing this package selects legacy Keras (``TF_USE_LEGACY_KERAS=1``) when
TensorFlow is not imported yet, because Larq needs it; if TensorFlow was already
imported with Keras 3 it raises an ImportError that says how to fix it.
"""

from larq_dybnn._env import ensure_legacy_keras as _ensure_legacy_keras
from larq_dybnn._env import skip_autograph_in_tf_keras as _skip_autograph_in_tf_keras
from larq_dybnn._env import (  # noqa: E402
    restore_quantized_scope_on_errors as _restore_quantized_scope_on_errors,
)

_ensure_legacy_keras()

from larq_dybnn._version import __version__  # noqa: E402
from larq_dybnn.dynamization import dynamize  # noqa: E402
from larq_dybnn.hyper import DEFAULT_REDUCTION, HyperFunction  # noqa: E402
from larq_dybnn.initialization import initialize_per_layer  # noqa: E402
from larq_dybnn.contract import read_contract  # noqa: E402
from larq_dybnn.layers import DynamicPReLU  # noqa: E402
from larq_dybnn.loading import load_model  # noqa: E402
from larq_dybnn.profiling import mac_counts, summary  # noqa: E402
from larq_dybnn.quantizers import DynamicSign  # noqa: E402
from larq_dybnn.scan import hyper_weights, simulate_int8_hyper_kernels  # noqa: E402

_skip_autograph_in_tf_keras()
_restore_quantized_scope_on_errors()

__all__ = [
    "DynamicSign",
    "DynamicPReLU",
    "HyperFunction",
    "DEFAULT_REDUCTION",
    "hyper_weights",
    "simulate_int8_hyper_kernels",
    "dynamize",
    "initialize_per_layer",
    "summary",
    "mac_counts",
    "load_model",
    "read_contract",
    "__version__",
]
