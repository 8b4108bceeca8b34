"""Experiment campaigns: what `larq-dybnn sweep` runs.

    runner       the TOML sweep file, and training a grid of configurations x seeds
                 with the real `larq-dybnn train` (resumable, with provenance)
    evaluation   a finished run on the test split in Keras and in the LCE interpreter
    results      aggregation into results.csv / results.md / results.png
"""

from larq_dybnn.sweep.evaluation import evaluate_run, lce_logits
from larq_dybnn.sweep.results import collect, copy_records, summarize, write_results
from larq_dybnn.sweep.runner import (
    RunSpec,
    SweepSpec,
    load_spec,
    run_state,
    run_sweep,
    train_command,
)

__all__ = [
    "RunSpec", "SweepSpec", "load_spec", "run_sweep", "run_state", "train_command",
    "evaluate_run", "lce_logits", "collect", "summarize", "write_results", "copy_records",
]
