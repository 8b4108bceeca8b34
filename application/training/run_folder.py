"""A training run's folder: the one place its file names, its lock, `--restart` and its
recorded options (with their format version and migration) are defined.

    checkpoints/        epoch checkpoints (resume: run again with the same folder)
    logs/               TensorBoard logs
    plots/              training_curves.png and thresholds.png
    config.json         the run's record: its options, marked, with a format version
    history.csv         one row per epoch
    model.keras         the final model
    model.tflite        with `export=True`: the verified LCE flatbuffer
    report.json         configuration, final metrics, conversion figures

A sweep adds, before and after the run: provenance.json, train.log,
evaluation.json and model_int8.tflite. Another worker of a multi-worker run keeps
its own folder under `workers/worker-<id>/`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from larq_dybnn._io import TEMPORARY_MARK, atomic_write_bytes, remove_stale_temporaries
from larq_dybnn.training.locks import LOCK_NAME, FolderLock, lock_folder

__all__ = ["RunFolder", "FORMAT", "RECORD_KEY", "RECORD_MARK", "is_run_record", "migrate"]

#: The key and value that mark a config.json as this package's run record.
RECORD_KEY, RECORD_MARK = "record", "larq-dybnn training run"
#: The record's format version, and the key it is written under. Version 1: records
#: written before the key existed (with or without the mark).
FORMAT_KEY, FORMAT = "format", 2
#: Records written before the mark existed hold every one of these options.
_LEGACY_RECORD_KEYS = frozenset({
    "model", "data", "train_split", "eval_split", "epochs", "batch_size",
    "learning_rate", "seed", "width_multiplier", "dynamic", "reduction", "teacher",
    "init_from", "step", "weight_decay", "label_smoothing", "image_size", "preprocess"})
#: The reduction zoo DyBNN models (`ModelSpec.records_reduction`) were built with when
#: `reduction` was unset, before the zoo's default became 64: such runs record None.
_FORMER_DEFAULT_REDUCTION = 16
_FORMER_INIT_SCHEME = "global"


def _records_reduction(model: object) -> bool:
    from larq_dybnn.zoo import CATALOG

    return model in CATALOG and CATALOG[model].records_reduction


def is_run_record(recorded: object, *, options: Iterable[str]) -> bool:
    """Whether `recorded` (a parsed config.json) is a training run's record: marked as
    one, or (written before the mark) holding every option such a record had and
    nothing but `options`, the names of the current options."""
    if not isinstance(recorded, dict):
        return False
    if recorded.get(RECORD_KEY) == RECORD_MARK:
        return True
    return _LEGACY_RECORD_KEYS <= recorded.keys() <= set(options)


def migrate(recorded: dict) -> dict:
    """A record in the current format: the options as the run was built.

    Version 1 records lack the options added after them, and their runs were built
    with those options' former behaviour: the reduction of a zoo DyBNN model (16),
    global initialization, no dynamize, hyper-function learning-rate multiplier 1
    and global pooling.
    """
    recorded = dict(recorded)
    if recorded.get(FORMAT_KEY, 1) < 2:
        if recorded.get("reduction") is None and _records_reduction(recorded.get("model")):
            recorded["reduction"] = _FORMER_DEFAULT_REDUCTION
        recorded["init_scheme"] = recorded.get("init_scheme") or _FORMER_INIT_SCHEME
        recorded.setdefault("dynamize", False)
        recorded.setdefault("hyper_lr_multiplier", 1.0)
        recorded.setdefault("hyper_pool_stride", 1)
        recorded[FORMAT_KEY] = FORMAT
    return recorded


@dataclass(frozen=True)
class RunFolder:
    """A training run's folder and the names of what it holds.

    Attributes:
        path: the folder.
    """

    path: Path

    CONFIG = "config.json"
    HISTORY = "history.csv"
    REPORT = "report.json"
    MODEL = "model.keras"
    TFLITE = "model.tflite"
    CHECKPOINTS = "checkpoints"
    LOGS = "logs"
    PLOTS = "plots"
    WORKERS = "workers"
    # What a sweep writes in a run's folder.
    PROVENANCE = "provenance.json"
    TRAIN_LOG = "train.log"
    EVALUATION = "evaluation.json"
    MODEL_INT8 = "model_int8.tflite"

    #: What a run writes (`--restart` deletes only these: folders, then files).
    RUN_FOLDERS = (CHECKPOINTS, LOGS, PLOTS)
    RUN_FILES = (HISTORY, CONFIG, REPORT, MODEL, TFLITE)
    #: What a sweep writes there before the run starts.
    SWEEP_FILES = (PROVENANCE, TRAIN_LOG, EVALUATION, MODEL_INT8, LOCK_NAME)
    #: The small records a finished run is summarized from (copied with results).
    RECORDS = (CONFIG, REPORT, EVALUATION, PROVENANCE, HISTORY)

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def tflite(self) -> Path:
        return self.path / self.TFLITE

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def logs(self) -> Path:
        return self.path / self.LOGS

    @property
    def plots(self) -> Path:
        return self.path / self.PLOTS

    @property
    def evaluation(self) -> Path:
        return self.path / self.EVALUATION

    @property
    def provenance(self) -> Path:
        return self.path / self.PROVENANCE

    @property
    def train_log(self) -> Path:
        return self.path / self.TRAIN_LOG

    @property
    def model_int8(self) -> Path:
        return self.path / self.MODEL_INT8

    def worker(self, task_id: int) -> "RunFolder":
        """The folder of another worker of a multi-worker run."""
        return RunFolder(self.path / self.WORKERS / f"worker-{task_id}")

    @property
    def started(self) -> bool:
        """Whether a run has trained here (it has checkpoints to resume from)."""
        return self.checkpoints.exists()

    def check_usable(self, *, options: Iterable[str]) -> None:
        """Refuse a folder that holds something other than a run of this package: a
        run would write (and --restart delete) files a user owns. A folder holds a
        run when its config.json is a run's record (written before anything else);
        without one it may hold only what a sweep (or another worker of the same
        run) writes before the run.

        Arguments:
            options: the names of the current training options (legacy records).

        Raises:
            ValueError: naming the folder and what is in the way.
        """
        out = self.path
        if not out.exists():
            return
        if not out.is_dir():
            raise ValueError(f"`output_dir` '{out}' is a file, not a folder.")
        if self.config.exists():
            try:
                recorded = json.loads(self.config.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ValueError(f"'{self.config}' is not a readable run record "
                                 f"({type(error).__name__}: {error}); move it away or use "
                                 "another output folder.") from None
            if is_run_record(recorded, options=options):
                return  # a run's folder; --restart deletes only a run's own files
            raise ValueError(f"'{self.config}' is not the record of a training run; use "
                             "another output folder.")
        foreign = sorted(p.name for p in out.iterdir()
                         if p.name not in self.SWEEP_FILES + (self.WORKERS,)
                         and TEMPORARY_MARK not in p.name)
        if foreign:
            listed = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise ValueError(
                f"`output_dir` '{out}' is not empty and holds no training run ({listed}); "
                "use an empty or new folder, or the folder of an earlier run.")

    def open(self, *, options: Iterable[str]) -> FolderLock:
        """Check the folder, create it, lock it for this process and remove the
        temporaries a killed run left. Returns the lock (close it, or use `with`).

        Raises:
            ValueError: as `check_usable`, or if another process holds the folder.
        """
        self.check_usable(options=options)
        self.path.mkdir(parents=True, exist_ok=True)
        lock = lock_folder(self.path, what="training run")
        remove_stale_temporaries(self.path)
        return lock

    def clear(self, *, keep: Sequence[str | os.PathLike] = ()) -> None:
        """Delete the run's own files for --restart, never a file in `keep` (the
        files the run reads: --init-from, --teacher).

        Raises:
            ValueError: if a file to delete is, or holds, one in `keep`.
        """
        inputs = [Path(p) for p in keep if p]
        for name in (*self.RUN_FOLDERS, *self.RUN_FILES):
            target = self.path / name
            for source in inputs:
                if target.exists() and source.exists() and (
                        os.path.samefile(target, source) or source.resolve().is_relative_to(
                            target.resolve())):
                    raise ValueError(
                        f"--restart would delete '{target}', which the run reads as "
                        f"'{source}' (--init-from / --teacher); copy it elsewhere first.")
        for name in self.RUN_FOLDERS:
            shutil.rmtree(self.path / name, ignore_errors=True)
        for name in self.RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def read_record(self) -> dict | None:
        """The recorded options of the run that trained here, migrated to the
        current format; None before a run has trained here."""
        if not (self.config.exists() and self.started):
            return None
        return migrate(json.loads(self.config.read_text()))

    def write_record(self, options: dict) -> None:
        """Record a new run's options, marked, in the current format (atomically)."""
        record = {**options, RECORD_KEY: RECORD_MARK, FORMAT_KEY: FORMAT}
        atomic_write_bytes(self.config, json.dumps(record, indent=2).encode())

