"""Export DyBNN models to Larq Compute Engine TFLite and check the result.

Installed as ``larq_dybnn.converter``.
"""

from larq_dybnn.converter.export import export_tflite
from larq_dybnn.converter.flatbuffer import Operator, op_histogram, read_operators
from larq_dybnn.converter.parity import Parity, compare_with_lce

__all__ = [
    "export_tflite",
    "Operator",
    "op_histogram",
    "read_operators",
    "Parity",
    "compare_with_lce",
]
