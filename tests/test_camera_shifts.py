"""The camera-shift benchmark (`benchmarks/camera_shifts.py`): its record pairs seeds,
and an interrupted or extended measurement reuses the models it already measured."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import CIFAR10_DIR, REPO

from larq_dybnn.zoo import TinyDyBNN

sys.path.insert(0, str(REPO / "benchmarks"))
import camera_shifts  # noqa: E402


def _save(folder, seed: int, *, dynamic: bool) -> None:
    model = TinyDyBNN(input_shape=(32, 32, 3), num_classes=10, width=8, blocks=1,
                      dynamic=dynamic)
    (folder / f"seed-{seed}").mkdir(parents=True)
    model.save(folder / f"seed-{seed}" / "model.keras")


@pytest.fixture
def runs(tmp_path):
    if not (CIFAR10_DIR / "cifar10-test-jpg.tar.gz").exists():
        pytest.skip("no CIFAR-10 copy")
    for seed in (0, 1):
        _save(tmp_path / "static", seed, dynamic=False)
        _save(tmp_path / "dybnn", seed, dynamic=True)
    return tmp_path


def _measure(runs, record, configs: str) -> dict:
    assert camera_shifts.main(["--runs", str(runs), "--configs", configs, "--images", "20",
                               "--data", str(CIFAR10_DIR), "--json", str(record)]) == 0
    return json.loads(record.read_text())


def test_record_pairs_seeds_and_a_later_call_reuses_measured_models(runs, tmp_path):
    record = tmp_path / "shifts.json"
    first = _measure(runs, record, "static")
    assert first["images"] == 20
    assert set(first["per_seed"]["static"]) == set(camera_shifts.SHIFTS)
    assert set(first["per_seed"]["static"]["clean"]) == {"0", "1"}
    # A model measured before is not loaded again: break its file, then add the
    # DyBNN configuration; the static figures come from the record unchanged.
    (runs / "static" / "seed-0" / "model.keras").write_bytes(b"not a model")
    second = _measure(runs, record, "static,dybnn")
    assert second["per_seed"]["static"] == first["per_seed"]["static"]
    clean = next(row for row in second["rows"] if row["shift"] == "clean")
    assert clean["dybnn - static"]["seeds"] == [0, 1]
    assert all(0.0 <= clean[c] <= 1.0 for c in ("static", "dybnn"))


def test_a_record_of_other_images_is_measured_again(runs, tmp_path):
    record = tmp_path / "shifts.json"
    _measure(runs, record, "static")
    (runs / "static" / "seed-0" / "model.keras").write_bytes(b"not a model")
    # 10 images: the record's 20 do not count, so the broken model is loaded again.
    with pytest.raises(ValueError, match="must be a zip archive"):
        camera_shifts.main(["--runs", str(runs), "--configs", "static", "--images", "10",
                            "--data", str(CIFAR10_DIR), "--json", str(record)])


def test_a_file_that_is_not_a_record_is_refused_and_left_alone(runs, tmp_path):
    other = tmp_path / "settings.json"
    other.write_text('{"mine": 1}')
    with pytest.raises(SystemExit, match="not a camera-shift record"):
        _measure(runs, other, "static")
    assert other.read_text() == '{"mine": 1}'
