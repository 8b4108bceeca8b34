"""Assemble LCE 0.16.0's kernel sources from their upstream repositories, checked.

LCE publishes no aarch64 Python package, so the device runtime compiles LCE's kernels
itself. `fetch_sources` downloads each file the manifest (`runtime/lce-sources.json`,
installed with the package) lists from its upstream repository at the pinned commit,
checks its SHA256, and writes it into a folder of the layout LCE's includes expect. No
third-party source is committed into this project.

Where files are read from:
- by default, GitHub's raw files (`https://raw.githubusercontent.com/OWNER/REPO/COMMIT/PATH`)
  and, for Debian's copyright file of gemmlowp, sources.debian.org;
- with `mirror`, a folder or URL holding the same files as `MIRROR/OWNER/REPO/COMMIT/PATH`
  (an offline copy; `write_mirror` lays one out from an assembled folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from larq_dybnn._io import atomic_write_bytes

__all__ = ["MANIFEST", "SourceFile", "read_manifest", "fetch_sources", "write_mirror",
           "check_sources"]

#: The manifest installed with the package.
MANIFEST = Path(__file__).with_name("lce-sources.json")
#: Largest file the manifest may name (schema_generated.h is about 1.3 MB).
MAX_FILE_BYTES = 16 * 2**20
_GITHUB = "https://raw.githubusercontent.com"
_DEBIAN = "https://sources.debian.org/data/main"
#: Marks a complete, checked folder (the manifest's own SHA256 inside).
COMPLETE = ".lce-sources-complete"


@dataclass(frozen=True)
class SourceFile:
    """One file of the source folder.

    Attributes:
        repository: "owner/name" on GitHub, or "debian/PACKAGE" for a Debian source file.
        commit: the pinned commit (a Debian package version for Debian files).
        upstream_path: the file's path in that repository.
        path: its path in the assembled folder.
        sha256: the expected digest.
    """

    repository: str
    commit: str
    upstream_path: str
    path: str
    sha256: str

    def url(self, mirror: str | None) -> str:
        """Where to read it: `mirror` in the upstream layout, else its upstream."""
        if mirror is not None:
            return f"{mirror.rstrip('/')}/{self.repository}/{self.commit}/{self.upstream_path}"
        if self.repository.startswith("debian/"):
            package = self.repository.split("/", 1)[1]
            return f"{_DEBIAN}/{package[0]}/{package}/{self.commit}/{self.upstream_path}"
        return f"{_GITHUB}/{self.repository}/{self.commit}/{self.upstream_path}"


def _safe_relative(text: str, what: str) -> str:
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts or "\\" in text:
        raise ValueError(f"The manifest's {what} {text!r} is not a plain relative path.")
    return text


def read_manifest(path: str | os.PathLike = MANIFEST) -> list[SourceFile]:
    """The files a manifest lists, their paths checked.

    Raises:
        ValueError: naming the manifest, for a malformed entry or a path that leaves
            the folder.
    """
    try:
        entries = json.loads(Path(path).read_text())["files"]
        files = [SourceFile(str(e["repository"]), str(e["commit"]),
                            _safe_relative(str(e["upstream_path"]), "upstream path"),
                            _safe_relative(str(e["path"]), "path"), str(e["sha256"]))
                 for e in entries]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"Cannot read the source manifest '{path}': "
                         f"{type(error).__name__}: {error}") from None
    if len({f.path for f in files}) != len(files):
        raise ValueError(f"The source manifest '{path}' lists a path twice.")
    return files


def _read(url: str, *, timeout: float) -> bytes:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme else url)
        if not path.is_file():
            raise FileNotFoundError(f"No file at '{path}'.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"'{path}' is larger than {MAX_FILE_BYTES:,} bytes.")
        return path.read_bytes()
    if parsed.scheme != "https":
        raise ValueError(f"Only https and local paths are read, not {url!r}.")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https
        data = response.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{url} is larger than {MAX_FILE_BYTES:,} bytes.")
    return data


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def fetch_sources(directory: str | os.PathLike, *, mirror: str | None = None,
                  manifest: str | os.PathLike = MANIFEST, timeout: float = 60.0,
                  print_fn: Callable[[str], object] = print) -> Path:
    """Download, check and write every file of the manifest into `directory`.

    Files already there with the right digest are kept (an interrupted run resumes);
    a file whose bytes differ from the manifest's digest is never written.

    Arguments:
        directory: the source folder to fill (created if missing).
        mirror: a folder or URL in the upstream layout to read instead of upstream.
        manifest: the manifest to follow.
        timeout: seconds per download.
        print_fn: receives progress lines.

    Returns:
        The folder, complete and checked.

    Raises:
        ValueError: naming the file and URL, for bytes that do not match the manifest.
        OSError: for a file that cannot be read or written (naming it).
    """
    files = read_manifest(manifest)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for number, source in enumerate(files, 1):
        target = root / source.path
        if _digest(target) == source.sha256:
            continue
        url = source.url(mirror)
        try:
            data = _read(url, timeout=timeout)
        except (OSError, ValueError) as error:
            raise OSError(f"Cannot read {source.path} from {url}: {error}") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != source.sha256:
            raise ValueError(f"{url} has SHA256 {digest}, not the manifest's "
                             f"{source.sha256} for {source.path}; nothing was written.")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
        fetched += 1
        if fetched % 25 == 1:
            print_fn(f"{number}/{len(files)} {source.path}")
    manifest_digest = hashlib.sha256(Path(manifest).read_bytes()).hexdigest()
    atomic_write_bytes(root / COMPLETE, f"{manifest_digest}\n".encode())
    print_fn(f"{len(files)} files checked in '{root}' ({fetched} fetched)")
    return root


def check_sources(directory: str | os.PathLike, *,
                  manifest: str | os.PathLike = MANIFEST) -> list[str]:
    """The manifest's files that are missing or differ in `directory` (empty: complete).
    """
    root = Path(directory)
    return [f.path for f in read_manifest(manifest) if _digest(root / f.path) != f.sha256]


def write_mirror(source_folder: str | os.PathLike, mirror: str | os.PathLike, *,
                 manifest: str | os.PathLike = MANIFEST) -> Path:
    """Lay out an offline mirror (`MIRROR/OWNER/REPO/COMMIT/PATH`) from an assembled
    source folder, for machines that cannot download.

    Raises:
        FileNotFoundError: naming a file the folder lacks.
    """
    mirror = Path(mirror)
    for source in read_manifest(manifest):
        origin = Path(source_folder) / source.path
        if not origin.is_file():
            raise FileNotFoundError(f"'{source_folder}' has no {source.path}.")
        target = mirror / source.repository / source.commit / source.upstream_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
    return mirror
