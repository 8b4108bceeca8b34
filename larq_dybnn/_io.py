"""Atomic file writing: a reader sees the old file or the whole new one, never half."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator


#: Marks this package's temporary files: `.<name>.tmp-<random><suffix>` beside the
#: file being written. One left by a killed process is removed by
#: `remove_stale_temporaries` when the next run in that folder starts.
TEMPORARY_MARK = ".tmp-"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def final_mode(path: Path) -> int:
    """The mode a written file gets: an existing file's own, else 0666 less the umask
    (what `open` would give it), not the 0600 of a temporary file."""
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def check_writable_target(path: str | os.PathLike) -> None:
    """Refuse to replace anything but a missing or ordinary file: a symlink, a file
    with other hard links, a device node, a fifo or a folder is never written over
    (`-o /dev/null` as root would replace the system's node; a link would make the
    write land, or be seen, somewhere else).

    Raises:
        OSError: naming `path` and what it is.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    kind = ("a symbolic link" if stat.S_ISLNK(info.st_mode) else
            "a folder" if stat.S_ISDIR(info.st_mode) else
            None if stat.S_ISREG(info.st_mode) else "a device, fifo or socket")
    if kind is None and info.st_nlink > 1:
        kind = f"a file with {info.st_nlink} hard links"
    if kind is not None:
        raise OSError(f"Cannot write '{path}': it is {kind}, not an ordinary file; "
                      "refusing to write over it. Choose another output path.")


def open_no_follow(path: str | os.PathLike, mode: str = "a+"):
    """Open a lock or log file for appending without following a symlink at `path`;
    it must be (or become) an ordinary file with one link.

    Raises:
        OSError: naming `path` if it is a link, device, fifo or folder.
    """
    check_writable_target(path)
    flags = os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK
    flags |= os.O_RDWR if "+" in mode else os.O_WRONLY
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:
        raise OSError(f"Cannot open '{path}': {error.strerror}.") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise OSError(f"Cannot open '{path}': it is not an ordinary file.")
    os.set_blocking(fd, True)
    return os.fdopen(fd, mode)


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path`, with the
    mode `path` had (or the umask's for a new file). Only a missing or ordinary file
    is replaced (`check_writable_target`).

    Raises:
        FileNotFoundError: if the folder of `path` does not exist.
        OSError: if it is not writable, or `path` is a link, device or folder; no
            file is left behind on any error.
    """
    path = Path(path)
    check_writable_target(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot write '{path}': folder '{folder}' does not exist.")
    # Keep the suffix: Keras picks the save format by it.
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}{TEMPORARY_MARK}",
                                     suffix=path.suffix, dir=folder)
    os.close(fd)
    try:
        yield temporary
        os.chmod(temporary, final_mode(path))
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError) and error.errno is not None and str(path) not in str(
                error):
            # A full disk says "No space left on device" without saying where.
            raise OSError(error.errno, f"Cannot write '{path}': {error.strerror}") from None
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete this package's temporary files in `folder` (not below it), left by a
    process killed while writing. Call it only where no other writer is active (a
    run's locked output folder).

    Returns:
        The files removed.
    """
    removed = []
    for path in Path(folder).glob(f".*{TEMPORARY_MARK}*"):
        if path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


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
    with replacing(path) as temporary:
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
    with replacing(path) as temporary:
        model.save(temporary, overwrite=True)
    return Path(path)


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
