"""MkDocs hook: render the site's math as MathML when the site is built.

`pymdownx.arithmatex` (generic mode, mkdocs.yml) marks `\\(...\\)` and `\\[...\\]` in
pages and docstrings; this hook replaces each marked formula with the MathML that
`latex2mathml` makes of it. Browsers draw MathML natively, so the formulas render
with no script and no network when the page is read, and a formula latex2mathml
cannot read fails the build, naming the page.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

# arithmatex's generic output: <span class="arithmatex">\(...\)</span> inline,
# <div class="arithmatex">\[...\]</div> for a displayed formula.
MARKED = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*\\(?P<open>[(\[])(?P<tex>.*?)\\[)\]]\s*</(?P=tag)>',
    re.S)


def render(text: str, *, where: str) -> str:
    """`text` (HTML) with every arithmatex formula replaced by MathML."""

    def mathml(match: re.Match) -> str:
        tex = html.unescape(match.group("tex")).strip()
        display = "block" if match.group("open") == "[" else "inline"
        try:
            return convert(tex, display=display)
        except Exception as error:  # latex2mathml raises several types for bad input
            raise ValueError(f"{where}: cannot render the formula {tex!r}: {error}") from error

    return MARKED.sub(mathml, text)


def on_page_content(html_text, page, **kwargs):  # noqa: D103 (MkDocs hook)
    return render(html_text, where=page.file.src_uri)
