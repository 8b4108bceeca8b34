"""Experiment campaigns: a grid of training configurations x seeds at one budget.

A sweep is described by a TOML file:

    name = "cifar10-reactnet18"
    baseline = "static"          # the configuration the others are compared with
    test_split = "test"          # evaluated once per finished run, never selected on

    [train]                      # options every run shares (TrainConfig fields)
    data = "../shared/data/cifar10"
    train_split = "train[:45000]"
    eval_split = "train[45000:]"   # validation: held out from the training images
    epochs = 10
    seeds = [0, 1, 2]

    [configs.static]             # one table per configuration: its own options
    model = "reactnet-18"

    [configs.dybnn]
    model = "dybnn-reactnet-18"
    reduction = 16
    seeds = [0, 1]               # a configuration may have its own seeds

Runs may depend on other runs of the sweep: in `init_from` and `teacher`,
`{sweep_dir}` stands for the sweep's output directory and `{seed}` for the run's seed,
so a two-step recipe reads

    [configs.teacher]
    model = "resnet-18"
    seeds = [0]
    evaluate = false             # trained, not evaluated on the test split or tabled

    [configs.static-step1]
    model = "reactnet-18"
    step = 1
    teacher = "{sweep_dir}/teacher/seed-0/model.keras"
    evaluate = false

    [configs.static]
    model = "reactnet-18"
    init_from = "{sweep_dir}/static-step1/seed-{seed}/model.keras"
    teacher = "{sweep_dir}/teacher/seed-0/model.keras"

Each option takes the TOML type of its TrainConfig field: `true`/`false` for a
switch (`int8_hyper_kernels = "yes"` is refused, not counted as on), integers and
floats unquoted; a value of another type is an error naming the table and option.

A configuration runs after those above it in the file (seed by seed), so list a
dependency first; a run whose dependency has not finished is an error naming both.

Every run is an ordinary `larq-dybnn train` output directory,
`<output_dir>/<configuration>/seed-<seed>/`, trained by the real command in a
subprocess (its output goes to `train.log` there). `run_sweep` skips finished runs and
resumes unfinished ones (train's own epoch checkpoints), so a campaign can span
several sittings; runs go seed by seed (every configuration's first seed, then every
second seed, ...), so a campaign stopped early stays balanced. Each run records the
commit and versions it was trained with in `provenance.json`.

Choices (reduction, bounds, learning rate) are made on `eval_split`, a slice of the
training images; `test_split` is only evaluated (`larq_dybnn.sweep.evaluation`) and
aggregated (`larq_dybnn.sweep.results`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from larq_dybnn._io import atomic_write_bytes, open_no_follow
from larq_dybnn.training.locks import lock_folder
from larq_dybnn.training.run_folder import RunFolder
from larq_dybnn.sweep.provenance import provenance

__all__ = ["RunSpec", "SweepSpec", "load_spec", "run_sweep", "train_command", "run_state"]

#: TrainConfig fields a sweep sets per run, not per configuration.
_PER_RUN = ("seed", "output_dir", "restart", "verbose")

#: Options whose paths may name other runs of the sweep ({sweep_dir}, {seed}).
_RUN_PATHS = ("init_from", "teacher")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
        config: the configuration's name.
        seed: the run's seed.
        options: TrainConfig options (without `seed` and `output_dir`).
    """

    config: str
    seed: int
    options: dict

    @property
    def key(self) -> str:
        """The run's folder below the sweep's output directory."""
        return f"{self.config}/seed-{self.seed}"


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file.

    Attributes:
        name: the sweep's name.
        baseline: the configuration the others are compared with (None when no
            configuration is evaluated, e.g. a pilot).
        test_split: the split evaluated after training (never used for choices).
        configs: configuration names in file order.
        runs: every run, in execution order (seed by seed).
        source: the file it was read from.
        evaluated: the configurations evaluated on the test split and tabled (all but
            those with `evaluate = false`, e.g. teachers and step-1 runs).
    """

    name: str
    baseline: str | None
    test_split: str
    configs: list[str]
    runs: list[RunSpec]
    source: str
    evaluated: list[str] = dataclasses.field(default_factory=list)

    def select(self, only: Sequence[str] | None) -> list[RunSpec]:
        """The runs of the configurations in `only` (all runs for None).

        Raises:
            ValueError: naming a configuration that the sweep does not have.
        """
        if not only:
            return list(self.runs)
        unknown = [name for name in only if name not in self.configs]
        if unknown:
            raise ValueError(
                f"`only`: no configuration {', '.join(map(repr, unknown))} in "
                f"'{self.source}' (it has {', '.join(self.configs)})."
            )
        return [run for run in self.runs if run.config in only]


def _train_fields() -> dict[str, object]:
    from larq_dybnn.training import TrainConfig

    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}


#: TOML values a TrainConfig field's annotation accepts (an int is a float too).
_TOML_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}


def _train_types() -> dict[str, list[str]]:
    """TrainConfig field -> the type names its annotation allows, without None
    (TOML has no null)."""
    from larq_dybnn.training import TrainConfig

    return {f.name: [part.strip() for part in str(f.type).split("|")
                     if part.strip() != "None"]
            for f in dataclasses.fields(TrainConfig)}


def _check_type(key: str, value: object, names: Sequence[str], where: str) -> None:
    """Refuse a value the field does not take: a switch given "yes" or 1 would
    otherwise count by truthiness, and a number given as a string would reach the
    run's command line unchecked."""
    accepted = tuple(t for name in names for t in _TOML_TYPES.get(name, (object,)))
    if isinstance(value, bool) and "bool" not in names or not isinstance(value, accepted):
        wanted = " or ".join("true or false" if name == "bool" else f"a TOML {name}"
                             for name in names)
        raise ValueError(f"{where}: `{key}` must be {wanted}, got {value!r}.")


def _seeds(value: object, where: str) -> list[int]:
    if (
        not isinstance(value, list) or not value
        or any(isinstance(s, bool) or not isinstance(s, int) for s in value)
        or len(set(value)) != len(value)
    ):
        raise ValueError(f"{where}: `seeds` must be a non-empty list of distinct integers, "
                         f"got {value!r}.")
    return list(value)


def _check_options(options: dict, where: str, fields: dict) -> None:
    types = _train_types()
    for key, value in options.items():
        if key == "evaluate":
            raise ValueError(f"{where}: `evaluate` belongs in a [configs.<name>] table.")
        if key in _PER_RUN:
            raise ValueError(f"{where}: `{key}` is set by the sweep for each run; remove it.")
        if key not in fields:
            raise ValueError(
                f"{where}: unknown option `{key}` (options are larq-dybnn train's: "
                f"{', '.join(k for k in fields if k not in _PER_RUN)})."
            )
        _check_type(key, value, types[key], where)


def load_spec(path: str | os.PathLike, *, data: str | None = None) -> SweepSpec:
    """Read and check a sweep file.

    Arguments:
        path: the TOML file.
        data: overrides the `data` option of every run (e.g. another copy of the
            data set).

    Returns:
        A `SweepSpec`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for a file that is not TOML, an unknown option or a value of the
            wrong type (named with its table: a switch takes only true or false), missing or bad seeds, an unknown baseline, a configuration name
            that is not one plain folder name, or a validation or training split
            that is the test split.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No sweep file at '{path}'.")
    try:
        text = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"'{path}' is not valid TOML: {error}") from None
    from larq_dybnn.training.data import parse_split

    fields = _train_fields()
    allowed = {"name", "baseline", "test_split", "train", "configs"}
    extra = sorted(set(text) - allowed)
    if extra:
        raise ValueError(f"'{path}': unknown top-level keys {extra} (allowed: {sorted(allowed)}).")
    common = dict(text.get("train", {}))
    default_seeds = common.pop("seeds", [0])
    _check_options(common, f"'{path}' [train]", fields)
    configs = text.get("configs")
    if not isinstance(configs, dict) or not configs:
        raise ValueError(f"'{path}': needs at least one [configs.<name>] table.")
    test_split = text.get("test_split", "test")
    per_config: dict[str, tuple[dict, list[int]]] = {}
    evaluated = []
    for name, table in configs.items():
        where = f"'{path}' [configs.{name}]"
        _check_config_name(name, where)
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table of options.")
        table = dict(table)
        seeds = _seeds(table.pop("seeds", default_seeds), where)
        evaluate = table.pop("evaluate", True)
        if not isinstance(evaluate, bool):
            raise ValueError(f"{where}: `evaluate` must be true or false, got {evaluate!r}.")
        if evaluate:
            evaluated.append(name)
        _check_options(table, where, fields)
        options = {**common, **table}
        if data is not None:
            options["data"] = data
        eval_split = options.get("eval_split", fields["eval_split"])
        if parse_split(eval_split)[0] == parse_split(test_split)[0]:
            raise ValueError(
                f"{where}: `eval_split` {eval_split!r} comes from the test split "
                f"{test_split!r}; choices must be made on images held out from the "
                "training split (e.g. eval_split = \"train[45000:]\")."
            )
        per_config[name] = (options, seeds)
    baseline = text.get("baseline", evaluated[0] if evaluated else None)
    if evaluated and baseline not in evaluated or not evaluated and baseline is not None:
        raise ValueError(f"'{path}': `baseline` {baseline!r} is not an evaluated "
                         f"configuration ({', '.join(evaluated) or 'none'}).")
    for name, (options, _) in per_config.items():
        train_split = options.get("train_split", fields["train_split"])
        if parse_split(train_split)[0] == parse_split(test_split)[0]:
            raise ValueError(
                f"'{path}' [configs.{name}]: `train_split` {train_split!r} comes from the "
                f"test split {test_split!r}, which is only evaluated; train on another split.")
    runs = []
    for round_ in range(max(len(seeds) for _, seeds in per_config.values())):
        for name, (options, seeds) in per_config.items():
            if round_ < len(seeds):
                runs.append(RunSpec(name, seeds[round_], options))
    return SweepSpec(
        name=str(text.get("name", path.stem)), baseline=baseline, test_split=test_split,
        configs=list(configs), runs=runs, source=str(path), evaluated=evaluated,
    )


def _check_config_name(name: str, where: str) -> None:
    """A configuration's name becomes a folder: one plain path segment."""
    if (not name or name in (".", "..") or name.startswith(".")
            or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name)):
        raise ValueError(
            f"{where}: a configuration name must be one plain folder name of letters, "
            f"digits, '-', '_' and '.' (not starting with '.'), got {name!r}.")


def run_options(run: RunSpec, sweep_dir: str | os.PathLike) -> dict:
    """`run`'s options with `{sweep_dir}` and `{seed}` filled in its run paths."""
    options = dict(run.options)
    for key in _RUN_PATHS:
        if isinstance(options.get(key), str):
            options[key] = (options[key].replace("{sweep_dir}", os.fspath(sweep_dir))
                            .replace("{seed}", str(run.seed)))
    return options


def train_command(run: RunSpec, output_dir: str | os.PathLike) -> list[str]:
    """The `larq-dybnn train` arguments of `run`, writing to `output_dir`
    (`<sweep_dir>/<config>/seed-<seed>`)."""
    from larq_dybnn.training.config import train_arguments

    fields = _train_fields()
    sweep_dir = Path(output_dir).parent.parent
    switches = [key for key, default in fields.items() if isinstance(default, bool)]
    args = ["train", *train_arguments({**run_options(run, sweep_dir), "seed": run.seed},
                                      switches=switches)]
    return args + ["--output-dir", os.fspath(output_dir), "--quiet"]


def run_state(folder: Path) -> str:
    """"done" (report.json written), "partial" (checkpoints, no report) or "new"."""
    run = RunFolder(folder)
    if run.report.is_file():
        return "done"
    if run.checkpoints.is_dir() and any(run.checkpoints.iterdir()):
        return "partial"
    return "new"


def _record_session(folder: Path, run: RunSpec, sweep: SweepSpec, info: dict) -> None:
    path = RunFolder(folder).provenance
    from larq_dybnn.sweep.results import read_record

    record = read_record(path) if path.is_file() else {
        "sweep": sweep.name, "sweep_file": sweep.source, "config": run.config,
        "seed": run.seed, "options": run.options, "sessions": [],
    }
    record["sessions"].append({**info, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "state_before": run_state(folder)})
    atomic_write_bytes(path, json.dumps(record, indent=2).encode())


#: Training holds this lock in a sweep folder (the name older versions used for
#: everything, so an older sweep and a newer one still exclude each other there).
TRAIN_LOCK = ".sweep.lock"
#: Evaluation and aggregation hold this one: finished runs can be evaluated while
#: another sweep trains in the same folder (evaluation reads only finished runs, which
#: training no longer writes, and every file it writes is written atomically).
EVALUATE_LOCK = ".sweep-evaluate.lock"


def run_sweep(
    spec: SweepSpec,
    output_dir: str | os.PathLike,
    *,
    only: Sequence[str] | None = None,
    train: bool = True,
    evaluate: bool = True,
    reevaluate: bool = False,
    dry_run: bool = False,
    results_dir: str | os.PathLike | None = None,
    print_fn: Callable[[str], object] = print,
) -> list[tuple[RunSpec, str]]:
    """Train, evaluate and aggregate the runs of `spec`.

    Arguments:
        spec: from `load_spec`.
        output_dir: the sweep's folder (runs below it, results in it).
        only: configuration names to work on (None: all).
        train: train new runs and resume unfinished ones.
        evaluate: evaluate finished runs on the test split (Keras, LCE float, LCE int8
            hyper weights) and aggregate every evaluated run into results.csv,
            results.md and results.png.
        reevaluate: evaluate finished runs again even if they have an evaluation
            (after a change to the evaluation, so that a table holds one form).
        dry_run: only print what would be done.
        results_dir: also write the results there, with a copy of each evaluated
            run's small record files (`larq_dybnn.sweep.results.RECORDS`, enough to
            regenerate the results; no weights), e.g. a folder to commit.
        print_fn: receives progress lines.

    Returns:
        `(run, state)` for every selected run, the state after this call ("done",
        "partial" or "new").

    Raises:
        ValueError: for an unknown configuration in `only`, another sweep training
            in `output_dir` (when `train`) or evaluating there (when only evaluating:
            evaluation can run beside another sweep's training), or a run whose
            `larq-dybnn train` failed (its log named).
    """
    runs = spec.select(only)
    output_dir = Path(output_dir)
    if dry_run:
        for run in runs:
            folder = output_dir / run.key
            print_fn(f"{run.key}: {run_state(folder)}: larq-dybnn "
                     + " ".join(train_command(run, folder)))
        return [(run, run_state(output_dir / run.key)) for run in runs]
    output_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as locks:
        if train:
            locks.enter_context(lock_folder(output_dir, what="sweep", name=TRAIN_LOCK,
                                            purpose="training"))
            info = provenance()
            atomic_write_bytes(output_dir / "sweep.toml", Path(spec.source).read_bytes())
            for index, run in enumerate(runs, 1):
                folder = output_dir / run.key
                state = run_state(folder)
                if state == "done":
                    print_fn(f"[{index}/{len(runs)}] {run.key}: finished, skipped")
                    continue
                _check_dependencies(run, output_dir)
                folder.mkdir(parents=True, exist_ok=True)
                _record_session(folder, run, spec, info)
                print_fn(f"[{index}/{len(runs)}] {run.key}: "
                         f"{'resuming' if state == 'partial' else 'training'}")
                _train(run, folder)
                print_fn(f"[{index}/{len(runs)}] {run.key}: finished")
        if evaluate:
            # After hours of training, wait for an evaluation started meanwhile
            # rather than fail; an evaluation-only call fails at once instead.
            locks.enter_context(lock_folder(output_dir, what="sweep", name=EVALUATE_LOCK,
                                            purpose="evaluation",
                                            wait=print_fn if train else None))
            from larq_dybnn.sweep.results import copy_records, write_results
            from larq_dybnn.sweep.evaluation import evaluate_run

            for run in runs:
                folder = output_dir / run.key
                if run.config in spec.evaluated and run_state(folder) == "done" and (
                        reevaluate or not RunFolder(folder).evaluation.is_file()):
                    print_fn(f"{run.key}: evaluating on '{spec.test_split}'")
                    evaluate_run(folder, split=spec.test_split, print_fn=print_fn)
            written = write_results(output_dir, baseline=spec.baseline,
                                    configs=spec.evaluated) if spec.evaluated else []
            if results_dir is not None and spec.evaluated:
                copied = copy_records(output_dir, Path(results_dir) / "runs")
                written += write_results(Path(results_dir) / "runs", baseline=spec.baseline,
                                         configs=spec.evaluated, destination=results_dir)
                print_fn(f"Copied the records of {copied} runs to {Path(results_dir) / 'runs'}")
            for path in written:
                print_fn(f"Wrote {path}")
    return [(run, run_state(output_dir / run.key)) for run in runs]


def _check_dependencies(run: RunSpec, output_dir: Path) -> None:
    for key, value in run_options(run, output_dir).items():
        if key in _RUN_PATHS and isinstance(value, str) and not Path(value).exists():
            raise ValueError(
                f"Run {run.key} needs `{key}` '{value}', which does not exist yet: list "
                "the configuration that trains it above this one in the sweep file.")


def _train(run: RunSpec, folder: Path) -> None:
    # -P: the current folder is not put on the import path, so a stray
    # larq_dybnn_cli.py there cannot stand in for the installed package.
    command = [sys.executable, "-P", "-m", "larq_dybnn_cli", *train_command(run, folder)]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_folder = RunFolder(folder)
    with open_no_follow(run_folder.train_log, "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise ValueError(
            f"Run {run.key} failed (exit {done.returncode}); see '{run_folder.train_log}'."
        )
    missing = [name for name in (RunFolder.REPORT, RunFolder.MODEL)
               if not (run_folder / name).is_file()]
    if missing:
        raise ValueError(f"Run {run.key} exited without writing {', '.join(missing)}; "
                         f"see '{run_folder.train_log}'.")
