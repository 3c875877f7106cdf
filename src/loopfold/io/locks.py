"""Exclusive locks on output files and run folders: two runs never write one output at once.

A lock is an ``flock`` on a file named after the SHA-256 of the output's absolute path (after
symlinks) in a private folder of this user's temporary directory, so it needs no write access beside
the output, leaves nothing in the user's folders, and two runs naming one output (even one whose
folder does not exist yet) meet on the same lock. The kernel drops a lock when its process ends,
however it ends; :func:`release_all` also removes the lock files. ``-``, devices and FIFOs are not
locked (they are streams, written in place). Runs on different machines sharing a file system are
not kept apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from loopfold.errors import InvalidFile

_held: dict[str, int] = {}  # lock file -> open descriptor, for this process


def lock_folder() -> Path:
    """This user's lock folder (made private on first use)."""
    folder = Path(tempfile.gettempdir()) / f"loopfold-locks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise InvalidFile(f"{folder}: the lock folder is not a private folder of this user; remove it")
    return folder


def lock_path(path: Path) -> Path:
    """The lock file of an output (by its absolute path after symlinks)."""
    key = hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()
    return lock_folder() / f"{key}.lock"


def _stream(path: Path) -> bool:
    if str(path) == "-":
        return True
    with contextlib.suppress(OSError):
        mode = os.stat(path).st_mode
        return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
    return False


def lock_outputs(outputs: Mapping[str, Path | None]) -> None:
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
