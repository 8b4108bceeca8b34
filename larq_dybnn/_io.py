"""Atomic file writing: a reader sees the old file or the whole new one, never half."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator


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
