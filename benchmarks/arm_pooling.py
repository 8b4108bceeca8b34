"""Where DyBNN's ARM cost goes: the hyper functions' pooling, varied (an experiment).

Counts aarch64 instructions per inference (as `arm_cost.py`) of DyBNN ReActNet-A at
224 (or the CIFAR x0.25 ReActNet-18) with the hyper functions' global average pooling
computed four ways; nothing here changes the package:

- `mean`: the shipped layers (TFLite MEAN over height and width);
- `avgpool`: one AVERAGE_POOL_2D with the whole map as its window;
- `stride2`: the mean of every second row and column (a quarter of the elements; a
  different function, whose accuracy is not measured here);
- `nopool`: no pooling, the hyper function fed one pixel (an attribution probe only).

    python benchmarks/arm_pooling.py [--pair imagenet|cifar] [--variants mean,nopool] [--runs 3]

Compare with the static model's count from `arm_cost.py`.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arm_cost import REPO, _model  # noqa: E402

VARIANTS = ("mean", "avgpool", "stride2", "nopool")


def _patched_call(variant: str):
    import tensorflow as tf

    def call(self, inputs, offsets=None):
        offsets = [None] * self.heads if offsets is None else offsets
        height, width = int(inputs.shape[1]), int(inputs.shape[2])
        if variant == "avgpool":
            pooled = tf.nn.avg_pool2d(inputs, ksize=[height, width],
                                      strides=[height, width], padding="VALID")
        elif variant == "stride2":
            pooled = tf.reduce_mean(inputs[:, ::2, ::2, :], axis=[1, 2], keepdims=True)
        else:
            pooled = inputs[:, :1, :1, :]
        hidden = tf.nn.relu(tf.matmul(pooled, self.hidden_kernel) + self.hidden_bias)
        return [tf.matmul(hidden, kernel) + (bias if offset is None else bias + offset)
                for kernel, bias, offset in zip(self.head_kernels, self.head_biases, offsets)]

    return call


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", choices=["imagenet", "cifar"], default="imagenet")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--arm-dir", default=REPO / ".arm")
    parser.add_argument("--lce-source",
                        default=REPO.parent / "shared" / "third_party" / "lce-0.16.0-kernels")
    args = parser.parse_args(argv)

    import larq_dybnn  # noqa: F401
    from larq_dybnn import hyper
    from instruction_count import build_insn_plugin, count_instructions
    from larq_dybnn.device.emulation import prepare
    from larq_dybnn.converter import read_operators
    from larq_dybnn.converter.conversion import export_tflite

    environment = prepare(args.arm_dir, lce_source=args.lce_source, print_fn=lambda _: None)
    plugin = build_insn_plugin(args.arm_dir)
    name = {"imagenet": "dybnn-reactnet-a", "cifar": "dybnn-reactnet-18"}[args.pair]
    original = hyper.HyperFunction.call
    print(f"{name} ({args.pair}), aarch64 instructions per inference, bgemm kernel")
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants.split(","):
            hyper.HyperFunction.call = original if variant == "mean" else _patched_call(variant)
            try:
                path = Path(folder) / f"{variant}.tflite"
                path.write_bytes(export_tflite(_model(args.pair, name)))
            finally:
                hyper.HyperFunction.call = original
            ops = collections.Counter(op.name for op in read_operators(path.read_bytes()))
            (count,) = count_instructions(environment, plugin, path, kernels=["bgemm"],
                                          runs=args.runs)
            print(f"  {variant:<8} {count.per_inference:>15,.0f}   MEAN {ops['MEAN']}, "
                  f"AVERAGE_POOL_2D {ops['AVERAGE_POOL_2D']}, "
                  f"STRIDED_SLICE {ops['STRIDED_SLICE']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
