"""``loopfold data build``: any supported source -> one loop dataset, with a report."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from loopfold.data.extract import (
    ExtractOptions,
    extract_file,
    folder_metadata,
    is_structure_file,
    metadata_for,
    source_name,
)
from loopfold.data.pyigclassify import read_pyigclassify
from loopfold.data.rab import read_rab_json
from loopfold.data.records import LoopRecord
from loopfold.data.seed_pickle import read_seed_pickle
from loopfold.errors import InvalidFile

FORMATS = ("pdb", "pyigclassify", "seed-pickle", "rab-json")


@dataclass
class BuildReport:
    """What a build read, kept and skipped (``skipped`` maps reason -> count)."""

    files_read: int = 0
    files_failed: list[tuple[str, str]] = field(default_factory=list)
    loops_kept: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)
    skipped_examples: dict[str, str] = field(default_factory=dict)

    def skip(self, what: str, reason: str) -> None:
        """Count one skipped item under a normalised reason."""
        key = reason.split(" (")[0]
        key = key.split(": ", 1)[1] if key.startswith("chain ") and ": " in key else key
        self.skipped[key] += 1
        self.skipped_examples.setdefault(key, what)

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "files_read": self.files_read,
            "files_failed": len(self.files_failed),
            "loops_kept": self.loops_kept,
            "skipped": dict(self.skipped.most_common()),
            "failed_files": [{"file": f, "reason": r} for f, r in self.files_failed],
        }


def detect_format(source: Path) -> str:
    """Guess the source kind: a folder of structures, PyIgClassify tables, a seed pickle, RAB JSON."""
    name = source.name.lower()
    if source.is_file():
        if name.endswith((".pickle", ".pkl")):
            return "seed-pickle"
        if name.endswith(".json"):
            return "rab-json"
        if name.endswith(".csv"):
            return "pyigclassify"
        if is_structure_file(source):
            return "pdb"
    elif source.is_dir():
        if any(source.rglob("dihedralOutput*.csv")):
            return "pyigclassify"
        return "pdb"
    raise InvalidFile(f"{source}: cannot tell its format; pass --format {'|'.join(FORMATS)}")


def structure_files(source: Path) -> list[Path]:
    """Structure files in a folder (sorted), or the single file given."""
    if source.is_file():
        return [source]
    return sorted(p for p in source.iterdir() if is_structure_file(p))


def _extract_job(args: tuple[str, ExtractOptions, dict]):  # noqa: ANN202 - worker
    return extract_file(*args)


def build_dataset(
    source: str | os.PathLike[str],
    fmt: str | None = None,
    options: ExtractOptions | None = None,
    workers: int = 1,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[LoopRecord], BuildReport]:
    """Build loop records from a source.

    Args:
        source: a folder or file.
        fmt: one of :data:`FORMATS`; detected when None.
        options: definition, stems and numbering for structure files.
        workers: processes for structure folders.
        strict: raise on the first unusable file instead of skipping it.
        progress: called with (done, total) as structure files finish.

    Raises:
        InvalidFile: the source is unusable, or (``strict``) any file is.
    """
    src = Path(source)
    if not src.exists():
        raise InvalidFile(f"{src}: no such file or folder")
    fmt = fmt or detect_format(src)
    report = BuildReport()
    if fmt == "seed-pickle":
        records = read_seed_pickle(src)
        report.files_read = 1
    elif fmt in ("pyigclassify", "rab-json"):
        reader = read_pyigclassify if fmt == "pyigclassify" else read_rab_json
        records, skipped = reader(src)
        report.files_read = 1
        for what, reason in skipped:
            if strict:
                raise InvalidFile(f"{src}: {what}: {reason}")
            report.skip(what, reason)
    elif fmt == "pdb":
        opts = options or ExtractOptions(source=source_name(src if src.is_dir() else src.parent))
        files = structure_files(src)
        if not files:
            raise InvalidFile(f"{src}: no structure files (.pdb, .cif, optionally .gz/.bz2)")
        meta = folder_metadata(src if src.is_dir() else src.parent)
        jobs = [(str(f), opts, metadata_for(str(f), meta)) for f in files]
        records = []
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = pool.map(_extract_job, jobs, chunksize=8)
                records = _collect(results, report, strict, progress, len(jobs))
        else:
            records = _collect(map(_extract_job, jobs), report, strict, progress, len(jobs))
    else:
        raise InvalidFile(f"{src}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    report.loops_kept = len(records)
    return records, report


def _collect(results, report: BuildReport, strict: bool, progress, total: int) -> list[LoopRecord]:  # noqa: ANN001
    records: list[LoopRecord] = []
    for done, res in enumerate(results, start=1):
        report.files_read += 1
        if res.error is not None:
            if strict:
                raise InvalidFile(res.error)
            report.files_failed.append((res.path, res.error))
            report.skip(res.path, "unusable file: " + res.error.split(": ", 1)[-1])
        for what, reason in res.skipped:
            report.skip(f"{Path(res.path).name} {what}", reason)
        records.extend(res.records)
        if progress is not None:
            progress(done, total)
    return records
