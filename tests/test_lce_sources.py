"""`larq-dybnn lce-sources`: LCE's kernel sources assembled from pinned upstream
commits and checked against the committed manifest. Machines here cannot download:
the test lays out an offline mirror in the upstream layout from the shared folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from larq_dybnn.device.sources import (MANIFEST, check_sources, fetch_sources,
                                       read_manifest, write_mirror)
from larq_dybnn_cli import main

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "third_party" / "lce-0.16.0-kernels"


def _shared_sums() -> dict[str, str]:
    return {name.removeprefix("./"): digest for digest, name in (
        line.split(None, 1) for line in (SHARED / "SHA256SUMS").read_text().splitlines())}


def test_the_manifest_pins_every_file_of_the_reference_folder():
    files = read_manifest()
    assert {f.path: f.sha256 for f in files} == _shared_sums()
    for source in files:
        assert len(source.commit) == 40 or source.repository.startswith("debian/"), source
    assert {f.repository for f in files} == {
        "larq/compute-engine", "google/ruy", "google/flatbuffers", "google-ai-edge/LiteRT",
        "google/gemmlowp", "debian/gemmlowp"}
    lce = next(f for f in files if f.path.endswith("bconv2d.cc"))
    assert lce.url(None) == ("https://raw.githubusercontent.com/larq/compute-engine/"
                             f"{lce.commit}/larq_compute_engine/tflite/kernels/bconv2d.cc")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    return write_mirror(SHARED, tmp_path_factory.mktemp("mirror"))


def test_the_command_assembles_the_reference_folder_from_a_mirror(mirror, tmp_path, capsys):
    target = tmp_path / "lce"
    assert main(["lce-sources", str(target), "--mirror", str(mirror)]) == 0
    assert check_sources(target) == []
    written = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert written - {".lce-sources-complete"} == set(_shared_sums())
    for name in _shared_sums():
        assert (target / name).read_bytes() == (SHARED / name).read_bytes(), name
    assert "154 files checked" in capsys.readouterr().out
    # Resumes: a second run fetches nothing, a deleted file is fetched again.
    (target / "ruy" / "ruy.h").unlink()
    assert main(["lce-sources", str(target), "--mirror", f"file://{mirror}"]) == 0
    assert "(1 fetched)" in capsys.readouterr().out


def test_a_file_with_other_bytes_is_refused_and_not_written(mirror, tmp_path, capsys):
    files = read_manifest()
    victim = next(f for f in files if f.path.endswith("bgemm_kernels_arm.h")
                  or f.path.endswith("bconv2d.cc"))
    tampered = tmp_path / "mirror"
    import shutil

    shutil.copytree(mirror, tampered)
    path = tampered / victim.repository / victim.commit / victim.upstream_path
    path.write_bytes(path.read_bytes() + b"\n// injected\n")
    target = tmp_path / "lce"
    assert main(["lce-sources", str(target), "--mirror", str(tampered)]) == 2
    assert f"not the manifest's {victim.sha256} for {victim.path}" in capsys.readouterr().err
    assert not (target / victim.path).exists()
    assert not (target / ".lce-sources-complete").exists()


def test_a_manifest_path_leaving_the_folder_is_refused(tmp_path):
    manifest = json.loads(MANIFEST.read_text())
    manifest["files"][0]["path"] = "../../etc/evil"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="is not a plain relative path"):
        fetch_sources(tmp_path / "out", manifest=bad, mirror=str(tmp_path))
