"""MkDocs hook: links in the notebooks resolve on the site as they do in the repository.

The notebooks live in notebooks/ and link to the documentation as
`../docs/guides/deployment.md`, the path that works where they are read in the
repository. On the site a notebook is a page among the others, so this hook rewrites
every such link to the page it names, relative to the notebook's page; a link to a
Markdown file the site does not have fails the build.
"""

from __future__ import annotations

import re

from mkdocs.utils import get_relative_url

LINK = re.compile(r'href="\.\./docs/(?P<path>[^"#]+\.md)(?P<anchor>#[^"]*)?"')


def on_page_content(html_text, page, files, **kwargs):  # noqa: D103 (MkDocs hook)
    if not page.file.src_uri.endswith(".ipynb"):
        return html_text

    def rewrite(match: re.Match) -> str:
        target = files.get_file_from_path(match.group("path"))
        if target is None:
            raise ValueError(f"{page.file.src_uri} links to ../docs/{match.group('path')}, "
                             "which is not a page of the site")
        url = get_relative_url(target.url, page.url)
        return f'href="{url}{match.group("anchor") or ""}"'

    return LINK.sub(rewrite, html_text)
