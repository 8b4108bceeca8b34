"""Size sweep: .tflite size of DyBNN ReActNet-A against ReActNet-A, per configuration.

For each hyper-function reduction ratio r and each choice of dynamic terms ("both":
DynamicSign and DynamicPReLU, "sign": DynamicSign only), converts DyBNN ReActNet-A
with float32 and with int8 hyper-function weights and prints its size as a ratio of
ReActNet-A's (target <= 1.10); int8 with one scale per kernel (the default) and, in the
last column, per output channel. All models get trained-like parameters (see
export_benchmark.py), because zeros and repeated constants would shrink the files.

Weights do not depend on the input resolution, so the sweep converts at a small size
(64x64 by default) to stay fast; `--size 224` gives the same ratios within a few KiB.

Usage: python benchmarks/size_sweep.py [--size 64] [--reductions 8 16 32 64]
       [--dynamic both sign] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
from export_benchmark import trained_like

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn_cli import positive_int
from larq_dybnn.converter import convert
from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.converter.int8 import quantize_hyper_weights
from larq_dybnn.zoo import DyBNNReActNetA, ReActNetA


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=positive_int, default=64, help="input height and width")
    parser.add_argument("--reductions", type=positive_int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--dynamic", nargs="+", default=["both", "sign"],
                        choices=["both", "sign", "prelu"])
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    shape = (args.size, args.size, 3)

    static_bytes = len(export_tflite(trained_like(ReActNetA(input_shape=shape))))
    rows = []
    for dynamic in args.dynamic:
        for reduction in args.reductions:
            start = time.perf_counter()
            model = trained_like(
                DyBNNReActNetA(input_shape=shape, reduction=reduction, dynamic=dynamic)
            )
            hyper = sum(
                int(w.shape.num_elements()) for w in model.weights if "hyper_function" in w.name
            )
            row = {"dynamic": dynamic, "reduction": reduction, "hyper_weights": hyper}
            conversion = convert(model)
            row["float32"] = len(conversion.float_flatbuffer)
            row["int8"] = len(conversion.int8_flatbuffer)
            # Per-channel scales: not the export's choice, compared here.
            row["int8_per_channel"] = len(quantize_hyper_weights(
                conversion.float_flatbuffer, model, per_channel=True)[0])
            rows.append(row)
            print(f"converted dynamic={dynamic} r={reduction} in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)

    print(f"\nSize sweep, DyBNN ReActNet-A against ReActNet-A ({static_bytes / 1024:,.0f} "
          f"KiB), both with trained-like parameters, converted at {args.size}x{args.size}")
    header = (f"{'dynamic':<8} {'r':>3} {'hyper weights':>14} {'float32 KiB':>12} "
              f"{'ratio':>6} {'int8 KiB':>9} {'ratio':>6} {'per-channel ratio':>18}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['dynamic']:<8} {row['reduction']:>3} {row['hyper_weights']:>14,} "
              f"{row['float32'] / 1024:>12,.0f} {row['float32'] / static_bytes:>6.3f} "
              f"{row['int8'] / 1024:>9,.0f} {row['int8'] / static_bytes:>6.3f} "
              f"{row['int8_per_channel'] / static_bytes:>18.3f}")
    print("target: ratio <= 1.10")
    if args.json:
        figures = {"static_bytes": static_bytes, "size": args.size, "rows": rows}
        atomic_write_bytes(args.json, json.dumps(figures, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
