"""Does another commit train exactly what a recorded run trained? (cross-commit check)

Runs trained at a newer commit are paired with a campaign's runs of the same seed only
if the newer code reproduces them. This retrains a recorded run's first epoch with the
`larq-dybnn` it is given (a frozen install of the newer commit), in a scratch folder,
stops after that epoch is recorded, and compares its history row with the recorded
one, every column but the timings, digit for digit.

    python experiments/reproduce_first_epoch.py RUN --larq-dybnn INSTALL/bin/larq-dybnn \\
        --work CAMPAIGN_FOLDER --record cost/cross_commit_check.json

RUN is a finished run folder (config.json, history.csv); relative paths in its config
resolve in --work (the campaign folder). Exit status 0 when the rows are identical, 1
when they differ, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMINGS = {"train_images_per_second", "train_seconds"}
#: TrainConfig fields that do not change what is trained.
NOT_TRAINING = {"output_dir", "verbose", "export", "probe_samples", "restart", "unsafe_load"}


def _first_row(path: Path) -> dict | None:
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return None
    return rows[0] if rows else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run folder")
    parser.add_argument("--larq-dybnn", required=True, help="the install's larq-dybnn")
    parser.add_argument("--work", type=Path, default=Path.cwd(),
                        help="folder the run's relative paths resolve in")
    parser.add_argument("--record", type=Path, help="write the comparison here (JSON)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    config = json.loads((args.run / "config.json").read_text())
    expected = _first_row(args.run / "history.csv")
    if expected is None:
        parser.error(f"'{args.run}' has no recorded epoch")
    # The install's own mapping between a run record and `larq-dybnn train` flags.
    from larq_dybnn.training.config import train_arguments

    options = {k: v for k, v in config.items() if k not in NOT_TRAINING and k != "record"}
    switches = [k for k, v in options.items() if isinstance(v, bool)]
    argv_train = ["train", *train_arguments(options, switches=switches)]
    commit = subprocess.run(["git", "-C", str(Path(args.larq_dybnn).resolve().parents[2] / "src"),
                             "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="first-epoch-") as scratch:
        out = Path(scratch) / "run"
        command = [args.larq_dybnn, *argv_train, "--output-dir", str(out)]
        print("running:", " ".join(command), flush=True)
        process = subprocess.Popen(command, cwd=args.work, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        started, got = time.monotonic(), None
        while time.monotonic() - started < args.timeout:
            got = _first_row(out / "history.csv")
            if got is not None or process.poll() is not None:
                break
            time.sleep(5)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        stderr = process.communicate()[1] or ""
    if got is None:
        print(f"no epoch recorded: {stderr[-2000:]}", file=sys.stderr)
        return 2
    compared = {k: {"recorded": expected[k], "reproduced": got.get(k)}
                for k in expected if k not in TIMINGS}
    identical = all(v["recorded"] == v["reproduced"] for v in compared.values())
    record = {"run": str(args.run), "recorded_commit": None, "reproducing_commit": commit,
              "columns": compared, "identical": identical,
              "command": " ".join(argv_train)}
    provenance = args.run / "provenance.json"
    if provenance.exists():
        sessions = json.loads(provenance.read_text()).get("sessions", [{}])
        record["recorded_commit"] = sessions[0].get("commit")
    print(json.dumps(record, indent=2))
    if args.record:
        temporary = args.record.with_name(f".{args.record.name}.tmp")
        temporary.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(temporary, args.record)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
