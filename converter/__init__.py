"""Export DyBNN models to Larq Compute Engine TFLite and prove the result.

Installed as ``larq_dybnn.converter``. One way to do each thing:

- export: `convert` converts once and returns a `Conversion` (both files: hyper
  weights int8 and float32, the binary-conv check, the input contract);
  `export_and_verify` also writes the file atomically, measures parity and returns a
  `ConversionReport`. A binary conv that fell back to float raises
  `FloatFallbackError`.
- run the file in LCE's interpreter: `lce_outputs`.
- parity with Keras: `compare_with_lce`, a `Parity`.
- time files side by side: `compare_latency`, a `Latency` per file.
- read a file's operators: `read_operators`, an `Operator` each.

The building blocks stay in their modules (`larq_dybnn.converter.int8`, `.binary`,
`.interpreter`, `.flatbuffer`, `.latency`, `.conversion`). Their names that this
namespace used to list still work for one release, with a `DeprecationWarning`
that says what to use.
"""

from __future__ import annotations

import importlib
import warnings

from larq_dybnn.converter.binary import FloatFallbackError
from larq_dybnn.converter.conversion import Conversion, convert
from larq_dybnn.converter.flatbuffer import Operator, read_operators
from larq_dybnn.converter.interpreter import lce_outputs
from larq_dybnn.converter.latency import Latency, compare_latency
from larq_dybnn.converter.parity import Parity, compare_with_lce
from larq_dybnn.converter.report import ConversionReport, export_and_verify

__all__ = [
    "convert",
    "Conversion",
    "export_and_verify",
    "ConversionReport",
    "FloatFallbackError",
    "lce_outputs",
    "compare_with_lce",
    "Parity",
    "compare_latency",
    "Latency",
    "read_operators",
    "Operator",
]

#: Names this namespace listed before, for one release: name -> (module, what to use).
DEPRECATED = {
    "export_tflite": ("conversion", "convert(model, allow_float_fallback=True)"
                      ".flatbuffer(int8_hyper_weights=...), or export_and_verify"),
    "load_model": ("report", "larq_dybnn.load_model"),
    "BinaryCheck": ("binary", "Conversion.binary, or larq_dybnn.converter.binary"),
    "binary_conv_layers": ("binary", "larq_dybnn.converter.binary.binary_conv_layers"),
    "threshold_ops": ("report", "ConversionReport.thresholds, or "
                      "larq_dybnn.converter.report.threshold_ops"),
    "Int8Weights": ("int8", "larq_dybnn.converter.int8.Int8Weights"),
    "quantize_hyper_weights": ("int8", "convert(...).flatbuffer(), or "
                               "larq_dybnn.converter.int8.quantize_hyper_weights"),
    "round_hyper_weights": ("int8", "larq_dybnn.converter.int8.round_hyper_weights"),
    "op_histogram": ("flatbuffer", "collections.Counter(op.name for op in "
                     "read_operators(flatbuffer))"),
    "lce_interpreter": ("interpreter", "lce_outputs, or "
                        "larq_dybnn.converter.interpreter.lce_interpreter"),
    "KERNELS": ("interpreter", "larq_dybnn.converter.interpreter.KERNELS"),
    "DEFAULT_KERNEL": ("interpreter", "larq_dybnn.converter.interpreter.DEFAULT_KERNEL"),
    "measure_latency": ("latency", "compare_latency({name: flatbuffer})"),
}


def __getattr__(name: str):
    if name not in DEPRECATED:
        raise AttributeError(f"module 'larq_dybnn.converter' has no attribute {name!r}")
    module, advice = DEPRECATED[name]
    warnings.warn(f"larq_dybnn.converter.{name} is deprecated and will be removed in the "
                  f"next release; use {advice}.", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(f"larq_dybnn.converter.{module}"), name)
