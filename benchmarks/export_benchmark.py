"""Export benchmark: DyBNN ReActNet-A against ReActNet-A, QuickNet and MobileNetV1.

Converts each model at 224x224 with random weights, then times all of them side by
side in one process, interleaving the runs so that machine noise hits every model
alike, and prints:

- the float ops each DynamicSign adds (target: MEAN, FULLY_CONNECTED with fused
  ReLU, FULLY_CONNECTED, SUB; nothing else);
- median latency in the LCE interpreter, 1 and 2 threads, batch 1, with the fastest
  kernel choice per model and thread count, and the DyBNN / ReActNet ratio
  (target <= 1.05);
- .tflite sizes and the DyBNN / ReActNet ratio (target <= 1.10).

Every model is compared as it would be after training. At initialisation the RSign
thresholds and RPReLU shifts of ReActNet-A are zero, and the converter drops an ADD or
SUB of zeros, so an untrained ReActNet-A converts to 52 fewer float ops than any trained
one and is not the model a user ships. Likewise the hyper functions' output layers start
at zero and the converter stores identical constants once, so an untrained DyBNN file
would be too small. The benchmark therefore gives the thresholds, shifts, PReLU slopes,
hyper-function weights and batch-norm offsets of every model small random values, as
training would, and also times the untrained ReActNet-A as a reference row.

The DyBNN model is timed twice from one conversion: as exported by default (hyper
weights stored in int8, restored to float32 when the file loads) and with float32
hyper weights.

Usage: python benchmarks/export_benchmark.py [--runs 30] [--size 224] [--reduction 64]
       [--json OUT]
On x86 LCE's binary kernels are not ARM-optimized: compare the ratios, not the ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np
import tensorflow as tf
from larq_zoo.sota import QuickNet

from larq_dybnn import DynamicPReLU, DynamicSign
from larq_dybnn._io import atomic_write_bytes
from larq_dybnn_cli import positive_int
from larq_dybnn.converter import convert, read_operators
from larq_dybnn.converter.report import threshold_ops
from larq_dybnn.converter.latency import arm_note, compare_latency
from larq_dybnn.zoo import DEFAULT_REDUCTION, DyBNNReActNetA, ReActNetA


def trained_like(model: tf.keras.Model, seed: int = 0) -> tf.keras.Model:
    """Give learned offsets the non-zero values training gives them.

    Adds small random values to every weight of the threshold and PReLU layers
    (DynamicSign, static or dynamic, and DynamicPReLU: thresholds, shifts, slopes,
    hyper-function weights) and to batch-norm offsets, so that no constant is zero or
    shared and the converter keeps every op a trained model has.
    """
    rng = np.random.default_rng(seed)
    weights = []
    for layer in model.submodules:
        if isinstance(layer, (DynamicSign, DynamicPReLU)):
            weights += layer.weights
        elif isinstance(layer, tf.keras.layers.BatchNormalization):
            weights += [layer.beta, layer.moving_mean]
    for weight in {id(w): w for w in weights}.values():
        noise = rng.normal(0.0, 0.02, size=weight.shape).astype(np.float32)
        weight.assign(weight.numpy() + noise)
    return model


#: The DyBNN model and the static model it is compared with.
DYNAMIC, STATIC = "DyBNN ReActNet-A", "ReActNet-A"
DYNAMIC_FLOAT = "DyBNN, float32 hyper"


def build_models(size: int, reduction: int) -> dict[str, tf.keras.Model]:
    shape = (size, size, 3)
    return {
        DYNAMIC: trained_like(DyBNNReActNetA(input_shape=shape, reduction=reduction)),
        STATIC: trained_like(ReActNetA(input_shape=shape)),
        "ReActNet-A at init": ReActNetA(input_shape=shape),
        "QuickNet (larq-zoo)": QuickNet(input_shape=shape, weights=None),
        "MobileNetV1 (float)": tf.keras.applications.MobileNet(input_shape=shape, weights=None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive_int, default=30, help="timed rounds per model")
    parser.add_argument("--size", type=positive_int, default=224)
    parser.add_argument("--reduction", type=positive_int, default=DEFAULT_REDUCTION,
                        help="hyper-function reduction ratio of the DyBNN model "
                        f"(default: the zoo's, {DEFAULT_REDUCTION})")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    results: dict[str, dict] = {}
    flatbuffers: dict[str, bytes] = {}
    for name, model in build_models(args.size, args.reduction).items():
        start = time.perf_counter()
        conversion = convert(model)
        files = {name: conversion.float_flatbuffer}
        if name == DYNAMIC:
            files = {name: conversion.int8_flatbuffer, DYNAMIC_FLOAT: conversion.float_flatbuffer}
        for label, flatbuffer in files.items():
            operators = read_operators(flatbuffer)
            flatbuffers[label] = flatbuffer
            results[label] = {
                "size_bytes": len(flatbuffer),
                "ops": len(operators),
                "bconv": sum(op.name == "LceBconv2d" for op in operators),
                "thresholds": threshold_ops(model, operators),
            }
        print(f"converted {name} in {time.perf_counter() - start:.0f} s", flush=True)

    print("\nChoosing the fastest kernel per model and thread count, then timing "
          "interleaved ...", flush=True)
    for name, latency in compare_latency(flatbuffers, threads=(1, 2), runs=args.runs).items():
        for threads in (1, 2):
            results[name][f"kernel_{threads}t"] = latency.kernel[threads]
            results[name][f"median_ms_{threads}t"] = latency.median_ms[threads]

    print(f"\nExport benchmark, {args.size}x{args.size}, batch 1, median of {args.runs} "
          f"interleaved runs in the LCE interpreter; DyBNN reduction r={args.reduction}, "
          "hyper weights int8 (the export default) and float32")
    header = (f"{'model':<22} {'ops':>4} {'LceBconv2d':>10} {'size KiB':>9} "
              f"{'1 thread ms':>12} {'2 threads ms':>13}  kernels (1 / 2 threads)")
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(f"{name:<22} {r['ops']:>4} {r['bconv']:>10} {r['size_bytes'] / 1024:>9,.0f} "
              f"{r['median_ms_1t']:>12.2f} {r['median_ms_2t']:>13.2f}  "
              f"{r['kernel_1t']} / {r['kernel_2t']}")

    dynamic, static = results[DYNAMIC], results[STATIC]
    t = dynamic["thresholds"]
    per_sign = next(iter(t["per_dynamic_sign"].values()), [])
    print(f"\nDynamicSign layers: {t['dynamic_sign_layers']}, DynamicPReLU layers: "
          f"{t['dynamic_prelu_layers']}")
    print(f"ops of one DynamicSign: {', '.join(per_sign)}; minimal in every one: {t['minimal']}")
    print(f"ops the dynamic terms add in all: {t['added_ops']}")
    ratios = {
        "latency_1t": dynamic["median_ms_1t"] / static["median_ms_1t"],
        "latency_2t": dynamic["median_ms_2t"] / static["median_ms_2t"],
        "size": dynamic["size_bytes"] / static["size_bytes"],
    }
    floating = results[DYNAMIC_FLOAT]
    ratios.update({
        "float_latency_1t": floating["median_ms_1t"] / static["median_ms_1t"],
        "float_latency_2t": floating["median_ms_2t"] / static["median_ms_2t"],
        "float_size": floating["size_bytes"] / static["size_bytes"],
    })
    print(f"DyBNN / ReActNet-A latency: {ratios['latency_1t']:.3f} (1 thread), "
          f"{ratios['latency_2t']:.3f} (2 threads); target <= 1.05")
    print(f"DyBNN / ReActNet-A size:    {ratios['size']:.3f}; target <= 1.10")
    print(f"with float32 hyper weights: latency {ratios['float_latency_1t']:.3f} / "
          f"{ratios['float_latency_2t']:.3f}, size {ratios['float_size']:.3f}")
    print(arm_note())
    if args.json:
        figures = {"results": results, "ratios": ratios, "runs": args.runs, "size": args.size}
        atomic_write_bytes(args.json, json.dumps(figures, indent=2, default=str).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
