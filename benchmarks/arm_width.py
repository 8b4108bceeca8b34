"""Which static ReActNet-18 width costs what DyBNN x0.25 costs on ARM (an experiment).

Counts aarch64 instructions per inference (as `arm_cost.py`: LCE's NEON kernels under
qemu, one thread, no XNNPACK, the export defaults) of static ReActNet-18 with the
CIFAR stem at several widths and of DyBNN ReActNet-18 x0.25, all with trained-like
thresholds and shifts (`arm_cost._trained_like`), side by side in one run, and the
`.tflite` sizes. The cost-matched static model of the cost study is the narrowest
width whose count is not below DyBNN's.

    python benchmarks/arm_width.py [--widths 0.25,0.28125,0.3125] [--dynamic both]
        [--runs 5] [--json counts.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arm_cost import _trained_like, add_environment_arguments  # noqa: E402

DEFAULT_WIDTHS = "0.25,0.265625,0.28125,0.296875,0.3125"


def _models(widths: list[float], dynamic_options: list[dict]):
    from larq_dybnn.zoo import DyBNNReActNet18, ReActNet18

    options = dict(input_shape=(32, 32, 3), stem="cifar", num_classes=10)
    for width in widths:
        yield (f"static x{width:g}", {"model": "reactnet-18", "width_multiplier": width},
               lambda width=width: _trained_like(ReActNet18(**options, width_multiplier=width)))
    for extra in dynamic_options:
        label = "dybnn x0.25" + "".join(f" {k}={v}" for k, v in sorted(extra.items()))
        yield (label, {"model": "dybnn-reactnet-18", "width_multiplier": 0.25, **extra},
               lambda extra=extra: _trained_like(
                   DyBNNReActNet18(**options, width_multiplier=0.25, **extra)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default=DEFAULT_WIDTHS,
                        help=f"static widths to count (default {DEFAULT_WIDTHS})")
    parser.add_argument("--dynamic", action="append", default=None, metavar="JSON",
                        help='extra DyBNN x0.25 builder options as JSON, repeatable '
                             '(default: one DyBNN with the zoo defaults, "{}")')
    parser.add_argument("--runs", type=int, default=5, help="inferences in the difference")
    parser.add_argument("--kernel", default="bgemm", choices=["bgemm", "indirect_bgemm"])
    add_environment_arguments(parser)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        widths = [float(w) for w in args.widths.split(",")]
        dynamic_options = [json.loads(text) for text in (args.dynamic or ["{}"])]
    except ValueError as error:
        parser.error(f"--widths / --dynamic: {error}")

    import larq_dybnn  # noqa: F401
    from instruction_count import build_insn_plugin, count_instructions
    from larq_dybnn.device.emulation import prepare
    from larq_dybnn.converter.conversion import export_tflite

    environment = prepare(args.arm_dir, lce_source=args.lce_source, print_fn=lambda _: None)
    plugin = build_insn_plugin(args.arm_dir)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (label, options, build) in enumerate(_models(widths, dynamic_options)):
            path = Path(folder) / f"{index}.tflite"
            path.write_bytes(export_tflite(build()))
            (count,) = count_instructions(environment, plugin, path, kernels=[args.kernel],
                                          runs=args.runs)
            rows.append({"label": label, "options": options, "kernel": args.kernel,
                         "instructions": count.per_inference,
                         "tflite_bytes": path.stat().st_size})
            print(f"  counted {label}: {count.per_inference:,.0f}", file=sys.stderr, flush=True)
    reference = next(r for r in rows if r["options"]["model"] == "dybnn-reactnet-18")
    print(f"aarch64 instructions per inference ({args.runs} inferences, {args.kernel}, "
          "1 thread, no XNNPACK, export defaults, trained-like thresholds)")
    print(f"{'model':<44} {'instructions':>14} {'/ DyBNN':>8} {'bytes':>9}")
    for row in rows:
        row["ratio_to_dybnn"] = row["instructions"] / reference["instructions"]
        print(f"{row['label']:<44} {row['instructions']:>14,.0f} "
              f"{row['ratio_to_dybnn']:>8.4f} {row['tflite_bytes']:>9,}")
    if args.json:
        target = Path(args.json)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(json.dumps(rows, indent=2) + "\n")
        os.replace(temporary, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
