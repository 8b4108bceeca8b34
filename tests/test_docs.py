"""The documentation: the site builds strictly (a broken link, a page left out of the
navigation or a docstring the API reference cannot read fails), the README stays a
front page, and its example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_the_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, done.stderr[-4000:]
    site = tmp_path / "site"
    for page in ("index.html", "guides/zoo/index.html", "notebooks/zoo/index.html",
                 "reference/converter/index.html"):
        assert (site / page).is_file(), page
    # The API reference holds the documented objects, the notebooks their outputs.
    reference = (site / "reference/converter/index.html").read_text()
    assert "export_and_verify" in reference and "Conversion" in reference
    assert "jp-OutputArea" in (site / "notebooks/zoo/index.html").read_text()


def test_the_readme_is_a_front_page():
    assert len(README.encode()) < 10_000
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert any(line.startswith("make test") for line in first_block.splitlines())
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (REPO / target).is_file(), f"README links to a missing file: {target}"


def test_the_readme_example_runs(tmp_path):
    example = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert "LceBconv2d" in done.stdout
    assert (tmp_path / "dybnn.tflite").stat().st_size > 100_000
