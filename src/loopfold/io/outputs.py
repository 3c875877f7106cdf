"""Output files that never destroy a user's data.

* :func:`check_outputs` refuses, before any work, an output that is an input,
  inside an input folder, holding an input, in the installed model, or another
  output (compared after following symlinks, and by inode), a file output that
  is a folder, a folder output that is a file, a run folder holding an earlier
  run (without ``--resume``/``--force``) and places that cannot be written; it
  then locks every output (:mod:`loopfold.io.locks`).
* :func:`open_output` writes a document: atomically (temporary file, then a
  rename) for regular files and new paths, through a symlink to its target,
  and directly for ``-`` (standard output), character devices and FIFOs,
  which a rename would replace.
* :class:`JsonlStream` appends one finished record per line and flushes, so a
  killed run keeps every record that finished.
* :func:`interrupts_as_exceptions` turns SIGTERM into KeyboardInterrupt so that
  temporary files are cleaned up on either signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from loopfold.errors import InvalidFile
from loopfold.io.atomic import atomic_path

STDOUT = "-"


def _streamed(path: Path) -> bool:
    """True for ``-`` and existing character devices and FIFOs (written in place, never renamed)."""
    if str(path) == STDOUT:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (after symlinks; by inode when both exist)."""
    if str(a) == STDOUT or str(b) == STDOUT:
        return str(a) == str(b)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


def _writable_folder(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (after symlinks)."""
    p, f = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return p == f or f in p.parents


def _written_there(path: Path, folder: Path, patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` lies in ``folder`` under a name matching one of ``patterns`` (relative to it)."""
    import fnmatch

    p, f = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    if f not in p.parents:
        return False
    rel = str(p.relative_to(f))
    return any(fnmatch.fnmatch(rel, pat) for pat in patterns)


def installed_weights() -> Path:
    """The installed package's model folder (never an output)."""
    return Path(__file__).resolve().parents[1] / "weights"


def check_outputs(
    inputs: dict[str, Path | None],
    files: dict[str, Path | None],
    folders: dict[str, Path | None],
    runs: dict[str, tuple[Path | None, bool, tuple[str, ...]]] | None = None,
) -> None:
    """Refuse unsafe or unwritable outputs before any work starts: the one check every command makes.

    Refused: an output that is an input or lies inside an input folder; a run folder holding an input
    under a name the run writes; an output in the installed package's weights; two outputs on one
    path; a file output that is a folder, a folder output that is a file, places that cannot be
    written; a run folder (``runs``) that already holds files, unless its flag (``--resume``/
    ``--force``) is set.

    Args:
        inputs: option name -> input path (None when not given): files and folders the run reads.
        files: option name -> output file path.
        folders: option name -> output folder path.
        runs: option name -> (run folder, whether existing contents may be reused or replaced, the
            file name patterns the run writes there).

    Raises:
        InvalidFile: one line naming the option, the path and the problem.
    """
    runs = runs or {}
    folders = {**folders, **{k: v[0] for k, v in runs.items()}}
    writes = {k: v[2] for k, v in runs.items()}
    ins = {k: v for k, v in inputs.items() if v is not None and str(v) != STDOUT}
    outs = {k: v for k, v in {**files, **folders}.items() if v is not None}
    weights = installed_weights()
    path: Path | None
    for name, path in outs.items():
        if str(path) == STDOUT:
            continue
        for iname, ipath in ins.items():
            if _same(path, ipath):
                raise InvalidFile(f"{name} {path}: is the input {iname}; refusing to write over an input")
            if ipath.is_dir() and _inside(path, ipath):
                raise InvalidFile(f"{name} {path}: lies inside the input folder {iname}; write it elsewhere")
            if name in writes and _written_there(ipath, path, writes[name]):
                raise InvalidFile(f"{name} {path}: holds the input {iname} ({ipath}) under a name the run "
                                  "writes; write the run elsewhere")  # fmt: skip
        if _inside(path, weights):
            raise InvalidFile(f"{name} {path}: is the installed model ({weights}); refusing to write there")
    for name, (path, allowed, _) in runs.items():
        if path is not None and not allowed and path.is_dir() and any(path.iterdir()):
            raise InvalidFile(f"{name} {path}: holds an earlier run; give --resume or --force, or an empty folder")
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if _same(outs[a], outs[b]):
                raise InvalidFile(f"{a} and {b} name the same path {outs[a]}; give each output its own")
    for name, path in files.items():
        if path is None or _streamed(path):
            continue
        if path.is_dir():
            raise InvalidFile(f"{name} {path}: is a folder, expected a file")
        target = Path(os.path.realpath(path))
        if target.exists() and not os.access(target, os.W_OK):
            raise InvalidFile(f"{name} {path}: file is not writable")
        if not _writable_folder(target.parent):
            raise InvalidFile(f"{name} {path}: folder {target.parent} does not exist or is not writable")
    for name, path in folders.items():
        if path is None:
            continue
        if path.exists() and not path.is_dir():
            raise InvalidFile(f"{name} {path}: exists and is not a folder")
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not _writable_folder(existing):
            raise InvalidFile(f"{name} {path}: folder {existing} is not writable")
    from loopfold.io.locks import lock_outputs

    lock_outputs(outs)  # held until the command ends (loopfold.io.locks.release_all)


@contextlib.contextmanager
def open_output(path: Path) -> Iterator[IO[str]]:
    """A text handle for one output document (see the module docstring for how each kind is written).

    Nothing reaches a regular file unless the block finishes without an exception.
    """
    if str(path) == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    with _named(path):
        if _streamed(path):
            with open(path, "w", encoding="utf-8") as fh:
                yield fh
            return
        with atomic_path(os.path.realpath(path)) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            yield fh


@contextlib.contextmanager
def _named(path: Path) -> Iterator[None]:
    """Give write errors the output's name (a full device reports none of its own)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None or str(exc.filename).startswith(str(Path(os.path.realpath(path)).parent) + "/."):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


class JsonlStream:
    """One JSON record per line, appended and flushed as each record finishes.

    The file is opened (a regular file, or a symlink's target, truncated) when the
    first record is written, so a run that fails before any result leaves it as it
    was; ``-``, devices and FIFOs are written in place. Each line is written with
    SIGINT and SIGTERM held back, and whole or not at all: when a write fails (a full
    disk, the file-size limit) a regular file is cut back to its last whole line, so
    ``written`` always counts the whole lines on disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self._fh: IO | None = None

    def write(self, record: dict) -> None:
        """Append one record as a single line and flush it."""
        line = (json.dumps(record) + "\n").encode("utf-8")
        with _named(self.path), signals_held():
            if str(self.path) == STDOUT:
                sys.stdout.write(line.decode("utf-8"))
                sys.stdout.flush()
                self.written += 1
                return
            if self._fh is None:
                self._fh = open(os.path.realpath(self.path), "wb", buffering=0)  # noqa: SIM115 - kept open
            fd = self._fh.fileno()
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            end = os.lseek(fd, 0, os.SEEK_CUR) if regular else 0
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                if regular:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, end)
                        os.lseek(fd, end, os.SEEK_SET)
                raise
            self.written += 1

    def close(self) -> None:
        """Close the file (standard output is only flushed)."""
        if self._fh is not None:
            self._fh.close()
        elif str(self.path) == STDOUT:
            sys.stdout.flush()


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (a line or a file set is never half-written)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):  # no POSIX thread signals here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, as SIGINT does, so ``finally`` blocks and
    atomic writes clean up; the previous handler is restored afterwards."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_file_set(folder: Path, files: list[tuple[str, str]], done: Callable[[int], None] | None = None) -> int:
    """Write ``(name, text)`` files into ``folder`` as a set.

    Every target is checked first (an existing entry must be a regular file: a
    symlink, FIFO, device or folder there is refused); the files are written into
    a hidden staging folder, and moved into place only when all are written, with
    SIGINT and SIGTERM held back during the moves; the staging folder is removed
    whatever happens. ``done(n)`` is told how many files are in place. Returns
    that number.

    Raises:
        InvalidFile: a target that is not a regular file; nothing is written then.
        OSError: writing failed (named after the target); nothing was moved into place.
    """
    import shutil
    import tempfile

    for name, _ in files:
        target = folder / name
        if os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):
            raise InvalidFile(f"{target}: exists and is not a regular file (a link, pipe, device or folder); "
                              "refusing to replace it")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".loopfold-", dir=folder))
    try:
        for name, text in files:
            with _named(folder / name):
                try:
                    (staging / name).write_text(text, encoding="utf-8")
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, str(folder / name)) from None
        with signals_held():
            for k, (name, _) in enumerate(files, 1):
                os.replace(staging / name, folder / name)
                if done is not None:
                    done(k)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(files)
