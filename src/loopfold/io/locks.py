"""Exclusive locks on output files and run folders: two runs never write one output at once.

A lock is an ``flock`` on a hidden file beside the output (``.NAME.loopfold-lock`` in the nearest
folder that exists; for an output in a folder still to be made, the path below it is in the name).
The kernel drops the lock when its process ends, however it ends; :func:`release_all` also removes
the lock files. ``-``, devices and FIFOs are not locked (they are streams, written in place).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from loopfold.errors import InvalidFile

SUFFIX = ".loopfold-lock"
_held: dict[str, int] = {}  # lock file -> open descriptor, for this process


def lock_path(path: Path) -> Path:
    """The lock file of an output: beside it, in the nearest existing folder (after symlinks)."""
    target = Path(os.path.realpath(path))
    folder = target.parent
    rest = [target.name]
    while not folder.is_dir() and folder != folder.parent:
        rest.insert(0, folder.name)
        folder = folder.parent
    return folder / f".{'_'.join(rest)}{SUFFIX}"


def _stream(path: Path) -> bool:
    if str(path) == "-":
        return True
    with contextlib.suppress(OSError):
        mode = os.stat(path).st_mode
        return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
    return False


def lock_outputs(outputs: dict[str, Path | None]) -> None:
    """Take an exclusive lock on every output (option name -> path) for the rest of this command.

    Raises:
        InvalidFile: another process holds one (named); the locks taken so far are kept until
            :func:`release_all` (the command is ending).
    """
    for name, path in outputs.items():
        if path is None or _stream(path):
            continue
        lock = lock_path(path)
        if str(lock) in _held:
            continue
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as exc:
                raise InvalidFile(f"{name} {path}: cannot make its lock file {lock} ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise InvalidFile(f"{name} {path}: another loopfold run is writing it (lock {lock}); wait for "
                                  "that run or choose another output") from None  # fmt: skip
            try:  # the file may have been removed by the run that held it: lock the one on disk
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                _held[str(lock)] = fd
                break
            os.close(fd)


def release_all() -> None:
    """Remove this process's lock files and drop the locks (the end of a command)."""
    for lock, fd in list(_held.items()):
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
        del _held[lock]
