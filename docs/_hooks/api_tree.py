"""MkDocs hook: lay out the package as it installs, for the API reference.

zoo/, converter/ and application/ install under `larq_dybnn` (setup.py's
`package_dir`), which mkdocstrings' static analysis cannot follow in the source tree.
Before the build this hook mirrors the installed layout with symbolic links in
build/api-tree/ (the `paths` of mkdocstrings in mkdocs.yml), read from setup.py's own
mapping, so the reference is built from the source without importing TensorFlow.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "api-tree"


def package_dirs() -> dict[str, str]:
    """setup.py's `package_dir` mapping (installed package -> source folder)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "package_dir":
            return ast.literal_eval(node.value)
    raise RuntimeError("setup.py has no package_dir")


def build_tree() -> Path:
    """Create build/api-tree/ and return it."""
    shutil.rmtree(TREE, ignore_errors=True)
    mapping = package_dirs()
    top = TREE / "larq_dybnn"
    top.mkdir(parents=True)
    for entry in (ROOT / mapping["larq_dybnn"]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for package, folder in sorted(mapping.items()):
        if package != "larq_dybnn":
            target = TREE.joinpath(*package.split("."))
            target.unlink(missing_ok=True)
            target.symlink_to(ROOT / folder, target_is_directory=True)
    return TREE


def on_startup(command: str, dirty: bool) -> None:  # noqa: ARG001 - MkDocs' signature
    build_tree()
