"""Antibodies from a table (``loopfold predict --table FILE``): CSV, TSV (also ``.gz``) or Parquet.

Columns, in the order they are looked for:

* paired: ``heavy``/``light``, or the AIRR-style ``sequence_alignment_aa_heavy``
  / ``sequence_alignment_aa_light`` that paired repertoire exports use (either
  may be empty: a nanobody, a light chain alone);
* unpaired AIRR rows: ``sequence_alignment_aa`` with ``locus`` (IGH is a heavy
  chain, IGK and IGL light ones): each row is one chain, predicted alone.

The record name is ``sequence_id``, ``id`` or ``name`` (else ``row N``). Rows are
streamed in batches, so a table of any size is read with bounded memory; a row
that cannot be used (a letter that is not a standard amino acid, an unknown
locus) comes out with ``error`` set, naming the row.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

from loopfold.errors import EmptyRecord, InvalidFile, InvalidSequence, NotALocus
from loopfold.io.fasta import AntibodyInput, clean_sequence

PAIRED = (("heavy", "light"), ("sequence_alignment_aa_heavy", "sequence_alignment_aa_light"))
NAMES = ("sequence_id", "id", "name")
BATCH = 10_000
LOCI = {"IGH": "heavy", "IGK": "light", "IGL": "light"}


def _batches(p: Path) -> Iterator[list[dict]]:
    """Rows of the table as dicts of strings (None where empty), a batch at a time."""
    name = p.name.lower().removesuffix(".gz")
    try:
        if _is_parquet(p):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(p)
            _check_types(p, pf.schema_arrow)
            for batch in pf.iter_batches(batch_size=BATCH):
                yield batch.to_pylist()
            return
        import pandas as pd

        sep = "\t" if name.endswith((".tsv", ".tab")) else ","
        for chunk in pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, chunksize=BATCH):
            yield [{k: (v if v != "" else None) for k, v in row.items()} for row in chunk.to_dict("records")]
    except InvalidFile:
        raise
    except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many kinds for a bad file
        raise InvalidFile(f"{p}: not a readable CSV/TSV/Parquet table ({exc})") from None


#: Columns that must hold text (or be empty) in a Parquet table.
TEXT_COLUMNS = (*(c for pair in PAIRED for c in pair), "sequence_alignment_aa", "locus")


def _check_types(p: Path, schema) -> None:  # noqa: ANN001 - a pyarrow.Schema
    """Refuse a Parquet table whose sequence or locus columns are not text (integers, bytes, lists)."""
    import pyarrow as pa

    def text(t) -> bool:  # noqa: ANN001 - a pyarrow.DataType
        if pa.types.is_dictionary(t):  # a categorical column (pandas writes these)
            return text(t.value_type)
        view = getattr(pa.types, "is_string_view", lambda _: False)
        return pa.types.is_string(t) or pa.types.is_large_string(t) or view(t) or pa.types.is_null(t)

    for field in schema:
        if field.name in TEXT_COLUMNS and not text(field.type):
            raise InvalidFile(f"{p}: column {field.name!r} is {field.type}, expected text (string)")


def _is_parquet(p: Path) -> bool:
    return p.name.lower().removesuffix(".gz").endswith(".parquet")


def count_rows(path: str | os.PathLike[str]) -> int | None:
    """How many records :func:`antibodies_from_table` gives (one per row: a Parquet file's metadata, a
    text table's lines after the header; for a progress line's total); None when it cannot be read so."""
    p = Path(path)
    try:
        if _is_parquet(p):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as fh:
            return max(0, sum(1 for line in fh if line.strip()) - 1)
    except Exception:  # noqa: BLE001 - pyarrow and gzip raise many kinds for a bad file; the run reports it
        return None


def antibodies_from_table(path: str | os.PathLike[str]) -> Iterator[AntibodyInput]:
    """The antibodies of a table, streamed (see the module docstring).

    Raises:
        InvalidFile: the file cannot be read as a table, or has none of the expected columns.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidFile(f"{p}: no such file")
    n = 0
    for rows in _batches(p):
        if not rows:
            continue
        cols = set(rows[0])
        pair = next(((h, lt) for h, lt in PAIRED if h in cols or lt in cols), None)
        unpaired = pair is None and {"sequence_alignment_aa", "locus"} <= cols
        if pair is None and not unpaired:
            raise InvalidFile(f"{p}: no heavy/light, sequence_alignment_aa_heavy/_light or sequence_alignment_aa "
                              f"+ locus columns (columns: {', '.join(sorted(map(str, cols)))})")  # fmt: skip
        name_col = next((c for c in NAMES if c in cols), None)
        for row in rows:
            n += 1
            name = str(row[name_col]) if name_col and row.get(name_col) else f"row {n}"
            yield _antibody(p, n, name, row, pair)


def _antibody(p: Path, n: int, name: str, row: dict, pair: tuple[str, str] | None) -> AntibodyInput:
    where = f"{p}: row {n} ({name})"
    try:
        if pair is not None:
            heavy, light = (row.get(c) for c in pair)
            if heavy is None and light is None:
                return AntibodyInput(name, None, None, error=EmptyRecord(f"{where}: no heavy or light sequence"))
            return AntibodyInput(name, clean_sequence(heavy, f"{where} heavy") if heavy else None,
                                 clean_sequence(light, f"{where} light") if light else None)  # fmt: skip
        locus = str(row.get("locus") or "").upper()
        seq = row.get("sequence_alignment_aa")
        if locus not in LOCI or not seq:
            why = f"{where}: locus {locus or 'missing'!r} or no sequence (IGH, IGK or IGL with sequence_alignment_aa)"
            return AntibodyInput(name, None, None, error=NotALocus(why))
        seq = clean_sequence(seq, f"{where} sequence_alignment_aa")
        return AntibodyInput(name, seq, None) if LOCI[locus] == "heavy" else AntibodyInput(name, None, seq)
    except InvalidSequence as exc:
        return AntibodyInput(name, None, None, error=exc)
