"""Aggregate the runs of a sweep into a CSV, a markdown table and a plot.

Everything is regenerated from the run directories alone (`config.json`,
`report.json`, `evaluation.json`, `provenance.json`, `history.csv` of each
`<config>/seed-<seed>/`), so results can be rebuilt wherever the runs are.

The markdown table gives, per configuration, the mean, standard deviation and count
over seeds of the validation accuracy (the split choices are made on) and of the test
accuracy in Keras and in the LCE interpreter, and the difference of the means to the
baseline configuration with its standard error, `sqrt(s_a^2 / n_a + s_b^2 / n_b)`.
A second table pairs runs by seed: for each configuration, the per-seed differences
to the baseline run of the same seed (twins start from the same shared weights and
see the same batches), their mean and its standard error `s_d / sqrt(n)`.
Runs of different protocols (data, splits, epochs, batch, optimizer, schedule,
augmentation, loss, width) are never put in one table: that is an error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import statistics
from pathlib import Path
from typing import Sequence

from larq_dybnn._io import atomic_write_bytes
from larq_dybnn.training.run_folder import RunFolder

__all__ = [
    "collect", "PROTOCOL", "summarize", "markdown_table", "write_results", "copy_records",
    "RECORDS", "paired", "paired_table", "read_record",
]

#: The small files of a run that results are computed from (no weights, no logs).
RECORDS = RunFolder.RECORDS

#: TrainConfig options that define a protocol: every run of one table shares them.
PROTOCOL = (
    "data", "train_split", "eval_split", "epochs", "batch_size", "learning_rate", "step",
    "weight_decay", "init_from", "teacher", "label_smoothing", "width_multiplier",
    "image_size", "preprocess", "strategy", "init_scheme",
)

#: Columns of results.csv.
COLUMNS = (
    "config", "seed", "model", "dynamic", "reduction", "val_accuracy", "test_accuracy",
    "lce_accuracy", "lce_int8_accuracy", "lce_agreement", "lce_int8_agreement",
    "tflite_bytes", "tflite_int8_bytes", "threshold_spread", "train_seconds", "commit",
    "dirty", "int8_form", "evaluation_commit", *(f"protocol_{k}" for k in PROTOCOL),
)


def _protocol_value(key: str, value: object) -> object:
    """A protocol option as compared across runs: a path into the sweep's own runs
    (`.../<config>/seed-<n>/model.keras`) counts as the same for every run, since
    twins start from their own configuration's earlier step."""
    if key in ("init_from", "teacher") and isinstance(value, str):
        return re.sub(r"[^/]+/seed-\d+/(model\.keras)$", r"<run>/\1", value.replace("\\", "/"))
    if key == "init_scheme" and value is None:
        return "global"  # runs recorded before the option existed
    return value


def read_record(path: Path) -> dict:
    """A run's JSON record file as a dict ({} when absent).

    Raises:
        ValueError: naming the file, when it is not a JSON object.
    """
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"'{path}' is not readable JSON ({type(error).__name__}: "
                         f"{error}); repair or delete it.") from None
    if not isinstance(record, dict):
        raise ValueError(f"'{path}' does not hold a JSON object.")
    return record


def collect(output_dir: str | os.PathLike) -> list[dict]:
    """One row per evaluated run below `output_dir` (folders `<config>/seed-<seed>`)."""
    rows = []
    for evaluation_path in sorted(Path(output_dir).glob(f"*/seed-*/{RunFolder.EVALUATION}")):
        folder = RunFolder(evaluation_path.parent)
        config = read_record(folder.config)
        report = read_record(folder.report)
        evaluation = read_record(evaluation_path)
        sessions = read_record(folder.provenance).get("sessions", [{}])
        history = report.get("history", {})
        spread = report.get("threshold_spread") or {}
        row = {
            "config": folder.path.parent.name, "seed": config.get("seed"),
            "model": config.get("model"),
            "dynamic": config.get("dynamic") if _is_dynamic(config) else "none",
            "reduction": config.get("reduction"),
            "val_accuracy": report.get("evaluation", {}).get("accuracy"),
            **{k: evaluation.get(k) for k in (
                "test_accuracy", "lce_accuracy", "lce_int8_accuracy", "lce_agreement",
                "lce_int8_agreement", "tflite_bytes", "tflite_int8_bytes")},
            "threshold_spread": statistics.fmean(spread.values()) if spread else None,
            "train_seconds": sum(history.get("train_seconds", [])) or None,
            "commit": sessions[-1].get("commit"), "dirty": sessions[-1].get("dirty"),
            # Evaluations made before `evaluated_with` existed used hybrid int8 FC ops.
            "int8_form": evaluation.get("evaluated_with", {}).get("int8_hyper_weights",
                                                                  "hybrid"),
            "evaluation_commit": evaluation.get("evaluated_with", {}).get("commit"),
            **{f"protocol_{k}": _protocol_value(k, config.get(k)) for k in PROTOCOL},
        }
        rows.append(row)
    return rows


def _is_dynamic(config: dict) -> bool:
    from larq_dybnn.zoo import CATALOG

    model = str(config.get("model"))  # records may name models this version lacks
    return bool(config.get("dynamize")) or (model in CATALOG and CATALOG[model].dynamic)


def paired(rows: Sequence[dict], *, baseline: str, configs: Sequence[str] | None = None,
           metrics: Sequence[str] = ("val_accuracy", "test_accuracy", "lce_int8_accuracy"),
           ) -> list[dict]:
    """Per configuration, the differences to the baseline run of the same seed.

    Returns:
        One entry per non-baseline configuration with seeds shared with the baseline:
        `config`, `seeds`, and per metric `{metric: (mean, se, [per-seed diffs])}`,
        `se = stdev / sqrt(n)` (NaN for one seed).
    """
    names = list(configs or dict.fromkeys(r["config"] for r in rows))
    base = {r["seed"]: r for r in rows if r["config"] == baseline}
    result = []
    for name in names:
        if name == baseline:
            continue
        group = {r["seed"]: r for r in rows if r["config"] == name and r["seed"] in base}
        if not group:
            continue
        seeds = sorted(group)
        entry = {"config": name, "seeds": seeds}
        for metric in metrics:
            diffs = [group[s][metric] - base[s][metric] for s in seeds
                     if group[s].get(metric) is not None and base[s].get(metric) is not None]
            se = (statistics.stdev(diffs) / math.sqrt(len(diffs))
                  if len(diffs) > 1 else math.nan)
            entry[metric] = (statistics.fmean(diffs) if diffs else math.nan, se, diffs)
        result.append(entry)
    return result


def paired_table(entries: Sequence[dict], *, baseline: str) -> str:
    """`paired` as a markdown table (points, mean ± SE, then each seed's difference)."""
    header = (f"| configuration − {baseline}, same seed | seeds | Δ val ± SE | Δ test ± SE "
              "| Δ LCE int8 test ± SE | per-seed Δ test |\n|---|---|---|---|---|---|\n")
    lines = []
    for e in entries:
        cells = []
        for metric in ("val_accuracy", "test_accuracy", "lce_int8_accuracy"):
            mean, se, _ = e[metric]
            cells.append(_delta((mean, se)) if not math.isnan(mean) else "-")
        per_seed = ", ".join(f"{100 * d:+.2f}" for d in e["test_accuracy"][2])
        lines.append(f"| {e['config']} | {', '.join(map(str, e['seeds']))} | "
                     + " | ".join(cells) + f" | {per_seed} |")
    return header + "\n".join(lines) + "\n"


def _check_one_protocol(rows: Sequence[dict]) -> None:
    keys = [f"protocol_{k}" for k in PROTOCOL]
    protocols = {tuple(str(row[k]) for k in keys) for row in rows}
    if len(protocols) > 1:
        differing = [k[len("protocol_"):] for k in keys if len({str(r[k]) for r in rows}) > 1]
        raise ValueError(
            "The runs do not share one protocol (they differ in "
            + ", ".join(differing) + "); put runs of different protocols in different "
            "sweep folders."
        )
    forms = sorted({str(row.get("int8_form")) for row in rows})
    if len(forms) > 1:
        raise ValueError(
            f"The runs' int8 files were evaluated in different forms ({', '.join(forms)}); "
            "evaluate them again with the same version (`larq-dybnn sweep ... "
            "--skip-training --reevaluate`)."
        )


def _stats(values: list[float]) -> tuple[float, float, int]:
    values = [v for v in values if v is not None]
    if not values:
        return math.nan, math.nan, 0
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std, len(values)


def summarize(rows: Sequence[dict], *, baseline: str, configs: Sequence[str] | None = None
              ) -> list[dict]:
    """Per configuration: mean/std/count of each accuracy, difference to `baseline`.

    Raises:
        ValueError: if the rows are of more than one protocol.
    """
    _check_one_protocol(rows)
    names = list(configs or dict.fromkeys(r["config"] for r in rows))
    by_config = {n: [r for r in rows if r["config"] == n] for n in names}
    metrics = ("val_accuracy", "test_accuracy", "lce_accuracy", "lce_int8_accuracy")
    summary = []
    base = by_config.get(baseline, [])
    for name in names:
        group = by_config[name]
        if not group:
            continue
        entry = {"config": name, "runs": len(group), "seeds": sorted(r["seed"] for r in group)}
        for metric in metrics:
            mean, std, count = _stats([r[metric] for r in group])
            entry[metric] = (mean, std, count)
            b_mean, b_std, b_count = _stats([r[metric] for r in base])
            if name != baseline and count and b_count:
                se = math.sqrt((0 if math.isnan(std) else std) ** 2 / count
                               + (0 if math.isnan(b_std) else b_std) ** 2 / b_count)
                se = se if count > 1 and b_count > 1 else math.nan
                entry[f"{metric}_delta"] = (mean - b_mean, se)
        entry["min_agreement"] = min(r["lce_agreement"] for r in group)
        entry["min_int8_agreement"] = min(r["lce_int8_agreement"] for r in group)
        entry["tflite_kib"] = statistics.fmean(r["tflite_bytes"] for r in group) / 1024
        entry["tflite_int8_kib"] = statistics.fmean(r["tflite_int8_bytes"] for r in group) / 1024
        spreads = [r["threshold_spread"] for r in group if r["threshold_spread"] is not None]
        entry["threshold_spread"] = statistics.fmean(spreads) if spreads else None
        summary.append(entry)
    return summary


def _pct(stat: tuple[float, float, int]) -> str:
    mean, std, _ = stat
    if math.isnan(mean):
        return "-"
    return f"{100 * mean:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}")


def _delta(value: tuple[float, float] | None) -> str:
    if value is None:
        return "(baseline)"
    delta, se = value
    text = f"{100 * delta:+.2f}"
    if not math.isnan(se):
        text += f" ± {100 * se:.2f}" + (f" ({abs(delta) / se:.1f} SE)" if se > 0 else "")
    return text


def markdown_table(summary: Sequence[dict], *, baseline: str) -> str:
    """The summary as a markdown table (accuracies in %, mean ± std over seeds)."""
    header = (
        "| configuration | runs | val top-1 | test top-1 (Keras) | Δ test vs "
        f"{baseline} ± SE | Δ val ± SE | LCE top-1 | LCE int8 top-1 | Keras/LCE agreement "
        "(min) | .tflite KiB (int8) | threshold spread |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for e in summary:
        spread = "-" if e["threshold_spread"] is None else f"{e['threshold_spread']:.3f}"
        lines.append(
            f"| {e['config']} | {e['runs']} | {_pct(e['val_accuracy'])} | "
            f"{_pct(e['test_accuracy'])} | {_delta(e.get('test_accuracy_delta'))} | "
            f"{_delta(e.get('val_accuracy_delta'))} | {_pct(e['lce_accuracy'])} | "
            f"{_pct(e['lce_int8_accuracy'])} | {100 * e['min_agreement']:.2f}% | "
            f"{e['tflite_kib']:,.0f} ({e['tflite_int8_kib']:,.0f}) | {spread} |"
        )
    return header + "\n".join(lines) + "\n"


def _plot(rows: Sequence[dict], summary: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [e["config"] for e in summary]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, name in enumerate(names):
        accs = [100 * r["test_accuracy"] for r in rows if r["config"] == name]
        left.scatter([i] * len(accs), accs, color=f"C{i}", zorder=3)
        left.hlines(statistics.fmean(accs), i - 0.25, i + 0.25, color=f"C{i}")
        group = [r for r in rows if r["config"] == name]
        right.scatter([r["tflite_bytes"] / 1024 for r in group],
                      [100 * r["lce_accuracy"] for r in group], color=f"C{i}", marker="o",
                      label=f"{name} (float32)")
        right.scatter([r["tflite_int8_bytes"] / 1024 for r in group],
                      [100 * r["lce_int8_accuracy"] for r in group], color=f"C{i}",
                      marker="x", label=f"{name} (int8 hyper weights)")
    left.set_xticks(range(len(names)), names, rotation=20, ha="right")
    left.set_ylabel("test top-1 (%), Keras")
    left.set_title("Per seed (points) and mean (bar)")
    left.grid(axis="y", alpha=0.3)
    right.set_xlabel(".tflite size (KiB)")
    right.set_ylabel("test top-1 (%), LCE interpreter")
    right.set_title("Accuracy against file size")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def _without_local_paths(data: bytes) -> bytes:
    """Provenance without where the package was installed on the training machine."""
    record = json.loads(data)
    if isinstance(record.get("sweep_file"), str):
        record["sweep_file"] = Path(record["sweep_file"]).name  # not the machine's path
    for session in record.get("sessions", []):
        session.pop("package_path", None)
    return json.dumps(record, indent=2).encode()


def copy_records(output_dir: str | os.PathLike, destination: str | os.PathLike) -> int:
    """Copy each evaluated run's `RECORDS` to `destination/<config>/seed-<seed>/`.

    The copies are enough to regenerate the results (`write_results(destination)`)
    without checkpoints or models, so they can be committed beside the results.

    Returns:
        How many runs were copied.
    """
    count = 0
    for evaluation in sorted(Path(output_dir).glob("*/seed-*/evaluation.json")):
        folder = evaluation.parent
        target = Path(destination) / folder.parent.name / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for name in RECORDS:
            if (folder / name).is_file():
                data = (folder / name).read_bytes()
                if name == RunFolder.PROVENANCE:
                    data = _without_local_paths(data)
                atomic_write_bytes(target / name, data)
        count += 1
    return count


def write_results(
    output_dir: str | os.PathLike,
    *,
    baseline: str,
    configs: Sequence[str] | None = None,
    destination: str | os.PathLike | None = None,
) -> list[Path]:
    """Write results.csv, results.md and results.png for the runs below `output_dir`.

    Arguments:
        output_dir: the sweep's folder.
        baseline: the configuration the others are compared with.
        configs: configuration order in the table (default: as found).
        destination: folder to write to (default `output_dir`).

    Returns:
        The files written (none if no run is evaluated yet).

    Raises:
        ValueError: if the runs are of more than one protocol.
    """
    rows = collect(output_dir)
    if not rows:
        return []
    destination = Path(destination or output_dir)
    destination.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows, baseline=baseline, configs=configs)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    written = [atomic_write_bytes(destination / "results.csv", buffer.getvalue().encode())]
    protocol = {k: rows[0][f"protocol_{k}"] for k in PROTOCOL}
    commits = sorted({str(r["commit"]) for r in rows})
    evaluated = sorted({str(r["evaluation_commit"]) for r in rows if r.get("evaluation_commit")})
    pairs = paired(rows, baseline=baseline, configs=configs)
    text = (
        markdown_table(summary, baseline=baseline)
        + "\nAccuracies in %, mean ± standard deviation over seeds; Δ is the difference "
        "of the means to the baseline with its standard error. Choices are made on "
        "the validation split (`eval_split`); the test split is evaluated once per run.\n\n"
        + (("Paired by seed (points; mean of the per-seed differences ± its standard "
            "error):\n\n" + paired_table(pairs, baseline=baseline) + "\n") if pairs else "")
        + "Protocol: " + ", ".join(f"{k}={v}" for k, v in protocol.items() if v is not None)
        + f"\n\nCommits: {', '.join(commits)}\n"
        + (f"\nEvaluated with: {', '.join(evaluated)} (int8 files: "
           f"{rows[0]['int8_form']} form)\n" if evaluated else "")
    )
    written.append(atomic_write_bytes(destination / "results.md", text.encode()))
    _plot(rows, summary, destination / "results.png")
    written.append(destination / "results.png")
    return written
