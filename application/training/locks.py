"""Folder locks: one process at a time writes in a training run's or a sweep's folder.

A lock is an exclusive `flock` on a file in the folder, holding the owner's pid so
that a second process can say who holds it. The operating system releases it when
the process ends, however it ends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from larq_dybnn._io import open_no_follow

__all__ = ["LOCK_NAME", "FolderLock", "lock_folder"]


#: The lock file of a folder a process writes in (a training run, a sweep).
LOCK_NAME = ".lock"


class FolderLock:
    """An exclusive lock on a folder, held until `close` (or the process ends)."""

    def __init__(self, handle):
        self._handle = handle

    def close(self) -> None:
        if self._handle is not None:
            import fcntl

            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def lock_folder(folder: str | os.PathLike, *, what: str, name: str = LOCK_NAME,
                purpose: str | None = None,
                wait: Callable[[str], object] | None = None) -> FolderLock:
    """Lock `folder` for this process, or say which process holds it.

    Arguments:
        folder: an existing folder.
        what: what the folder is, for the error ("training run", "sweep").
        name: the lock file's name in `folder`: one folder can have several locks,
            each for one kind of work (a sweep's training and its evaluation).
        purpose: what the lock is held for, for the error ("training").
        wait: if given, wait for the holder instead of failing; `wait` receives a
            line saying so first.

    Returns:
        A `FolderLock` (a context manager).

    Raises:
        ValueError: if another process holds the lock (and `wait` is None), naming
            its pid.
    """
    import fcntl

    path = Path(folder) / name
    handle = open_no_follow(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        for_what = f" ({purpose})" if purpose else ""
        if wait is None:
            handle.close()
            raise ValueError(f"The {what} folder '{folder}' is in use by pid {holder}"
                             f"{for_what}; wait for it to finish or use another "
                             "folder.") from None
        wait(f"Waiting for pid {holder}{for_what} to release the {what} folder '{folder}'")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            raise
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return FolderLock(handle)
