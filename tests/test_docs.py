"""The documentation: the site builds strictly (a broken link, a page left out of the
navigation or a docstring the API reference cannot read fails), every link of the
built site resolves (notebooks included), math reaches the HTML as MathML and not as
raw TeX, the README stays a front page, and its example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# Text a reader sees (code blocks, scripts and styles left out), and raw TeX in it.
CODE = re.compile(r"<(pre|code|script|style)\b.*?</\1>", re.S)
RAW_TEX = re.compile(r"\\[\[\]()]|\\operatorname|\$\$")


def broken_links(site: Path) -> list[str]:
    """Relative links and sources of the built pages that name no file of the site.

    404.html is left out: it links from the site's root, wherever it is served.
    """
    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html":
            continue
        for reference in re.findall(r'(?:href|src)="([^"]+)"', page.read_text()):
            parts = urlsplit(unescape(reference))
            if parts.scheme or parts.netloc or not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not (target / "index.html" if target.is_dir() else target).is_file():
                broken.append(f"{page.relative_to(site)} -> {reference}")
    return broken


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
    assert broken_links(site) == []
    # The docstrings' formulas are MathML, drawn by the browser with no script.
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in (
        site / "reference/layers/index.html").read_text()
    for page in site.rglob("*.html"):
        prose = CODE.sub("", page.read_text())
        assert not RAW_TEX.search(prose), f"raw TeX in {page.relative_to(site)}"


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
    # Parity on random inputs says what it hides.
    assert "int8 rounding" in done.stdout and "on random inputs" in done.stdout
    assert (tmp_path / "dybnn.tflite").stat().st_size > 100_000


def _readme_commands() -> list[list[str]]:
    """The `larq-dybnn ...` commands of the README's prose, as argument lists."""
    import shlex

    spans = re.findall(r"`(larq-dybnn [^`]+)`", README)
    return [shlex.split(" ".join(span.split()))[1:] for span in spans]


def test_the_readme_commands_are_valid_and_convert_runs_as_written(tmp_path):
    """Every README command parses with the real CLI (a renamed option fails here); the
    convert command runs as written on the shipped DyBNN, with the project's CIFAR-10
    copy standing in for TensorFlow Datasets' (no network here)."""
    from conftest import CIFAR10_DIR, _require
    from larq_dybnn_cli import build_parser

    commands = _readme_commands()
    assert {c[0] for c in commands} >= {"train", "convert", "--help"}, commands
    parser = build_parser()
    for argv in commands:
        if argv != ["--help"]:
            parser.parse_args(argv)  # SystemExit (a usage error) fails the test
    data = _require(CIFAR10_DIR)
    convert = next(c for c in commands if c[0] == "convert")
    model = tmp_path / "runs/dybnn/model.keras"
    model.parent.mkdir(parents=True)
    subprocess.run([sys.executable, "-c", "import larq_dybnn; from larq_dybnn.zoo import "
                    "DyBNNReActNet18; DyBNNReActNet18(input_shape=(32, 32, 3), stem='cifar', "
                    "width_multiplier=0.25, weights='cifar10').save('runs/dybnn/model.keras')"],
                   cwd=tmp_path, check=True, timeout=300,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    argv = [str(model) if a.startswith("runs/") else str(data) if a == "cifar10" else a
            for a in convert]
    done = subprocess.run([sys.executable, "-m", "larq_dybnn_cli", *argv, "--samples", "50"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert "16 LceBconv2d / 16 binary QuantConv2D" in done.stdout
    assert "50 images" in done.stdout and (tmp_path / "model.tflite").is_file()
