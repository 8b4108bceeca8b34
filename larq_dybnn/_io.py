"""Atomic file writing: a reader sees the old file or the whole new one, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def _replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path`.

    Raises:
        FileNotFoundError: if the folder of `path` does not exist.
        OSError: if it is not writable; no file is left behind on any error.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot write '{path}': folder '{folder}' does not exist.")
    # Keep the suffix: Keras picks the save format by it.
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=folder)
    os.close(fd)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder.

    Arguments:
        path: destination file; its folder must exist and be writable.
        data: the bytes to write.

    Returns:
        The destination as a `Path`.

    Raises:
        OSError: if the folder is missing or not writable; no file is left behind.
    """
    with _replacing(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def atomic_save_model(model, path: str | os.PathLike) -> Path:
    """Save a Keras model to `path` (.keras or .h5) through a temporary file.

    Raises:
        OSError: if the folder is missing or not writable; no file is left behind.
    """
    with _replacing(path) as temporary:
        model.save(temporary, overwrite=True)
    return Path(path)
