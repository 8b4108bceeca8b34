"""The bodies of the `larq-dybnn` commands.

The command line itself (its parser, which loads no TensorFlow so that `--help`
answers at once) is the top-level module `larq_dybnn_cli`; it calls `run` here with
the parsed arguments.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["run", "COMMANDS"]


def check_outputs(*, inputs: dict[str, object], outputs: dict[str, object]) -> None:
    """Refuse an output path that is an input or another output (a trained model
    overwritten by its own `.tflite`, a report written over the model).

    Arguments:
        inputs, outputs: option name -> path (None for an option not given).

    Raises:
        ValueError: naming both options and the path.
    """
    seen: dict[str, str] = {}
    for role, paths in (("input", inputs), ("output", outputs)):
        for option, path in paths.items():
            if path is None:
                continue
            key = os.path.realpath(os.fspath(path))
            if key in seen and (role == "output"):
                raise ValueError(
                    f"{option} '{path}' is the same file as {seen[key]}; refusing to "
                    "overwrite it. Choose another output path.")
            seen.setdefault(key, option)


def demo(args: argparse.Namespace) -> int:
    from larq_dybnn.training.demo import run_demo

    result = run_demo(
        data=args.data, epochs=args.epochs, batch_size=args.batch_size,
        output_dir=args.output_dir, seed=args.seed, verbose=2 if args.quiet else 1,
    )
    return 0 if result.passed else 1


def train(args: argparse.Namespace) -> int:
    import dataclasses

    from larq_dybnn.training import TrainConfig, train as train_run
    from larq_dybnn.training.config import train_config_options

    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    config = TrainConfig(**train_config_options(args, fields))
    result = train_run(config, print_fn=lambda line: print(f"[train] {line}", flush=True))
    if result.worker.is_chief:
        print(f"[train] done in {result.seconds:.0f} s; outputs in {result.output_dir}")
    return 0


def sweep(args: argparse.Namespace) -> int:
    from larq_dybnn.sweep.runner import load_spec, run_sweep

    spec = load_spec(args.spec, data=args.data)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    states = run_sweep(
        spec, args.output_dir, only=only, train=not args.skip_training,
        evaluate=not args.skip_evaluation, reevaluate=args.reevaluate, dry_run=args.dry_run,
        results_dir=args.results_dir, print_fn=lambda line: print(f"[sweep] {line}", flush=True),
    )
    counts = {state: sum(1 for _, s in states if s == state) for state in ("done", "partial", "new")}
    print(f"[sweep] {len(states)} runs: {counts['done']} finished, {counts['partial']} "
          f"unfinished, {counts['new']} not started")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from larq_dybnn.training.evaluation import evaluate as evaluate_model

    check_outputs(inputs={"the model": args.model, "--data": args.data},
                  outputs={"--json": args.json})
    result = evaluate_model(
        args.model, data=args.data, split=args.split, data_dir=args.data_dir,
        batch_size=args.batch_size, preprocess=args.preprocess, resize=args.resize,
        limit=args.limit, threads=args.threads, unsafe_load=args.unsafe_load,
        progress=lambda line: print(f"[evaluate] {line}", flush=True),
    )
    print(result)
    if args.json:
        import json

        from larq_dybnn._io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(result.as_dict(), indent=2).encode())
    return 0


def convert(args: argparse.Namespace) -> int:
    import warnings

    from larq_dybnn.contract import read_contract
    from larq_dybnn.converter import export_and_verify
    from larq_dybnn.loading import load_model
    from larq_dybnn.training.inputs import prepare_inputs

    def say(line: str) -> None:
        print(f"[convert] {line}", flush=True)

    check_outputs(inputs={"the model": args.model, "--verify": args.verify},
                  outputs={"-o/--output": args.output, "--report": args.report})
    model = load_model(args.model, unsafe=args.unsafe_load)
    contract = read_contract(args.model)
    say("input contract: " + (contract.describe() if contract else "none recorded"))
    samples = labels = None
    source = "given samples"
    if args.verify:
        height, width = model.input_shape[1:3]
        if height is None or width is None:
            raise ValueError(
                f"{args.model} has no fixed input size; --verify needs one to resize "
                "the images"
            )
        say(f"reading up to {args.samples} images from {args.verify}")
        prepared = prepare_inputs(
            args.verify, model=args.model, image_size=(height, width), contract=contract,
            preprocess=args.preprocess, resize=args.resize, limit=args.samples,
            split=args.verify_split)
        for note in prepared.notes:
            say(note + (" (--preprocess sets it)" if prepared.guessed else ""))
            if prepared.guessed:
                warnings.warn(note, stacklevel=1)
        samples, labels, source = prepared.samples, prepared.labels, prepared.source
        if model.output_shape[-1] != len(prepared.class_names):
            say(f"{len(prepared.class_names)} classes in the images, "
                f"{model.output_shape[-1]} model outputs: accuracy not reported")
            labels = None
    report = export_and_verify(
        model,
        output_path=args.output,
        samples=samples,
        labels=labels,
        samples_source=source,
        benchmark=args.benchmark,
        runs=args.runs,
        allow_float_fallback=args.allow_float_fallback,
        int8_hyper_weights=args.int8_hyper_weights,
        contract=contract,
        progress=say,
    )
    print(report.format())
    if args.report:
        from larq_dybnn._io import atomic_write_bytes

        atomic_write_bytes(args.report, report.to_json().encode())
        say(f"wrote report {args.report}")
    return 0


def inspect(args: argparse.Namespace) -> int:
    import collections
    from pathlib import Path

    from larq_dybnn.converter import read_operators

    path = Path(args.tflite)
    if not path.is_file():
        raise FileNotFoundError(f"no file '{path}'")
    operators = read_operators(path.read_bytes())
    counts = collections.Counter(
        op.name + (f" (fused {op.fused_activation})" if op.fused_activation else "")
        for op in operators
    )
    print(f"{path}: {path.stat().st_size / 1024:,.1f} KiB, {len(operators)} ops")
    width = max(len(name) for name in counts)
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {name:<{width}}  {count:>5}")
    from larq_dybnn.contract import read_contract

    contract = read_contract(path.read_bytes())
    print("Input contract: " + (contract.describe() if contract else
                                "none recorded (consumers must guess the preprocessing)"))
    custom = [n for n in counts if n.startswith("Lce")]
    if custom:
        print("Needs Larq Compute Engine's runtime (plain TFLite cannot run "
              + ", ".join(sorted(custom)) + ").")
    return 0


def verify_arm(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from larq_dybnn._io import atomic_write_bytes
    from larq_dybnn.device.emulation import prepare
    from larq_dybnn.device.verify import verify_arm as verify
    from larq_dybnn.contract import read_contract
    from larq_dybnn.converter.flatbuffer import check_flatbuffer
    from larq_dybnn.loading import load_model

    def say(line: str) -> None:
        print(f"[verify-arm] {line}", flush=True)

    check_outputs(inputs={"the model": args.tflite, "--keras": args.keras,
                          "--data": args.data}, outputs={"--json": args.json})
    path = Path(args.tflite)
    if not path.is_file():
        raise FileNotFoundError(f"No model at '{path}'.")
    flatbuffer = path.read_bytes()
    check_flatbuffer(flatbuffer, source=f"'{path}'")
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    import larq_dybnn_runtime

    unknown = [k for k in kernels if k not in larq_dybnn_runtime.KERNELS
               and k not in larq_dybnn_runtime.KERNEL_ALIASES]
    if not kernels or unknown:
        raise ValueError(f"--kernels: {', '.join(map(repr, unknown)) or 'none given'}; "
                         f"choose from {', '.join(sorted(larq_dybnn_runtime.KERNELS))}.")
    if not Path(args.lce_source).is_dir():
        raise FileNotFoundError(
            f"--lce-source: no folder at '{args.lce_source}'. Prepare LCE's kernel sources "
            f"with `larq-dybnn lce-sources {args.lce_source}` (or pass a folder).")
    if Path(args.arm_dir).exists() and not Path(args.arm_dir).is_dir():
        raise ValueError(f"--arm-dir '{args.arm_dir}' is a file, not a folder.")
    from larq_dybnn.converter.interpreter import lce_interpreter

    shape = tuple(lce_interpreter(flatbuffer, source=f"'{path}'").input_shapes[0][1:])
    contract = read_contract(flatbuffer)
    labels = None
    if args.data:
        from larq_dybnn.training.inputs import prepare_inputs

        prepared = prepare_inputs(args.data, model=args.tflite, image_size=shape[:2],
                                  contract=contract, limit=args.limit, split=args.split,
                                  resize=True)
        for note in prepared.notes:
            say(note)
        samples, labels, source = prepared.samples, prepared.labels, prepared.source
    else:
        samples = np.random.default_rng(0).normal(size=(args.limit, *shape)).astype("float32")
        source = f"{args.limit} random normal inputs"
    keras = None if args.keras is None else load_model(args.keras, unsafe=args.unsafe_load)
    say(f"setting up the emulated aarch64 environment in {args.arm_dir}")
    environment = prepare(args.arm_dir, lce_source=args.lce_source, print_fn=say)
    say(f"running {source} on {', '.join(kernels)} (qemu-aarch64)")
    checks = verify(path, environment=environment, samples=samples, labels=labels,
                    keras_model=keras, kernels=kernels)
    for check in checks:
        print(check)
    if args.json:
        atomic_write_bytes(args.json, json.dumps(
            {"model": str(path), "inputs": source, "checks": [c.as_dict() for c in checks]},
            indent=2).encode())
    return 0


def lce_sources(args: argparse.Namespace) -> int:
    from larq_dybnn.device.sources import fetch_sources

    fetch_sources(args.directory, mirror=args.mirror,
                  print_fn=lambda line: print(f"[lce-sources] {line}", flush=True))
    return 0


#: Command name -> its body, a function of the parsed arguments returning the exit status.
COMMANDS = {
    "demo": demo, "train": train, "sweep": sweep, "evaluate": evaluate,
    "convert": convert, "inspect": inspect, "verify-arm": verify_arm,
    "lce-sources": lce_sources,
}


def run(args: argparse.Namespace) -> int:
    """Run the command `args.command` with its parsed arguments.

    Errors a user can fix (a missing file, a bad option, a layer that did not
    convert) are printed as one line naming the command, with exit status 2.

    Returns:
        The exit status.
    """
    import larq_dybnn  # noqa: F401  (legacy Keras before TensorFlow loads)
    import tensorflow as tf

    # Larq's QuantizedVariable makes AutoGraph print a harmless warning per layer.
    tf.get_logger().setLevel("ERROR")

    from larq_dybnn.device.emulation import ArmSetupError
    from larq_dybnn.converter import FloatFallbackError

    try:
        return COMMANDS[args.command](args)
    except (FileNotFoundError, FloatFallbackError, ValueError, TypeError, OSError,
            ArmSetupError) as error:
        print(f"larq-dybnn {args.command}: error: {error}", file=sys.stderr)
        return 2
