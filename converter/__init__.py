"""Export DyBNN models to Larq Compute Engine TFLite and prove the result.

Installed as ``larq_dybnn.converter``. `convert` converts once and returns both
files (hyper weights float32 and int8), the binary-conv check and the contract;
`export_and_verify` does that, writes the file atomically, compares the LCE
interpreter with Keras (`lce_interpreter`, one kernel for every check) and times
the model.
"""

from larq_dybnn.converter.binary import BinaryCheck, FloatFallbackError, binary_conv_layers
from larq_dybnn.converter.conversion import Conversion, convert, export_tflite
from larq_dybnn.converter.flatbuffer import Operator, op_histogram, read_operators
from larq_dybnn.converter.interpreter import DEFAULT_KERNEL, KERNELS, lce_interpreter, lce_outputs
from larq_dybnn.converter.int8 import Int8Weights, quantize_hyper_weights, round_hyper_weights
from larq_dybnn.converter.latency import Latency, compare_latency, measure_latency
from larq_dybnn.converter.parity import Parity, compare_with_lce
from larq_dybnn.converter.report import (
    ConversionReport,
    export_and_verify,
    load_model,
    threshold_ops,
)

__all__ = [
    "convert",
    "Conversion",
    "export_and_verify",
    "ConversionReport",
    "export_tflite",
    "load_model",
    "BinaryCheck",
    "FloatFallbackError",
    "binary_conv_layers",
    "threshold_ops",
    "Int8Weights",
    "quantize_hyper_weights",
    "round_hyper_weights",
    "Operator",
    "op_histogram",
    "read_operators",
    "lce_interpreter",
    "lce_outputs",
    "KERNELS",
    "DEFAULT_KERNEL",
    "Latency",
    "measure_latency",
    "compare_latency",
    "Parity",
    "compare_with_lce",
]
