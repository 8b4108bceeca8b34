"""Ship the best trained runs of a sweep as the zoo's `weights="cifar10"`.

For each configuration given, picks the finished run with the best *validation*
accuracy (never the test accuracy), saves its weights as an `.h5` file in
`zoo/pretrained/`, and writes its entry in `zoo/pretrained/manifest.json` (replacing
the model's previous weights of that name; other models' entries stay) with the file's
sha256, the builder options the weights need, and the accuracies a user can check: on
the whole test split (Keras, LCE interpreter, and how often the default int8 file gives
the Keras model's answer) and on the first `--check-images` test images (what the test
suite re-measures). A run trained with its hyper kernels on the
int8 grid (`int8_hyper_kernels`) ships with its kernels rounded onto that grid, which is
what it computed in training: the zoo builds its models with float kernels, and the
unrounded kernels would change the answers for about 5% of images.

Usage (from the repository root):
    python experiments/ship_weights.py runs/cifar10-reactnet18 \
        --config static=reactnet_18 --config dybnn-both-r16=dybnn_reactnet_18
    python experiments/ship_weights.py ../recipe-campaign/runs/cifar10-recipe-int8-grid \
        --config dybnn-int8-grid=dybnn_reactnet_18   # the static weights stay
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np
import tensorflow as tf

from larq_dybnn import load_model, simulate_int8_hyper_kernels
from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.training import data as data_lib, preprocessing
from larq_dybnn.contract import contract_for, read_contract
from larq_dybnn.converter import convert, lce_outputs
from larq_dybnn.converter.int8 import round_hyper_weights
from larq_dybnn.sweep.evaluation import evaluation_arrays

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "zoo" / "pretrained"


def _best_run(sweep: Path, config: str) -> Path:
    runs = []
    for report in sorted((sweep / config).glob("seed-*/report.json")):
        accuracy = json.loads(report.read_text())["evaluation"]["accuracy"]
        runs.append((accuracy, report.parent))
    if not runs:
        raise SystemExit(f"no finished run of '{config}' in '{sweep}'")
    return max(runs)[1]


def shipped_model(run: Path) -> tf.keras.Model:
    """The run's model as it ships: what it computed in training, with float kernels.

    Arguments:
        run: a finished run folder (config.json, model.keras).

    Returns:
        The loaded model; for a run trained on the int8 grid, with its hyper kernels
        rounded onto that grid and the simulation switched off, so the same weights in a
        zoo model (float kernels) compute what was trained.
    """
    config = json.loads((run / "config.json").read_text())
    model = load_model(run / "model.keras")
    if config.get("int8_hyper_kernels"):
        round_hyper_weights(model)
        simulate_int8_hyper_kernels(model, enabled=False)
    return model


def ship(run: Path, *, model_name: str, name: str, check_images: int) -> dict:
    config = json.loads((run / "config.json").read_text())
    model = shipped_model(run)
    evaluation = json.loads((run / "evaluation.json").read_text())
    x, y = evaluation_arrays(config, f"test[:{check_images}]", int(model.input_shape[1]))
    keras = np.concatenate([np.asarray(model(x[i:i + 500], training=False))
                            for i in range(0, len(x), 500)])
    conversion = convert(model)
    lce = lce_outputs(conversion.float_flatbuffer, x)
    lce_int8 = lce_outputs(conversion.int8_flatbuffer, x)  # the export default
    file = f"{model_name}_{name}_x{config['width_multiplier']}.h5"
    PRETRAINED.mkdir(parents=True, exist_ok=True)
    model.save_weights(PRETRAINED / file)
    digest = hashlib.sha256((PRETRAINED / file).read_bytes()).hexdigest()
    options = {"width_multiplier": config["width_multiplier"], "stem": "cifar",
               "input_shape": list(model.input_shape[1:]), "binary_weights": True}
    if "dybnn" in model_name:
        options.update(dynamic=config["dynamic"], reduction=config["reduction"] or 16,
                       output_bound=None)
    else:
        options.update(dynamic="none")
    contract = read_contract(run / "model.keras")
    if contract is None:  # runs trained before models recorded their contract
        images = data_lib.load(config["data"], split=config["eval_split"])
        preprocess = config.get("preprocess") or preprocessing.default_preprocess(
            config["data"], int(model.input_shape[1]))
        contract = contract_for(preprocess, image_size=int(model.input_shape[1]),
                                class_names=images.class_names)
    provenance = json.loads((run / "provenance.json").read_text())
    return {
        "model": model_name, "name": name, "file": file, "sha256": digest,
        "num_classes": int(model.output_shape[-1]), "options": options,
        "accuracy": {
            "test_keras": evaluation["test_accuracy"], "test_lce": evaluation["lce_accuracy"],
            "test_lce_int8": evaluation["lce_int8_accuracy"],
            "test_lce_int8_agreement": evaluation["lce_int8_agreement"],
            "check_split": f"test[:{check_images}]",
            "check_keras": float(np.mean(keras.argmax(-1) == y)),
            "check_lce": float(np.mean(lce.argmax(-1) == y)),
            "check_lce_int8": float(np.mean(lce_int8.argmax(-1) == y)),
            # How often the default export (int8 hyper weights) gives this model's answer.
            "check_lce_int8_agreement": float(np.mean(lce_int8.argmax(-1) == keras.argmax(-1))),
            "validation": json.loads((run / "report.json").read_text())["evaluation"]["accuracy"],
        },
        "input_contract": contract.as_dict(),
        "trained": {"run": f"{run.parent.parent.name}/{run.parent.name}/{run.name}", "commit":
                    provenance["sessions"][-1].get("commit"), "options": config},
    }


def merged_manifest(existing: list[dict], entries: list[dict]) -> list[dict]:
    """The manifest after shipping `entries`: each replaces the entry of its model and
    name in place, a new one is appended, and the weights of other models stay listed.

    Arguments:
        existing: the manifest's entries so far.
        entries: the entries just shipped.

    Returns:
        The new list of entries.
    """
    new = {(entry["model"], entry["name"]): entry for entry in entries}
    kept = [new.pop((entry["model"], entry["name"]), entry) for entry in existing]
    return kept + list(new.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--config", action="append", required=True,
                        metavar="CONFIG=MODEL", help="sweep configuration = zoo model name")
    parser.add_argument("--name", default="cifar10")
    parser.add_argument("--check-images", type=int, default=2000)
    args = parser.parse_args(argv)
    entries = []
    for pair in args.config:
        config, model_name = pair.split("=")
        run = _best_run(args.sweep, config)
        print(f"{config}: best validation run {run}")
        entries.append(ship(run, model_name=model_name, name=args.name,
                            check_images=args.check_images))
    manifest = PRETRAINED / "manifest.json"
    shipped = merged_manifest(json.loads(manifest.read_text()) if manifest.is_file() else [],
                              entries)
    atomic_write_bytes(manifest, json.dumps(shipped, indent=2).encode())
    print(json.dumps(entries, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
