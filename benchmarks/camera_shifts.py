"""Robustness to what a device camera does to images: static against DyBNN, paired by
seed (an experiment of the cost study; reads the campaign's committed models).

Input-conditioned thresholds should help most when the input's statistics move. This
applies shifts a phone or Pi camera produces to the CIFAR-10 test images in pixel space
(uint8, before the contract's normalization) and evaluates every configuration's
models on them:

- brightness: pixels + delta (clipped); contrast: around the image mean, times a factor;
- colour cast: a per-channel gain (warm light: more red, less blue);
- blur: a 3x3 box filter; sensor noise: Gaussian, sigma in pixel levels;
- JPEG: re-encoded at a low quality.

    python benchmarks/camera_shifts.py [--runs experiments/cifar10-recipe/runs/cifar10-recipe]
        [--configs static,dybnn] [--baseline static] [--images 10000] [--json out.json]

A configuration is a folder of `--runs` (`static`), or `label=folder` with the folder
relative to `--runs` (`static-c17=../cifar10-recipe-cost-static/static-c17`: the cost
study's cost-matched static model).

Prints top-1 per shift and configuration (mean over seeds) and, for every other
configuration, the paired difference to the baseline per shift: mean +- SE over seeds.

With `--json`, the record is rewritten after every model (each model's top-1 per shift
under `per_seed`, the folders under `folders`, `rows` once every model is measured), and
a later call with the same `--json`, `--images` and shifts reuses the models it already
holds (same configuration label and folder): an interrupted run resumes, and a new seed
or configuration costs only its own models (about 3 minutes per model for all 10,000
images on 2 cores, measured with training running alongside).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np
import tensorflow as tf

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.contract import contract_for
from larq_dybnn.loading import load_model
from larq_dybnn.training import data

REPO = Path(__file__).resolve().parents[1]
SHIFTS = {
    "clean": lambda x, rng: x,
    "brighter +40": lambda x, rng: x + 40.0,
    "darker -40": lambda x, rng: x - 40.0,
    "contrast x0.5": lambda x, rng: (x - x.mean(axis=(1, 2, 3), keepdims=True)) * 0.5
    + x.mean(axis=(1, 2, 3), keepdims=True),
    "contrast x1.5": lambda x, rng: (x - x.mean(axis=(1, 2, 3), keepdims=True)) * 1.5
    + x.mean(axis=(1, 2, 3), keepdims=True),
    "warm cast": lambda x, rng: x * np.array([1.2, 1.0, 0.8], np.float32),
    "blur 3x3": lambda x, rng: tf.nn.avg_pool2d(
        np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge"), 3, 1, "VALID").numpy(),
    "noise sigma 12": lambda x, rng: x + rng.normal(0, 12, size=x.shape).astype(np.float32),
    "jpeg q20": lambda x, rng: np.stack([tf.io.decode_jpeg(tf.io.encode_jpeg(
        np.clip(i, 0, 255).astype(np.uint8), quality=20)).numpy() for i in x]).astype(
        np.float32),
}


def _test_pixels(source: str, images: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    test = data.load(source, split=f"test[:{images}]")
    pixels, labels = [], []
    for image, label in test.dataset.batch(1000):
        pixels.append(image.numpy().astype(np.float32))
        labels.append(label.numpy())
    return np.concatenate(pixels), np.concatenate(labels), test.class_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path,
                        default=REPO / "experiments/cifar10-recipe/runs/cifar10-recipe",
                        help="a sweep folder of <config>/seed-<n>/model.keras")
    parser.add_argument("--configs", default="static,dybnn")
    parser.add_argument("--baseline", default="static")
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/cifar10"))
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    args = parser.parse_args(argv)
    folders = dict(entry.split("=", 1) if "=" in entry else (entry, entry)
                   for entry in args.configs.split(","))
    configs = list(folders)
    if args.baseline not in configs:
        parser.error("--baseline must be one of --configs")
    for config, folder in folders.items():
        if not sorted((args.runs / folder).glob("seed-*/model.keras")):
            parser.error(f"--configs: no seed-*/model.keras in {args.runs / folder} "
                         f"(configuration {config!r})")
    pixels, labels, classes = _test_pixels(args.data, args.images)
    contract = contract_for("cifar", image_size=32, class_names=classes)
    rng = np.random.default_rng(0)
    shifted = {name: np.clip(shift(pixels, rng), 0, 255).astype(np.float32)
               for name, shift in SHIFTS.items()}
    # Each configuration's folder as the record names it: relative to the repository.
    recorded = {config: os.path.relpath((args.runs / folder).resolve(), REPO)
                for config, folder in folders.items()}
    accuracy = _measured(args.json, images=len(labels), folders=recorded)
    for config in configs:
        # Finished runs only: an unfinished one holds a checkpoint, not a model.
        for folder in sorted(p.parent for p in (args.runs / folders[config]).glob(
                "seed-*/model.keras")):
            seed = int(folder.name.split("-")[1])
            if all(seed in accuracy.get(config, {}).get(name, {}) for name in SHIFTS):
                print(f"  {config}/seed-{seed}: measured before ({args.json})",
                      file=sys.stderr, flush=True)
                continue
            model = load_model(folder / "model.keras")
            predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
            for name, x in shifted.items():
                top1 = np.concatenate([
                    np.asarray(predict(contract.normalize(x[i:i + 1000]))).argmax(-1)
                    for i in range(0, len(x), 1000)])
                accuracy.setdefault(config, {}).setdefault(name, {})[seed] = float(
                    np.mean(top1 == labels))
            _write(args.json, {"images": int(len(labels)), "folders": recorded,
                               "per_seed": accuracy})
            print(f"  {config}/seed-{seed} done", file=sys.stderr, flush=True)
    print(f"top-1 on {len(labels)} CIFAR-10 test images, mean over seeds")
    print(f"{'shift':<16}" + "".join(f"{c:>12}" for c in configs)
          + "".join(f"{c + ' - ' + args.baseline:>22}" for c in configs if c != args.baseline))
    rows = []
    for name in SHIFTS:
        line = f"{name:<16}"
        row = {"shift": name}
        for config in configs:
            values = list(accuracy[config][name].values())
            row[config] = float(np.mean(values))
            line += f"{100 * np.mean(values):>11.2f}%"
        for config in configs:
            if config == args.baseline:
                continue
            seeds = sorted(set(accuracy[config][name]) & set(accuracy[args.baseline][name]))
            diff = np.array([accuracy[config][name][s] - accuracy[args.baseline][name][s]
                             for s in seeds]) * 100
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            row[f"{config} - {args.baseline}"] = {"mean": float(diff.mean()), "se": float(se),
                                                  "seeds": seeds}
            line += f"{diff.mean():>+14.2f} +- {se:.2f}"
        rows.append(row)
        print(line)
    _write(args.json, {"images": int(len(labels)), "folders": recorded, "rows": rows,
                       "per_seed": accuracy})
    return 0


def _measured(record: Path | None, *, images: int, folders: dict[str, str]
              ) -> dict[str, dict[str, dict[int, float]]]:
    """What `record` (an earlier `--json`) measured on the same images and shifts, for
    configurations with the same label and folder; empty without a usable record."""
    if record is None or not record.is_file():
        return {}
    try:
        earlier = json.loads(record.read_text())
    except json.JSONDecodeError as error:
        raise SystemExit(f"--json: {record} is not a JSON record ({error}); move it away "
                         "to measure again") from None
    if not isinstance(earlier, dict) or not {"images", "per_seed"} <= set(earlier):
        raise SystemExit(f"--json: {record} is not a camera-shift record; it is left as it "
                         "is (name another file)")
    if earlier.get("images") != images:
        return {}
    kept = {}
    for config, per_shift in earlier.get("per_seed", {}).items():
        if earlier.get("folders", {}).get(config) != folders.get(config):
            continue
        if set(per_shift) != set(SHIFTS):
            continue
        kept[config] = {name: {int(seed): value for seed, value in seeds.items()}
                        for name, seeds in per_shift.items()}
    return kept


def _write(record: Path | None, content: dict) -> None:
    """Write `content` to `record` atomically (nothing without `--json`)."""
    if record is not None:
        atomic_write_bytes(record, (json.dumps(content, indent=2) + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())
