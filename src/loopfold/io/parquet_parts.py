"""Columnar output for big runs (``loopfold predict --parquet DIR``): a run folder that reads as a dataset.

Input records are taken ``part_size`` at a time, in input order; part k holds
records ``k * part_size`` to ``(k + 1) * part_size - 1``. The folder holds

- ``loops/part-0000k.parquet``: part k's loops, one row per loop (:data:`LOOP_SCHEMA`);
- ``_errors/part-0000k.parquet``: part k's failed records (``cdr`` empty) and the loops that could
  not be cut from the records that worked (``kind`` ``missing loop``): id, cdr, reason, kind
  (:data:`ERROR_SCHEMA`);
- ``_run.json``: the settings a resumed run must share (the model's SHA-256 and the input's size
  and head/tail hash among them).

``pandas.read_parquet(DIR)`` and ``pyarrow.dataset.dataset(DIR)`` read the loop table (both skip
names that start with ``_`` or ``.``; ``DIR/_errors`` reads as the error table). Every part's schema
metadata names the model, its SHA-256 and the loopfold version that wrote it. Each file is written
atomically, the errors file first, so a part is finished exactly when its loops file exists: a
killed run keeps every finished part, and ``--resume`` skips them (the input is read again; records
of finished parts are not predicted; a kept part that does not read back whole is predicted again).
A folder loopfold 0.3 wrote (``loops-0000k.parquet``, ``errors-0000k.parquet`` and ``run.json``
side by side) is moved into this layout when it is resumed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from loopfold import __version__
from loopfold.errors import InvalidFile, LoopfoldError
from loopfold.io.atomic import atomic_path

LOOPS, ERRORS, RUN_FILE = "loops", "_errors", "_run.json"
#: the names loopfold 0.3 gave a run's files, in the folder itself
LEGACY = ("loops-*.parquet", "errors-*.parquet", "run.json")
#: What a run writes in its folder (an input there under one of these names is refused).
WRITES = (f"{LOOPS}/*", f"{ERRORS}/*", RUN_FILE, ".input/*", ".*.tmp", *LEGACY)
#: the ``kind`` of an error row for a loop that could not be cut from a record that worked
MISSING = "missing loop"
MIB = 1 << 20
LOOP_SCHEMA = pa.schema([
    ("id", pa.string()), ("cdr", pa.string()), ("chain", pa.string()), ("sequence", pa.string()),
    ("start", pa.int32()), ("phi", pa.list_(pa.float32())), ("psi", pa.list_(pa.float32())),
    ("omega", pa.list_(pa.float32())), ("confidence", pa.list_(pa.float32())), ("error", pa.list_(pa.float32())),
    ("rmsd_predicted", pa.float32()), ("template", pa.string()),
    ("coords", pa.list_(pa.list_(pa.float32(), 12))),  # per residue N, CA, C, O x, y, z (Å)
])  # fmt: skip
#: a failed record (``cdr`` empty) or a loop not cut: the id, the CDR, the message, and the kind of
#: failure (:attr:`loopfold.errors.LoopfoldError.kind`, or :data:`MISSING`)
ERROR_SCHEMA = pa.schema([("id", pa.string()), ("cdr", pa.string()), ("reason", pa.string()), ("kind", pa.string())])


_PART = re.compile(r"part-(\d+)\.parquet")
_LEGACY_PART = re.compile(r"(loops|errors)-(\d+)\.parquet")


def part_numbers(folder: Path, table: str) -> set[int]:
    """The parts of ``table`` (:data:`LOOPS` or :data:`ERRORS`) in the folder (names that are not
    ``part-<k>.parquet`` ignored)."""
    return {int(m.group(1)) for p in (folder / table).glob("part-*.parquet") if (m := _PART.fullmatch(p.name))}


def part_file(folder: Path, table: str, k: int) -> Path:
    """Where part k of ``table`` (:data:`LOOPS` or :data:`ERRORS`) lives."""
    return folder / table / f"part-{k:05d}.parquet"


def part_metadata(model: str, model_sha256: str) -> dict[str, str]:
    """The schema metadata every part carries: which model and loopfold version wrote it."""
    return {"loopfold_version": __version__, "model": model, "model_sha256": model_sha256}


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


def error_rows(results: list[tuple[dict, LoopfoldError | None]]) -> list[dict]:
    """The error table's rows of a part: each failed record, and each loop a record that worked lacks."""
    rows = []
    for r, e in results:
        if e is not None:
            rows.append({"id": r["id"], "cdr": None, "reason": str(e), "kind": e.kind})
        else:
            rows += [{"id": r["id"], "cdr": m["cdr"], "reason": m["reason"], "kind": MISSING}
                     for m in r.get("missing", [])]  # fmt: skip
    return rows


class ParquetParts:
    """The part files of one run folder (see the module docstring)."""

    #: the part number of each record read by the todo iterator, in order (set by the caller to the
    #: second value :meth:`skip_done` returns)
    queue: deque[int]

    def __init__(self, folder: Path, settings: dict, part_size: int, resume: bool) -> None:
        self.folder, self.part_size = folder, part_size
        self.settings = {**settings, "part_size": part_size}
        self.metadata = part_metadata(settings["model"], settings.get("model_sha256", ""))
        self.written, self.moved = 0, 0
        check_folder(folder, self.settings, resume)
        for table in (LOOPS, ERRORS):
            (folder / table).mkdir(parents=True, exist_ok=True)
        if resume:
            for stale in _unfinished_parts(folder):  # a killed run's
                stale.unlink(missing_ok=True)
            self.moved = move_legacy_parts(folder, self.metadata)
        with atomic_path(folder / RUN_FILE) as tmp:
            tmp.write_text(json.dumps(self.settings))
        (folder / "run.json").unlink(missing_ok=True)  # a 0.3 folder's settings, now in _run.json
        self.done = part_numbers(folder, LOOPS)
        self.redone = sorted(k for k in self.done if not _readable(folder, k))
        for k in self.redone:  # a part cut short (a full disk, a copy): predicted again
            self.done.discard(k)
            for table in (LOOPS, ERRORS):
                part_file(folder, table, k).unlink(missing_ok=True)

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
        write_part(self.folder, k, results, self.metadata)
        self.finished(k)

    def finished(self, k: int) -> None:
        """Count part k as written (by this process or by a Ray worker)."""
        self.done.add(k)
        self.written += 1


def _settings_file(folder: Path) -> Path:
    """The run's settings: ``_run.json``, or a 0.3 folder's ``run.json``."""
    legacy = folder / "run.json"
    return legacy if legacy.exists() and not (folder / RUN_FILE).exists() else folder / RUN_FILE


def check_folder(folder: Path, settings: dict, resume: bool) -> None:
    """Refuse a folder holding an earlier run (without ``resume``), or one whose ``_run.json`` settings
    differ from ``settings`` (with it). Reads only.

    Raises:
        InvalidFile: naming the folder and the problem.
    """
    run = _settings_file(folder)
    if resume:
        if not run.is_file():
            raise InvalidFile(f"--parquet {folder}: no {RUN_FILE} there, nothing to resume")
        try:
            before = json.loads(run.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidFile(f"--parquet {run}: unreadable ({exc})") from None
        if not isinstance(before, dict):
            raise InvalidFile(f"--parquet {run}: not a JSON object")
        # keys an older run.json lacks (0.3 kept no hashes) are not compared; every shared one must match
        differ = sorted(k for k in settings.keys() & before.keys() if before[k] != settings[k])
        differ += sorted(k for k in before.keys() - settings.keys())
        if differ:
            what = "; ".join(f"{k} {before.get(k)!r} there, {settings.get(k)!r} now" for k in differ)
            raise InvalidFile(f"--parquet {folder}: --resume with other settings than the run there ({what})")
        linked = sorted(p.name for p in _legacy_parts(folder).values() if p.is_symlink())
        if linked:  # a 0.3 part is moved into loops/ or _errors/ on resuming: a symlink is not replaced
            raise InvalidFile(f"--parquet {folder}: {linked[0]} (a 0.3 part) is a symlink; replace it with the "
                              "file or remove it, then resume")  # fmt: skip
    elif run.exists() or any(folder.glob("loops-*.parquet")) or part_numbers(folder, LOOPS):
        raise InvalidFile(f"--parquet {folder}: holds an earlier run; give --resume, --force or an empty folder")


def move_legacy_parts(folder: Path, metadata: dict[str, str]) -> int:
    """Move the parts a 0.3 run left in ``folder`` into this layout; returns how many parts moved.

    Each errors part goes first (rewritten in the new error schema), then its loops part (which marks
    the part finished), each removed from the old name once written under the new one, so a move cut
    short by a kill goes on at the next ``--resume``. A part whose errors or loops file does not read
    back is removed whole (it is predicted again). Moved parts carry ``metadata`` with the version
    given as ``0.3`` and the model's SHA-256 as unknown (0.3 kept none to check it against).

    :func:`check_folder` has refused a 0.3 part that is a symlink (it is not replaced).
    """
    old = {**metadata, "loopfold_version": f"0.3 (moved into this layout by loopfold {__version__})",
           "model_sha256": "unknown"}  # fmt: skip
    legacy = _legacy_parts(folder)
    moved = 0
    for k in sorted({k for _, k in legacy}):
        tables = {}
        try:
            for kind in ("errors", "loops"):
                if (kind, k) in legacy:
                    tables[kind] = pq.read_table(legacy[kind, k])
        except (OSError, pa.ArrowException):
            tables = {}  # a file cut short: the whole part is predicted again
        for kind, table, schema in (("errors", ERRORS, ERROR_SCHEMA), ("loops", LOOPS, LOOP_SCHEMA)):
            if kind in tables:
                t = tables[kind]
                cols = [t.column(f.name).cast(f.type) if f.name in t.column_names else pa.nulls(len(t), f.type)
                        for f in schema]  # fmt: skip
                with atomic_path(part_file(folder, table, k)) as tmp:
                    pq.write_table(pa.Table.from_arrays(cols, schema=schema.with_metadata(old)), tmp)
            if (kind, k) in legacy:
                legacy[kind, k].unlink()
        moved += "loops" in tables
    return moved


def _unfinished_parts(folder: Path) -> list[Path]:
    """The temporary files of parts a killed run was writing (in loops/ and _errors/, and 0.3's beside
    them); other temporary files in the folder are not the run's."""
    legacy = [p for p in folder.glob(".*-*.parquet.*.tmp") if p.name.startswith((".loops-", ".errors-"))]
    return legacy + [p for t in (LOOPS, ERRORS) for p in (folder / t).glob(".part-*.parquet.*.tmp")]


def _legacy_parts(folder: Path) -> dict[tuple[str, int], Path]:
    """The part files a 0.3 run left in the folder: (``loops`` or ``errors``, k) -> path."""
    if not folder.is_dir():
        return {}
    return {(m.group(1), int(m.group(2))): p for p in folder.iterdir() if (m := _LEGACY_PART.fullmatch(p.name))}


def _readable(folder: Path, k: int) -> bool:
    """Whether part k's loops (and errors) files read back whole."""
    try:
        for table in (ERRORS, LOOPS):
            if part_file(folder, table, k).exists() or table == LOOPS:
                pq.read_table(part_file(folder, table, k))
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
    temporary parts (0.3's names too); other files are left. Returns how many were removed."""
    names = [folder / RUN_FILE, folder / "run.json", *folder.glob("loops-*.parquet"), *folder.glob("errors-*.parquet"),
             *_unfinished_parts(folder), *(p for t in (LOOPS, ERRORS) for p in (folder / t).glob("part-*.parquet")),
             *(folder / ".input").glob("*part-*")]  # a Ray run's input shards
    gone = 0
    for p in names:
        if p.is_file() and not p.is_symlink():
            p.unlink()
            gone += 1
    for t in (LOOPS, ERRORS):
        if (folder / t).is_dir() and not any((folder / t).iterdir()):
            (folder / t).rmdir()
    return gone


def write_part(folder: Path, k: int, results: list[tuple[dict, LoopfoldError | None]],
               metadata: dict[str, str]) -> None:  # fmt: skip
    """Write part k's ``(record, error)`` results: its error rows (:func:`error_rows`), then its loops
    (the file that marks it finished), each with the schema ``metadata`` (:func:`part_metadata`)."""
    rows = [row for r, e in results if e is None for row in loop_rows(r)]
    for table, schema, data in ((ERRORS, ERROR_SCHEMA, error_rows(results)), (LOOPS, LOOP_SCHEMA, rows)):
        with atomic_path(part_file(Path(folder), table, k)) as tmp:
            pq.write_table(pa.Table.from_pylist(data, schema=schema.with_metadata(metadata)), tmp)
