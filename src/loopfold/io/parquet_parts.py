"""Columnar output for big runs (``loopfold predict --parquet DIR``).

Input records are taken ``part_size`` at a time, in input order; part k holds
records ``k * part_size`` to ``(k + 1) * part_size - 1``. Its loops go to
``loops-0000k.parquet`` (one row per loop) and its failed records to
``errors-0000k.parquet`` (id, reason, kind). Each file is written atomically, the
errors file first, so a part is finished exactly when its loops file exists:
a killed run keeps every finished part, and ``--resume`` skips them (the input
is read again; records of finished parts are not predicted; a kept part that
does not read back whole is predicted again). ``run.json`` records the
settings a resumed run must share, the model's SHA-256 and the input's size,
time and head/tail hash among them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from loopfold.errors import InvalidFile, LoopfoldError
from loopfold.io.atomic import atomic_path

RUN_FILE = "run.json"
#: What a run writes in its folder (an input there under one of these names is refused).
WRITES = ("loops-*.parquet", "errors-*.parquet", RUN_FILE, ".input/*", ".*.tmp")
MIB = 1 << 20
LOOP_SCHEMA = pa.schema([
    ("id", pa.string()), ("cdr", pa.string()), ("chain", pa.string()), ("sequence", pa.string()),
    ("start", pa.int32()), ("phi", pa.list_(pa.float32())), ("psi", pa.list_(pa.float32())),
    ("omega", pa.list_(pa.float32())), ("confidence", pa.list_(pa.float32())), ("error", pa.list_(pa.float32())),
    ("rmsd_predicted", pa.float32()), ("template", pa.string()),
    ("coords", pa.list_(pa.list_(pa.float32(), 12))),  # per residue N, CA, C, O x, y, z (Å)
])  # fmt: skip
#: a failed record: its id, the message, and the kind of failure (:attr:`loopfold.errors.LoopfoldError.kind`)
ERROR_SCHEMA = pa.schema([("id", pa.string()), ("reason", pa.string()), ("kind", pa.string())])


def loop_rows(record: dict) -> list[dict]:
    """One row per loop of a JSON-ready result record."""
    rows = []
    for lp in record.get("loops", []):
        c = lp["coords"]
        rows.append({"id": record["id"], "cdr": lp["cdr"], "chain": lp["chain"], "sequence": lp["sequence"],
                     "start": lp["start"], "phi": lp["phi"], "psi": lp["psi"], "omega": lp["omega"],
                     "confidence": lp["confidence"], "error": lp.get("error"),
                     "rmsd_predicted": lp.get("rmsd_predicted"), "template": lp.get("template"),
                     "coords": [[*n, *ca, *cc, *o] for n, ca, cc, o in zip(c["N"], c["CA"], c["C"], c["O"],
                                                                            strict=True)]})  # fmt: skip
    return rows


class ParquetParts:
    """The part files of one run folder (see the module docstring)."""

    #: the part number of each record read by the todo iterator, in order (set by the caller to the
    #: second value :meth:`skip_done` returns)
    queue: deque[int]

    def __init__(self, folder: Path, settings: dict, part_size: int, resume: bool) -> None:
        self.folder, self.part_size = folder, part_size
        self.settings = {**settings, "part_size": part_size}
        self.written = 0
        run = folder / RUN_FILE
        check_folder(folder, self.settings, resume)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*-*.parquet.*.tmp") if resume else ():  # a killed run's unfinished parts
            if stale.name.startswith((".loops-", ".errors-")):
                stale.unlink(missing_ok=True)
        with atomic_path(run) as tmp:
            tmp.write_text(json.dumps(self.settings))
        self.done = {int(p.stem.split("-")[1]) for p in folder.glob("loops-*.parquet")}
        self.redone = sorted(k for k in self.done if not _readable(folder, k))
        for k in self.redone:  # a part cut short (a full disk, a copy): predicted again
            self.done.discard(k)
            for name in (f"loops-{k:05d}.parquet", f"errors-{k:05d}.parquet"):
                (folder / name).unlink(missing_ok=True)

    def skip_done(self, records: Iterable) -> tuple[Iterator, deque]:
        """The records of unfinished parts, and a queue of their part numbers (filled as they are read)."""
        parts: deque = deque()

        def todo() -> Iterator:
            for i, rec in enumerate(records):
                k = i // self.part_size
                if k not in self.done:
                    parts.append(k)
                    yield rec

        return todo(), parts

    def write(self, k: int, results: list[tuple[dict, LoopfoldError | None]]) -> None:
        """Write part k (see :func:`write_part`) and count it."""
        write_part(self.folder, k, results)
        self.finished(k)

    def finished(self, k: int) -> None:
        """Count part k as written (by this process or by a Ray worker)."""
        self.done.add(k)
        self.written += 1


def check_folder(folder: Path, settings: dict, resume: bool) -> None:
    """Refuse a folder holding an earlier run (without ``resume``), or one whose ``run.json`` settings
    differ from ``settings`` (with it). Reads only.

    Raises:
        InvalidFile: naming the folder and the problem.
    """
    run = folder / RUN_FILE
    if resume:
        if not run.is_file():
            raise InvalidFile(f"--parquet {folder}: no {RUN_FILE} there, nothing to resume")
        try:
            before = json.loads(run.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidFile(f"--parquet {folder}/{RUN_FILE}: unreadable ({exc})") from None
        if not isinstance(before, dict):
            raise InvalidFile(f"--parquet {folder}/{RUN_FILE}: not a JSON object")
        # keys an older run.json lacks (0.3 kept no hashes) are not compared; every shared one must match
        differ = sorted(k for k in settings.keys() & before.keys() if before[k] != settings[k])
        differ += sorted(k for k in before.keys() - settings.keys())
        if differ:
            what = "; ".join(f"{k} {before.get(k)!r} there, {settings.get(k)!r} now" for k in differ)
            raise InvalidFile(f"--parquet {folder}: --resume with other settings than the run there ({what})")
    elif (folder.is_dir() and any(folder.glob("loops-*.parquet"))) or run.exists():
        raise InvalidFile(f"--parquet {folder}: holds an earlier run; give --resume, --force or an empty folder")


def _readable(folder: Path, k: int) -> bool:
    """Whether part k's loops (and errors) files read back whole."""
    try:
        for name in (f"errors-{k:05d}.parquet", f"loops-{k:05d}.parquet"):
            if (folder / name).exists() or name.startswith("loops"):
                pq.read_table(folder / name)
    except (OSError, pa.ArrowException):
        return False
    return True


def file_fingerprint(path: Path) -> dict:
    """What a resumed run checks its input against: its size and a SHA-256 of its first and last MiB
    (cheap for any size; the modification time is left out, so a copy without timestamps resumes)."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(MIB))
        if st.st_size > MIB:
            fh.seek(max(MIB, st.st_size - MIB))
            h.update(fh.read(MIB))
    return {"size": st.st_size, "head_tail_sha256": h.hexdigest()}


def model_digest(run_dir: Path) -> str:
    """SHA-256 over a model folder's files a prediction reads (config, weights, templates, members,
    framework library), names included: two models with one ``info.name`` still differ."""
    h = hashlib.sha256()
    names = ("config.json", "model.safetensors", "templates.safetensors", "frameworks.npz")
    files = [run_dir / n for n in names] + sorted((run_dir / "members").glob("*/*"))
    for f in files:
        if f.is_file():
            h.update(str(f.relative_to(run_dir)).encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(functools.partial(fh.read, MIB), b""):
                    h.update(block)
    return h.hexdigest()


def clear_run(folder: Path) -> int:
    """Remove an earlier run's files from ``folder`` (``--force``): its settings, parts and unfinished
    temporary parts; other files are left. Returns how many were removed."""
    names = [folder / RUN_FILE, *folder.glob("loops-*.parquet"), *folder.glob("errors-*.parquet"),
             *(p for p in folder.glob(".*-*.parquet.*.tmp") if p.name.startswith((".loops-", ".errors-"))),
             *(folder / ".input").glob("*part-*")]  # a Ray run's input shards
    gone = 0
    for p in names:
        if p.is_file() and not p.is_symlink():
            p.unlink()
            gone += 1
    return gone


def write_part(folder: Path, k: int, results: list[tuple[dict, LoopfoldError | None]]) -> None:
    """Write part k's ``(record, error)`` results: its failed records, then its loops (the file that
    marks it finished)."""
    errors = [{"id": r["id"], "reason": str(e), "kind": e.kind} for r, e in results if e is not None]
    rows = [row for r, e in results if e is None for row in loop_rows(r)]
    for name, table in ((f"errors-{k:05d}.parquet", pa.Table.from_pylist(errors, schema=ERROR_SCHEMA)),
                        (f"loops-{k:05d}.parquet", pa.Table.from_pylist(rows, schema=LOOP_SCHEMA))):  # fmt: skip
        with atomic_path(Path(folder) / name) as tmp:
            pq.write_table(table, tmp)


def read_loops(folder: str | os.PathLike[str]) -> pa.Table:
    """Every finished part's loop rows, in part order."""
    files = sorted(Path(folder).glob("loops-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else LOOP_SCHEMA.empty_table()
