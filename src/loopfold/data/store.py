"""The loop dataset on disk: one Parquet file, schema version in its metadata.

Columns are those of :class:`loopfold.data.records.LoopRecord`; ``coords`` is a
flat list of ``W*12`` floats (window residues x N, CA, C, O x xyz) or null.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopfold.data.dedupe import DedupeReport, dedupe_sources
from loopfold.data.records import SCHEMA_VERSION, LoopRecord
from loopfold.errors import InvalidFile
from loopfold.io.atomic import atomic_path

SCHEMA = pa.schema([
    ("loop_id", pa.string()), ("source", pa.string()), ("pdb_id", pa.string()),
    ("chain", pa.string()), ("chain_type", pa.string()), ("cdr", pa.string()),
    ("definition", pa.string()), ("sequence", pa.string()), ("stem_n", pa.string()),
    ("stem_c", pa.string()), ("phi", pa.list_(pa.float64())), ("psi", pa.list_(pa.float64())),
    ("omega", pa.list_(pa.float64())), ("coords", pa.list_(pa.float64())),
    ("chain_sequence", pa.string()), ("loop_start", pa.int32()),
    ("residue_ids", pa.list_(pa.string())), ("resolution", pa.float64()),
    ("date", pa.string()), ("has_chain_break", pa.bool_()), ("has_missing_atoms", pa.bool_()),
    ("source_split", pa.string()),
], metadata={b"loopfold_schema_version": SCHEMA_VERSION.encode()})  # fmt: skip


def write_dataset(path: str | os.PathLike[str], records: list[LoopRecord]) -> None:
    """Write loop records to a Parquet file atomically."""
    table = pa.Table.from_pylist([r.to_row() for r in records], schema=SCHEMA)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_dataset(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a loop dataset; one row per loop, list columns as numpy arrays.

    Raises:
        InvalidFile: not a Parquet file, or not a loopfold dataset of this schema version.
    """
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidFile(f"{path}: not a loopfold dataset ({exc})") from None
    meta = table.schema.metadata or {}
    version = meta.get(b"loopfold_schema_version", b"").decode()
    if version != SCHEMA_VERSION:
        if not version:
            raise InvalidFile(f"{path}: not a loopfold dataset (no loopfold schema version in its metadata)")
        raise InvalidFile(f"{path}: dataset schema version {version!r}, expected {SCHEMA_VERSION!r}")
    df = table.to_pandas()
    for col in ("phi", "psi", "omega"):
        df[col] = [np.asarray(v, dtype=np.float64) for v in df[col]]
    df["coords"] = [None if v is None else np.asarray(v, dtype=np.float64).reshape(-1, 4, 3) for v in df["coords"]]
    return df


def merge_datasets(
    paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], dedupe: bool = False
) -> tuple[int, DedupeReport | None]:
    """Concatenate datasets into ``out`` (atomically); returns the number of loops and, with
    ``dedupe``, what :func:`loopfold.data.dedupe.dedupe_sources` dropped (earlier inputs win).

    Raises:
        InvalidFile: an input is not a dataset, or a loop id appears twice.
    """
    tables = []
    rank: list[int] = []
    for k, p in enumerate(paths):
        read_dataset(p)  # validates the schema version
        tables.append(pq.read_table(p).cast(SCHEMA))
        rank += [k] * tables[-1].num_rows
    table = pa.concat_tables(tables)
    report = None
    if dedupe:
        cols = table.select(["pdb_id", "chain_sequence"]).to_pandas()
        keep, report = dedupe_sources(cols, rank)
        table = table.filter(pa.array(keep))
    ids = table.column("loop_id").to_pylist()
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InvalidFile(f"loop id {dup!r} appears in more than one input")
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    return len(ids), report
