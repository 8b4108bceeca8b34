"""Does the dynamic part of a trained DyBNN matter? Measured on the validation split.

    python experiments/cifar10-reactnet18/investigate.py RUNS_DIR [--configs dybnn-both-r16,...]

For every finished DyBNN run in RUNS_DIR/<config>/seed-<n>/ (a `larq-dybnn sweep`
folder), on the run's own validation split (its `eval_split`, held out from the
training images; the test split is not touched):

- how much the thresholds vary across images: per layer, the standard deviation over
  images of the dynamic term h(x), averaged over channels, next to the mean |b| of the
  static threshold and the standard deviation of the binarized input itself;
- how many binary decisions the variation changes: the share of activations whose sign
  differs between tau(x) = b + h(x) and tau = b + mean(h) (the dynamic term replaced by
  its average over the validation images);
- whether the network relies on it: validation top-1 of the trained model as it is,
  with every dynamic term frozen to its validation average (the model then is a
  static ReActNet with the learned average thresholds and shifts), and with every
  dynamic term set to zero.

Writes investigation.json and investigation.md into --output (default: this folder);
`--render` writes investigation.md again from an existing investigation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _hyper_layers(model):
    """(layer, kind, the tensor its hyper function reads) for every dynamic layer, in
    model order (`larq_dybnn.scan.dynamic_layers`)."""
    from larq_dybnn.scan import dynamic_layers

    found = dynamic_layers(model)
    order = {id(layer): index for index, layer in enumerate(model.layers)}
    layers = [(layer, "sign") for layer in found.signs] + [(l, "prelu") for l in found.prelus]
    layers.sort(key=lambda pair: order.get(id(pair[0]), len(order)))
    return [(layer, kind, layer.input) for layer, kind in layers]


def _hyper_of(layer, kind):
    return layer.input_quantizer.hyper if kind == "sign" else layer.hyper


def _dynamic_terms(hyper, x):
    """Each head's dynamic term h(x) (no static offset), `(batch, channels)` arrays."""
    return [np.asarray(h)[:, 0, 0, :] for h in hyper(x)]


def _layer_stats(model, images, batch=250):
    import tensorflow as tf

    layers = _hyper_layers(model)
    features = tf.keras.Model(model.input, [tensor for _, _, tensor in layers])
    terms = {layer.name: [] for layer, _, _ in layers}
    inputs_std = {layer.name: [] for layer, _, _ in layers}
    for start in range(0, len(images), batch):
        outputs = features(images[start:start + batch], training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for (layer, kind, _), x in zip(layers, outputs):
            terms[layer.name].append(_dynamic_terms(_hyper_of(layer, kind), x))
            inputs_std[layer.name].append(float(np.std(np.asarray(x))))
    stats, means = [], {}
    for layer, kind, _ in layers:
        heads = [np.concatenate(h) for h in zip(*terms[layer.name])]
        means[layer.name] = [h.mean(0) for h in heads]
        if kind == "sign":
            static = np.abs(np.asarray(layer.input_quantizer.threshold)).mean()
        else:
            static = np.abs(np.asarray(layer.gamma)).mean()
        stats.append({
            "layer": layer.name, "kind": kind,
            "dynamic_std": [float(h.std(0).mean()) for h in heads],
            "static_mean_abs": float(static),
            "input_std": float(np.mean(inputs_std[layer.name])),
        })
    # Sign decisions changed by the variation (second pass, needs the means).
    for entry, (layer, kind, _) in zip(stats, layers):
        if kind != "sign":
            continue
        changed = total = 0
        for start in range(0, len(images), batch):
            x = np.asarray(tf.keras.Model(model.input, layer.input)(
                images[start:start + batch], training=False))
            (h,) = _dynamic_terms(_hyper_of(layer, kind), x)
            b = np.asarray(layer.input_quantizer.threshold)
            dynamic = x - (b + h)[:, None, None, :] >= 0
            frozen = x - (b + means[layer.name][0])[None, None, None, :] >= 0
            changed += int(np.sum(dynamic != frozen))
            total += dynamic.size
        entry["sign_changed"] = changed / total
    return stats, means


def _set_dynamic(model, means, *, zero: bool):
    """Replace every dynamic term by a constant: its validation mean, or zero."""
    for layer, kind, _ in _hyper_layers(model):
        hyper = _hyper_of(layer, kind)
        for kernel, bias, mean in zip(hyper.head_kernels, hyper.head_biases, means[layer.name]):
            value = np.zeros_like(mean) if zero else mean
            if hyper.output_bound is not None:
                value = np.arctanh(np.clip(value / hyper.output_bound, -0.999999, 0.999999))
            kernel.assign(np.zeros(kernel.shape, np.float32))
            bias.assign(np.asarray(value, np.float32).reshape(bias.shape))


def _accuracy(model, images, labels):
    logits = np.concatenate([np.asarray(model(images[i:i + 500], training=False))
                             for i in range(0, len(images), 500)])
    return float(np.mean(logits.argmax(-1) == labels))


def investigate(run: Path, *, probe: int = 1000) -> dict:
    """The measurements above for one run directory."""
    from larq_dybnn import load_model
    from larq_dybnn.sweep.evaluation import evaluation_arrays

    config = json.loads((run / "config.json").read_text())
    model = load_model(run / "model.keras")
    images, labels = evaluation_arrays(config, config["eval_split"], int(model.input_shape[1]))
    stats, means = _layer_stats(model, images[:probe])
    accuracy = {"as_trained": _accuracy(model, images, labels)}
    _set_dynamic(model, means, zero=False)
    accuracy["dynamic_frozen_to_mean"] = _accuracy(model, images, labels)
    _set_dynamic(model, means, zero=True)
    accuracy["dynamic_zero"] = _accuracy(model, images, labels)
    return {"run": f"{run.parent.name}/{run.name}", "split": config["eval_split"],
            "examples": int(len(labels)), "probe_images": int(min(probe, len(labels))),
            "accuracy": accuracy, "layers": stats}


def _summary(result: dict) -> dict:
    """One run's figures in points: top-1 as trained, what freezing the dynamic terms
    costs, the sign thresholds' std over images and the share of sign decisions the
    variation changes (both averaged over the sign layers; None without them)."""
    a = result["accuracy"]
    signs = [layer for layer in result["layers"] if layer["kind"] == "sign"]
    return {
        "as_trained": 100 * a["as_trained"],
        "frozen_cost": 100 * (a["as_trained"] - a["dynamic_frozen_to_mean"]),
        "dynamic_zero": 100 * a["dynamic_zero"],
        "threshold_std": float(np.mean([layer["dynamic_std"][0] for layer in signs]))
        if signs else None,
        "sign_changed": 100 * float(np.mean([layer["sign_changed"] for layer in signs]))
        if signs else None,
    }


def _cell(value, digits: int, *, sign: bool = False) -> str:
    return "-" if value is None else f"{value:{'+' if sign else ''}.{digits}f}"


def _markdown(results: list[dict]) -> str:
    lines = [
        "# Does the dynamic part matter? (validation split, trained DyBNN runs)",
        "",
        "Made by `experiments/cifar10-reactnet18/investigate.py` from the sweep's run "
        "folders. Top-1 on each run's validation images (%): as trained, with every "
        "dynamic term frozen to its average over the validation images, and with every "
        "dynamic term set to zero; the sign thresholds' standard deviation over images "
        "and the share of sign decisions (%) their variation changes, both averaged "
        "over the sign layers.",
        "",
        "| run | as trained | frozen to mean | Δ | dynamic = 0 | threshold std | "
        "sign decisions changed |",
        "|---|---|---|---|---|---|---|",
    ]
    by_config: dict[str, list[dict]] = {}
    for r in results:
        s = _summary(r)
        by_config.setdefault(r["run"].split("/")[0], []).append(s)
        lines.append(
            f"| {r['run']} | {s['as_trained']:.2f} | "
            f"{100 * r['accuracy']['dynamic_frozen_to_mean']:.2f} | "
            f"{s['frozen_cost']:+.2f} | {s['dynamic_zero']:.2f} | "
            f"{_cell(s['threshold_std'], 4)} | {_cell(s['sign_changed'], 2)} |")
    if any(len(runs) > 1 for runs in by_config.values()):
        lines += ["", "Per configuration, mean ± standard deviation over its runs:", "",
                  "| configuration | runs | as trained | Δ (as trained - frozen to mean) | "
                  "threshold std | sign decisions changed |", "|---|---|---|---|---|---|"]
        for config, runs in by_config.items():
            cells = []
            for key, digits, sign in (("as_trained", 2, False), ("frozen_cost", 2, True),
                                      ("threshold_std", 4, False), ("sign_changed", 2, False)):
                values = [run[key] for run in runs if run[key] is not None]
                spread = float(np.std(values, ddof=1)) if len(values) > 1 else None
                cells.append("-" if not values else _cell(float(np.mean(values)), digits, sign=sign)
                             + ("" if spread is None else f" ± {spread:.{digits}f}"))
            lines.append(f"| {config} | {len(runs)} | " + " | ".join(cells) + " |")
    lines += ["", "Per layer (first run): std over images of the dynamic term (mean over "
              "channels), mean |static threshold or shift|, std of the layer's input, and "
              "the share of sign decisions the variation changes.", "",
              "| layer | kind | dynamic std | static mean abs | input std | sign changed |",
              "|---|---|---|---|---|---|"]
    for layer in results[0]["layers"] if results else []:
        changed = layer.get("sign_changed")
        lines.append(
            f"| {layer['layer']} | {layer['kind']} | "
            + " / ".join(f"{v:.4f}" for v in layer["dynamic_std"])
            + f" | {layer['static_mean_abs']:.4f} | {layer['input_std']:.3f} | "
            + (f"{changed:.2%} |" if changed is not None else "- |"))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="?", help="the sweep's output folder")
    parser.add_argument("--configs", default="dybnn-both-r16",
                        help="comma-separated DyBNN configurations")
    parser.add_argument("--output", type=Path, default=HERE)
    parser.add_argument("--probe", type=int, default=1000,
                        help="validation images for the per-layer statistics")
    parser.add_argument("--render", action="store_true",
                        help="only write investigation.md again from --output's "
                             "investigation.json (no model is evaluated)")
    args = parser.parse_args()
    if args.render:
        from larq_dybnn._io import atomic_write_bytes

        source = args.output / "investigation.json"
        if not source.is_file():
            parser.error(f"--render: no '{source}'")
        atomic_write_bytes(args.output / "investigation.md",
                           _markdown(json.loads(source.read_text())).encode())
        return 0
    if args.runs is None:
        parser.error("give the sweep's output folder (or --render)")
    if not args.runs.is_dir():
        parser.error(f"no sweep folder at '{args.runs}'")
    # Made before the minutes of work, not found missing after them.
    args.output.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
    from larq_dybnn._io import atomic_write_bytes

    results = []
    for config in args.configs.split(","):
        for run in sorted((args.runs / config).glob("seed-*")):
            if (run / "model.keras").is_file():
                print(f"investigating {run}", flush=True)
                results.append(investigate(run, probe=args.probe))
                print(json.dumps(results[-1]["accuracy"]), flush=True)
    if not results:
        print(f"no finished runs of {args.configs} in {args.runs}", file=sys.stderr)
        return 1
    atomic_write_bytes(args.output / "investigation.json",
                       json.dumps(results, indent=2).encode())
    atomic_write_bytes(args.output / "investigation.md", _markdown(results).encode())
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
