"""ARM cost of DyBNN against static ReActNet: aarch64 instructions per inference.

Counts guest instructions of LCE's aarch64 kernels under qemu (`larq_dybnn.arm.cost`)
for each model pair side by side in one run, with the export defaults (int8 hyper
weights, the zoo's reduction), one interpreter thread, no XNNPACK:

- ReActNet-A and DyBNN ReActNet-A at 224x224, 1000 classes (untrained weights: the
  instruction count of these kernels does not depend on the values);
- the shipped CIFAR-10 ReActNet-18 and DyBNN ReActNet-18 (x0.25, 32x32);
- (`--pairs cifar-sign,cifar-prelu`) DyBNN with only the thresholds or only the shifts
  dynamic, to see which term costs what.

    python benchmarks/arm_cost.py [--runs 10] [--pairs imagenet,cifar] [--json out.json]

Prints instructions per inference per kernel and the DyBNN / static ratio. The
emulated environment is set up on first use (Debian, root; see `larq_dybnn.arm`).
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

PAIRS = {
    "imagenet": ("ReActNet-A 224", ["reactnet-a", "dybnn-reactnet-a"]),
    "cifar": ("ReActNet-18 CIFAR x0.25 (shipped)", ["reactnet-18", "dybnn-reactnet-18"]),
    # Which dynamic term costs what (untrained CIFAR x0.25 models; counts do not
    # depend on the weights): thresholds only, shifts only.
    "cifar-sign": ("ReActNet-18 CIFAR x0.25, sign only", ["reactnet-18", "dybnn-sign"]),
    "cifar-prelu": ("ReActNet-18 CIFAR x0.25, PReLU only", ["reactnet-18", "dybnn-prelu"]),
}


def _model(pair: str, name: str):
    from larq_dybnn.zoo import DyBNNReActNet18, DyBNNReActNetA, ReActNet18, ReActNetA

    if pair == "imagenet":
        builder = {"reactnet-a": ReActNetA, "dybnn-reactnet-a": DyBNNReActNetA}[name]
        return builder(input_shape=(224, 224, 3), num_classes=1000)
    options = dict(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                   num_classes=10)
    if name.startswith("dybnn-") and pair != "cifar":
        return DyBNNReActNet18(**options, dynamic=name.split("-")[1])
    builder = {"reactnet-18": ReActNet18, "dybnn-reactnet-18": DyBNNReActNet18}[name]
    return builder(**options, weights="cifar10" if pair == "cifar" else None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="inferences in the difference")
    parser.add_argument("--pairs", default="imagenet,cifar", help="imagenet, cifar")
    parser.add_argument("--kernels", default="bgemm,indirect")
    parser.add_argument("--arm-dir", default=os.environ.get("LARQ_DYBNN_ARM_DIR", REPO / ".arm"))
    parser.add_argument("--lce-source", default=os.environ.get(
        "LARQ_DYBNN_LCE_SOURCE", REPO.parent / "shared" / "third_party" / "lce-0.16.0-kernels"))
    parser.add_argument("--json", help="also write the counts as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    import larq_dybnn  # noqa: F401
    from larq_dybnn.arm import prepare
    from larq_dybnn.arm.cost import build_insn_plugin, count_instructions
    from larq_dybnn.converter import export_tflite

    environment = prepare(args.arm_dir, lce_source=args.lce_source)
    plugin = build_insn_plugin(args.arm_dir)
    kernels = args.kernels.split(",")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for pair in args.pairs.split(","):
            title, names = PAIRS[pair]
            counts = {}
            for name in names:
                path = Path(folder) / f"{pair}-{name}.tflite"
                path.write_bytes(export_tflite(_model(pair, name)))
                started = time.perf_counter()
                counts[name] = {c.kernel: c.per_inference for c in count_instructions(
                    environment, plugin, path, kernels=kernels, runs=args.runs)}
                print(f"  counted {name} ({path.stat().st_size / 1024:,.0f} KiB) in "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
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
