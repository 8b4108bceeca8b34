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
