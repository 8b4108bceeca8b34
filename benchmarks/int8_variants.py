"""Which int8 storage of the hyper functions keeps the shipped DyBNN's answers?
(an experiment for the export default; Keras only, no file is written)

On the first `--images` CIFAR-10 test images, the share whose top-1 class stays the
float model's when the hyper functions' kernels are rounded to int8:
- `per-tensor`: one scale per kernel (today's default export);
- `per-channel`: one scale per output channel;
- `keep-K`: per-tensor, except the K kernels whose rounding alone moves the most
  images, kept float (K = 1, 2, 4, 8).

    python benchmarks/int8_variants.py [--data ../shared/data/cifar10] [--images 10000]
"""

from __future__ import annotations

import argparse
import sys

import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np

from larq_dybnn_cli import positive_int
from larq_dybnn.converter.int8 import round_hyper_weights
from larq_dybnn.scan import dynamic_layers
from larq_dybnn.zoo import DyBNNReActNet18

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from int8_rounding import test_images  # noqa: E402


def _top1(model, x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(model(x[i:i + 1000], training=False)).argmax(-1)
                           for i in range(0, len(x), 1000)])


def _kernels(model) -> list:
    found = dynamic_layers(model)
    return [w for layer in found.signs + found.prelus for w in layer.weights
            if "hyper_function" in w.name and w.name.split("/")[-1].split(":")[0]
            .endswith("_kernel")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/cifar10")
    parser.add_argument("--images", type=positive_int, default=10000)
    args = parser.parse_args(argv)
    x, _ = test_images(args.data, args.images)
    model = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                            weights="cifar10")
    original = model.get_weights()
    reference = _top1(model, x)
    kernels = _kernels(model)

    def agreement_after(round_fn) -> float:
        model.set_weights(original)
        round_fn()
        agreement = float(np.mean(_top1(model, x) == reference))
        model.set_weights(original)
        return agreement

    print(f"{len(x)} images, {len(kernels)} hyper kernels; top-1 agreement with float Keras")
    print(f"  per-tensor   {agreement_after(lambda: round_hyper_weights(model)):.4f}")
    print(f"  per-channel  "
          f"{agreement_after(lambda: round_hyper_weights(model, per_channel=True)):.4f}")
    # Sensitivity: rounding one kernel alone (per-tensor).
    model.set_weights(original)
    round_hyper_weights(model)
    rounded = {k.name: k.numpy() for k in kernels}
    model.set_weights(original)
    moved = []
    for kernel in kernels:
        floats = kernel.numpy()
        kernel.assign(rounded[kernel.name])
        moved.append((float(np.mean(_top1(model, x) != reference)), kernel.name))
        kernel.assign(floats)
    moved.sort(reverse=True)
    for name_moved, name in moved[:4]:
        print(f"    alone moves {name_moved:.4f}: {name}")
    for keep in (1, 2, 4, 8):
        kept = {name for _, name in moved[:keep]}

        def round_some(kept=kept):
            for kernel in kernels:
                if kernel.name not in kept:
                    kernel.assign(rounded[kernel.name])

        print(f"  keep-{keep:<8} {agreement_after(round_some):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
