"""An exclusive lock on a directory, held while a process writes in it (the server's state directory, the
distributed job's checkpoint directory): a second process that would write there too is refused at once."""

from __future__ import annotations

from pathlib import Path
from typing import IO

__all__ = ["LOCK_NAME", "DirectoryInUse", "lock_directory"]

LOCK_NAME = ".lock"  #: the file the lock is taken on, in the directory


class DirectoryInUse(RuntimeError):
    """Another process holds the directory's lock."""


def lock_directory(directory: Path) -> IO[bytes]:
    """Take the exclusive lock of ``directory`` (which must exist) without waiting, and return the open file that
    holds it: closing it (or the process ending, however it ends) releases it. :class:`DirectoryInUse` when
    another process holds it. Where the system has no ``fcntl`` (not POSIX) nothing is locked.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     held = lock_directory(Path(d))
    ...     held.close()
    """
    handle = open(directory / LOCK_NAME, "ab")
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DirectoryInUse(f"{directory} is in use by another process") from None
    return handle
