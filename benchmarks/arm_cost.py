"""ARM cost of DyBNN against static ReActNet: aarch64 instructions per inference.

Counts guest instructions of LCE's aarch64 kernels under qemu (`benchmarks/instruction_count.py`)
for each model pair side by side in one run, with the export defaults (int8 hyper
weights, the zoo's reduction), one interpreter thread, no XNNPACK:

- ReActNet-A and DyBNN ReActNet-A at 224x224, 1000 classes, with trained-like
  thresholds, shifts and hyper heads (`_trained_like`). Fresh models have all-zero
  static thresholds, and LCE's converter then drops each RSign's SUB and lets the
  binary conv write bit-packed output for the next one: a static graph no trained
  model has (the shipped static ReActNet-18 counts 16.1 M instructions, the same
  network untrained 5.9 M);
- the shipped CIFAR-10 ReActNet-18 and DyBNN ReActNet-18 (x0.25, 32x32);
- (`--pairs cifar-sign,cifar-prelu`) DyBNN with only the thresholds or only the shifts
  dynamic, to see which term costs what;
- (`--pairs imagenet-block,imagenet-block-stride2`) DyBNN ReActNet-A with the cheaper
  hyper functions: one pooling per block (`hyper_input="block"`), also of a stride-2
  subsample (`hyper_pool_stride=2`).

    python benchmarks/arm_cost.py [--runs 10] [--pairs imagenet,cifar] [--json out.json]

Prints instructions per inference per kernel and the DyBNN / static ratio. The
emulated environment is set up on first use (Debian, root; see `larq_dybnn.device.emulation`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Pair name: (title, [static model, DyBNN model], the DyBNN builder's extra options).
PAIRS = {
    "imagenet": ("ReActNet-A 224", ["reactnet-a", "dybnn-reactnet-a"], {}),
    "imagenet-block": ("ReActNet-A 224, hyper_input=block",
                       ["reactnet-a", "dybnn-reactnet-a"], {"hyper_input": "block"}),
    "imagenet-block-stride2": ("ReActNet-A 224, block, stride 2",
                               ["reactnet-a", "dybnn-reactnet-a"],
                               {"hyper_input": "block", "hyper_pool_stride": 2}),
    "cifar": ("ReActNet-18 CIFAR x0.25 (shipped)", ["reactnet-18", "dybnn-reactnet-18"], {}),
    # Which dynamic term costs what (CIFAR x0.25 with trained-like thresholds):
    # thresholds only, shifts only.
    "cifar-sign": ("ReActNet-18 CIFAR x0.25, sign only", ["reactnet-18", "dybnn-sign"], {}),
    "cifar-prelu": ("ReActNet-18 CIFAR x0.25, PReLU only", ["reactnet-18", "dybnn-prelu"], {}),
}


def add_environment_arguments(parser: argparse.ArgumentParser) -> None:
    """--arm-dir and --lce-source, as every ARM benchmark takes them, and --json."""
    parser.add_argument("--arm-dir", default=os.environ.get("LARQ_DYBNN_ARM_DIR", REPO / ".arm"))
    parser.add_argument("--lce-source", default=os.environ.get(
        "LARQ_DYBNN_LCE_SOURCE", REPO.parent / "shared" / "third_party" / "lce-0.16.0-kernels"))
    parser.add_argument("--json", help="also write the counts as JSON")


def _trained_like(model, seed: int = 0):
    """Non-zero static thresholds and shifts (and hyper heads), as after training:
    what the converter can fold depends on them, so counts of fresh models mislead."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for weight in model.weights:
        short = weight.name.split("/")[-1].split(":")[0]
        if ("_bn" not in weight.name and short in ("threshold", "gamma", "zeta")) or (
                "hyper_function" in weight.name and short.startswith("head")):
            weight.assign(rng.normal(0.0, 0.1, size=weight.shape).astype("float32"))
    return model


def _model(pair: str, name: str, dybnn_options: dict | None = None):
    from larq_dybnn.zoo import DyBNNReActNet18, DyBNNReActNetA, ReActNet18, ReActNetA

    if pair.startswith("imagenet"):
        options = dict(input_shape=(224, 224, 3), num_classes=1000)
        if name == "reactnet-a":
            return _trained_like(ReActNetA(**options))
        return _trained_like(DyBNNReActNetA(**options, **(dybnn_options or {})))
    options = dict(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                   num_classes=10)
    if name.startswith("dybnn-") and pair != "cifar":
        return _trained_like(DyBNNReActNet18(**options, dynamic=name.split("-")[1]))
    builder = {"reactnet-18": ReActNet18, "dybnn-reactnet-18": DyBNNReActNet18}[name]
    if pair == "cifar":
        return builder(**options, weights="cifar10")
    return _trained_like(builder(**options))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="inferences in the difference")
    parser.add_argument("--pairs", default="imagenet,cifar", help=", ".join(PAIRS))
    parser.add_argument("--kernels", default="bgemm,indirect")
    add_environment_arguments(parser)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    import larq_dybnn  # noqa: F401
    from instruction_count import build_insn_plugin, count_instructions
    from larq_dybnn.device.emulation import prepare
    from larq_dybnn.converter.conversion import export_tflite

    environment = prepare(args.arm_dir, lce_source=args.lce_source)
    plugin = build_insn_plugin(args.arm_dir)
    kernels = args.kernels.split(",")
    results, counted = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for pair in args.pairs.split(","):
            title, names, dybnn_options = PAIRS[pair]
            counts = {}
            for name in names:
                # ReActNet-A, counted for an earlier ImageNet pair, is not counted again.
                key = ("imagenet" if pair.startswith("imagenet") else pair, name,
                       json.dumps(dybnn_options if "dybnn" in name else {}, sort_keys=True))
                if key not in counted:
                    path = Path(folder) / f"{pair}-{name}.tflite"
                    path.write_bytes(export_tflite(_model(pair, name, dybnn_options)))
                    started = time.perf_counter()
                    counted[key] = {c.kernel: c.per_inference for c in count_instructions(
                        environment, plugin, path, kernels=kernels, runs=args.runs)}
                    print(f"  counted {name} ({path.stat().st_size / 1024:,.0f} KiB) in "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
                counts[name] = counted[key]
            static, dynamic = names
            for kernel in kernels:
                ratio = counts[dynamic][kernel] / counts[static][kernel]
                results.append({"pair": title, "kernel": kernel,
                                "static": counts[static][kernel],
                                "dybnn": counts[dynamic][kernel], "ratio": ratio})
    print(f"aarch64 instructions per inference ({args.runs} inferences, 1 thread, "
          "no XNNPACK, int8 hyper weights)")
    print(f"{'pair':<36} {'kernel':<9} {'static':>15} {'DyBNN':>15} {'DyBNN/static':>13}")
    for row in results:
        print(f"{row['pair']:<36} {row['kernel']:<9} {row['static']:>15,.0f} "
              f"{row['dybnn']:>15,.0f} {row['ratio']:>13.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
