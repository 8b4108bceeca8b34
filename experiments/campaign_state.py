"""Carry a long campaign's state across machines through the repository.

A campaign of many hours outlives the machine it starts on: the folder it trains in
(`../recipe-campaign/runs/`) is gone when the session ends. This script copies what a
later session needs into the checkout, to be committed, and back:

    python3 experiments/campaign_state.py save    --runs WORK/runs --state STATE SWEEP...
    python3 experiments/campaign_state.py restore --runs WORK/runs --state STATE

`save` copies, for each run folder (one holding a config.json) of the named sweep
folders:
  - its records: config.json, history.csv, provenance.json, report.json and
    evaluation.json when present (small JSON/CSV files);
  - a finished run (report.json and model.keras): its model.keras, which later runs
    start from (teacher, step 1), which the results stage evaluates, and which may
    be shipped, without the optimizer's state (two thirds of the file; nothing
    reads it: later runs take the weights, evaluation the outputs) when h5py can be
    imported; with `--records-only`, no weights;
  - an unfinished run: its newest epoch checkpoint only (ckpt-N.* and a `checkpoint`
    index naming it), enough for the training to resume from that epoch.
It removes from STATE what the runs folder has made stale (an older checkpoint, the
checkpoint of a run that has since finished). With `--finished-only`, unfinished runs
are skipped (nothing of theirs is copied, and what STATE holds of them is left as it
is): for a commit in the middle of a session, without a checkpoint that the next
save replaces. `restore` copies every run of STATE into
a runs folder that does not have it yet; a run folder that exists is left alone.

`restore` needs the standard library only: it runs with any Python 3, before the
campaign's install; `save` uses h5py when it is there (the campaign's install has it).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

RECORDS = ("config.json", "history.csv", "provenance.json", "report.json", "evaluation.json")
MODEL = "model.keras"
CHECKPOINTS = "checkpoints"


def _write_atomically(target: Path, write) -> None:
    """Call `write(temporary_path)`, then move the result onto `target`; a failure
    leaves neither a partial `target` nor the temporary file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.tmp-")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _copy(source: Path, target: Path) -> bool:
    """Copy atomically when the content differs; True when something was written."""
    if target.is_file() and target.stat().st_size == source.stat().st_size \
            and target.read_bytes() == source.read_bytes():
        return False
    _write_atomically(target, lambda temporary: shutil.copyfile(source, temporary))
    return True


def _without_local_paths(data: bytes) -> bytes:
    """A run's provenance without the training machine's paths: the sweep file by its
    name, and no install location (as the sweep's own copies of records do)."""
    record = json.loads(data)
    if isinstance(record.get("sweep_file"), str):
        record["sweep_file"] = Path(record["sweep_file"]).name
    for session in record.get("sessions", []):
        session.pop("package_path", None)
    return (json.dumps(record, indent=2) + "\n").encode()


def _copy_provenance(source: Path, target: Path) -> bool:
    data = _without_local_paths(source.read_bytes())
    if target.is_file() and target.read_bytes() == data:
        return False
    _write_atomically(target, lambda temporary: Path(temporary).write_bytes(data))
    return True


def slim_model(source: Path, target: Path) -> bool:
    """Write `source` (a Keras v3 `.keras` zip) to `target` without the optimizer's
    variables and compile configuration: the same layers and weights, loaded
    uncompiled. Copies it whole when h5py is missing. True when slimmed."""
    try:
        import h5py
    except ImportError:
        _copy(source, target)
        return False

    def write(temporary: str) -> None:
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(temporary, "w") as slim:
            for info in original.infolist():
                data = original.read(info.filename)
                if info.filename == "model.weights.h5":
                    kept = io.BytesIO()
                    with h5py.File(io.BytesIO(data), "r") as weights, \
                            h5py.File(kept, "w") as out:
                        for key in weights.keys():
                            if key != "optimizer":
                                weights.copy(key, out)
                        for key, value in weights.attrs.items():
                            out.attrs[key] = value
                    data = kept.getvalue()
                elif info.filename == "config.json":
                    config = json.loads(data)
                    config.pop("compile_config", None)
                    data = json.dumps(config).encode()
                slim.writestr(info, data)

    _write_atomically(target, write)
    return True


def newest_checkpoint(folder: Path) -> str | None:
    """The prefix (`ckpt-N`) of the newest checkpoint in a checkpoints folder."""
    index = folder / "checkpoint"
    if not index.is_file():
        return None
    for line in index.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model_checkpoint_path":
            prefix = Path(json.loads(value.strip())).name
            if any(folder.glob(prefix + ".*")):
                return prefix
    return None


def run_folders(root: Path) -> list[Path]:
    """Every run folder (one holding config.json) below `root`, sorted."""
    return sorted(p.parent for p in root.rglob("config.json")
                  if p.parent != root and CHECKPOINTS not in p.parts)


def save_run(run: Path, kept: Path, *, weights: bool) -> list[str]:
    """Copy one run's resumable state into `kept`; the names written or removed."""
    changed = []
    for name in RECORDS:
        copy = _copy_provenance if name == "provenance.json" else _copy
        if (run / name).is_file() and copy(run / name, kept / name):
            changed.append(name)
    if is_finished(run):
        if weights and not (kept / MODEL).is_file():  # a finished model never changes
            slimmed = slim_model(run / MODEL, kept / MODEL)
            changed.append(MODEL + (" (without optimizer state)" if slimmed else ""))
        if (kept / CHECKPOINTS).exists():
            shutil.rmtree(kept / CHECKPOINTS)
            changed.append(f"{CHECKPOINTS}/ (finished)")
        return changed
    prefix = newest_checkpoint(run / CHECKPOINTS)
    if prefix is None:
        return changed
    target = kept / CHECKPOINTS
    for path in sorted((run / CHECKPOINTS).glob(prefix + ".*")):
        if _copy(path, target / path.name):
            changed.append(f"{CHECKPOINTS}/{path.name}")
    index = (f'model_checkpoint_path: "{prefix}"\n'
             f'all_model_checkpoint_paths: "{prefix}"\n')
    if not (target / "checkpoint").is_file() or (target / "checkpoint").read_text() != index:
        (target / ".checkpoint.tmp").write_text(index)
        os.replace(target / ".checkpoint.tmp", target / "checkpoint")
        changed.append(f"{CHECKPOINTS}/checkpoint")
    for stale in target.iterdir():
        if stale.name != "checkpoint" and not stale.name.startswith(prefix + "."):
            stale.unlink()
            changed.append(f"{CHECKPOINTS}/{stale.name} (removed)")
    return changed


def is_finished(run: Path) -> bool:
    """A run that wrote its report and its model."""
    return (run / "report.json").is_file() and (run / MODEL).is_file()


def consumed(root: Path) -> set[Path]:
    """Models below `root` that only start runs which have finished: the `init_from`
    of finished runs, unless an unfinished run starts from them too."""
    finished, needed = set(), set()
    for run in run_folders(root):
        try:
            source = json.loads((run / "config.json").read_text()).get("init_from")
        except (OSError, json.JSONDecodeError):
            continue
        if not source:
            continue
        # Sweep files name init_from relative to the campaign folder (runs/...).
        path = (root.parent.parent / source).resolve()
        (finished if is_finished(run) else needed).add(path)
    return finished - needed


def save(runs: Path, state: Path, sweeps: list[str], *, weights: bool,
         finished_only: bool = False, drop_consumed: bool = False) -> int:
    for sweep in sweeps:
        root = runs / sweep
        if not root.is_dir():
            raise SystemExit(f"campaign_state: no sweep folder '{root}'")
        spare = consumed(root) if drop_consumed else set()
        for run in run_folders(root):
            relative = run.relative_to(runs)
            if finished_only and not is_finished(run):
                print(f"skipped {relative} (unfinished)")
                continue
            only_feeds_finished = (run / MODEL).resolve() in spare
            changed = save_run(run, state / relative,
                               weights=weights and not only_feeds_finished)
            if only_feeds_finished and (state / relative / MODEL).is_file():
                (state / relative / MODEL).unlink()
                changed.append(f"{MODEL} (removed: it only starts finished runs)")
            if changed:
                print(f"saved {relative}: {', '.join(changed)}")
    return 0


def restore(runs: Path, state: Path) -> int:
    if not state.is_dir():
        return 0
    for kept in run_folders(state):
        relative = kept.relative_to(state)
        target = runs / relative
        if target.exists():
            continue
        temporary = target.with_name(f".{target.name}.tmp-restore")
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.copytree(kept, temporary)
        os.replace(temporary, target)
        status = "finished" if (kept / "report.json").is_file() else "to resume"
        print(f"restored {relative} ({status})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("save", "restore"))
    parser.add_argument("sweeps", nargs="*", help="save: sweep folders below --runs")
    parser.add_argument("--runs", type=Path, required=True, help="the campaign's runs folder")
    parser.add_argument("--state", type=Path, required=True, help="the folder in the checkout")
    parser.add_argument("--records-only", action="store_true",
                        help="save: no model.keras of finished runs")
    parser.add_argument("--finished-only", action="store_true",
                        help="save: finished runs only; unfinished ones are left as STATE has them")
    parser.add_argument("--drop-consumed", action="store_true",
                        help="save: no model.keras of a run whose model only starts runs "
                        "that have finished (a step-1 model once its step 2 is done)")
    arguments = parser.parse_intermixed_args(argv)
    if arguments.action == "save":
        if not arguments.sweeps:
            parser.error("save: name at least one sweep folder")
        return save(arguments.runs, arguments.state, arguments.sweeps,
                    weights=not arguments.records_only,
                    finished_only=arguments.finished_only,
                    drop_consumed=arguments.drop_consumed)
    if arguments.sweeps:
        parser.error("restore takes no sweep folders")
    return restore(arguments.runs, arguments.state)


if __name__ == "__main__":
    sys.exit(main())
