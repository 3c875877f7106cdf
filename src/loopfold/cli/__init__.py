"""The ``loopfold`` command: a thin shell over the public API.

Every LoopfoldError ends as one line on stderr and a non-zero exit (2).
The commands live in ``data``, ``train`` (train, evaluate, report) and
``predict``; importing this package registers them.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from loopfold.errors import LoopfoldError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Antibody CDR loop backbones from sequence.",
                  context_settings={"help_option_names": ["-h", "--help"]})  # fmt: skip
data_app = typer.Typer(no_args_is_help=True, help="Build, inspect and split loop datasets.")
app.add_typer(data_app, name="data")
#: Control characters (C0 but tab and newline, DEL, C1): shown as ``\\x..``, never sent to the terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences) written as ``\\x..``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class PlainConsole(Console):
    """A console that prints text as text: no markup or emoji codes, control characters shown as
    ``\\x..`` (record names and paths reach the terminal unchanged and harmless)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(markup=False, emoji=False, **kwargs)  # type: ignore[arg-type]

    def print(self, *objects: object, **kwargs: object) -> None:  # type: ignore[override]
        """:meth:`rich.console.Console.print`, strings passed through :func:`shown`."""
        super().print(*(shown(o) if isinstance(o, str) else o for o in objects), **kwargs)  # type: ignore[arg-type]


console = PlainConsole(stderr=True)
out = PlainConsole()


def _version(value: bool) -> None:
    if value:
        from loopfold import __version__

        out.print(f"loopfold {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version, exit."),
) -> None:
    """Antibody CDR loop backbones from sequence."""
    from loopfold.io.locks import release_all

    ctx.call_on_close(release_all)  # the outputs' locks end with the command, however it ends


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line and exit."""
    console.print(Text("error:", style="red"), shown(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


T = TypeVar("T")


def tracked(items: Iterable[T], quiet: bool = False, what: str = "antibodies", delay: float = 2.0,
            where: Console | None = None,
            total: int | Callable[[], int | None] | None = None) -> Iterator[T]:  # fmt: skip
    """Yield ``items``; once the run has lasted ``delay`` seconds, show a progress line on stderr
    (:func:`progress_text`: finished records, of ``total`` when known, the rate since the run
    started, the time elapsed and left; only on a terminal, never with ``quiet``), redrawn
    every second and removed when the run ends. ``total`` may be a function that gives None until
    the input is counted (:func:`counted`)."""
    where = where or console
    start, n = time.monotonic(), 0
    prog: Progress | None = None
    task = None
    try:
        for item in items:
            n += 1
            if prog is None and not quiet and where.is_terminal and time.monotonic() - start >= delay:
                prog = Progress(_RunColumn(what, start), console=where, transient=True, refresh_per_second=1)
                prog.start()
                task = prog.add_task("predict", total=None)
            if prog is not None:
                assert task is not None  # added with prog
                prog.update(task, completed=n, total=total() if callable(total) else total)
            yield item
    finally:
        if prog is not None:
            prog.stop()


class _RunColumn(ProgressColumn):
    """The progress line of :func:`tracked`, timed from the run's start (not from when it is shown)."""

    def __init__(self, what: str, start: float) -> None:
        super().__init__()
        self.what, self.start = what, start

    def render(self, task: Task) -> Text:
        total = int(task.total) if task.total is not None else None
        return Text(progress_text(int(task.completed), total, time.monotonic() - self.start, self.what))


def counted(count: Callable[[Path], int | None], path: Path, quiet: bool = False) -> Callable[[], int | None] | None:
    """The number of records in ``path`` (``count``: e.g. :func:`~loopfold.io.fasta.count_antibodies`),
    counted in a background thread while the run starts, for the progress line: a function giving None
    until it is known. None (nothing counted) when no progress line will show (``quiet``, stderr not a
    terminal) or ``path`` is not a regular file (a pipe is read once, by the run)."""
    if quiet or not console.is_terminal or not path.is_file():
        return None
    found: list[int | None] = []
    threading.Thread(target=lambda: found.append(count(path)), daemon=True).start()
    return lambda: found[0] if found else None


def progress_text(done: int, total: int | None, elapsed: float, what: str = "antibodies") -> str:
    """The progress line: records finished, of how many (when known), the rate over the whole run so
    far, the time since the run started and, with a total, the time left at that rate.

    >>> progress_text(512, 8000, 11.0)
    'predicting: 512 of 8,000 antibodies (46.5/s), 0:00:11, about 0:02:40 left'
    >>> progress_text(3, None, 2.0, "records")
    'predicting: 3 records (1.5/s), 0:00:02'
    """
    rate = done / elapsed if elapsed > 0 else 0.0
    of = f" of {total:,}" if total is not None else ""
    line = f"predicting: {done:,}{of} {what} ({rate:.1f}/s), {_clock(elapsed)}"
    if total is not None and rate > 0 and done < total:
        line += f", about {_clock((total - done) / rate)} left"
    return line


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def optional_value(args: list[str], option: str, bare: str) -> list[str]:
    """``args`` with an ``option`` given without a value (last, or followed by another option) turned
    into ``option=bare`` (``loopfold predict ... --ray`` means ``--ray=local``)."""
    return [f"{a}={bare}" if a == option and (i + 1 == len(args) or args[i + 1].startswith("-")) else a
            for i, a in enumerate(args)]  # fmt: skip


def main() -> None:
    """Console-script entry point."""
    sys.argv[1:] = optional_value(sys.argv[1:], "--ray", "local")
    try:
        app()
    except LoopfoldError as exc:  # safety net: commands catch their own
        console.print(Text("error:", style="red"), shown(str(exc)), highlight=False, soft_wrap=True)
        sys.exit(2)


from loopfold.cli import data, predict, train  # noqa: E402,F401 - registers the commands

if __name__ == "__main__":
    main()
