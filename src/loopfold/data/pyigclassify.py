"""PyIgClassify tables (North et al. 2011) -> loop records.

``dihedralOutputMatchToPaperClustersMay2012.csv``: entry id then phi, psi,
omega per loop residue; ``AbMatchToPaperClustersMay2012.csv``: entry id, loop
sequence, cluster. Joined on the entry id (``3JUYA_H3``: PDB 3juy, chain A, H3).
Loops follow the North definitions; no stems or coordinates are given.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from loopfold.constants import AMINO_ACIDS
from loopfold.data.records import LoopRecord
from loopfold.errors import InvalidFile

DIHEDRAL_FILE = "dihedralOutputMatchToPaperClustersMay2012.csv"
SEQUENCE_FILE = "AbMatchToPaperClustersMay2012.csv"


def find_tables(path: Path) -> tuple[Path, Path]:
    """The dihedral and sequence tables under ``path`` (a folder, or the dihedral file)."""
    folder = path.parent if path.is_file() else path
    for cand in (folder, folder / "csv", folder / "database" / "csv"):
        if (cand / DIHEDRAL_FILE).is_file() and (cand / SEQUENCE_FILE).is_file():
            return cand / DIHEDRAL_FILE, cand / SEQUENCE_FILE
    raise InvalidFile(f"{path}: no {DIHEDRAL_FILE} with {SEQUENCE_FILE} beside it")


def read_pyigclassify(path: str | os.PathLike[str]) -> tuple[list[LoopRecord], list[tuple[str, str]]]:
    """Loop records from the PyIgClassify tables, and ``(entry, reason)`` for skipped rows."""
    dihedrals, sequences = find_tables(Path(path))
    seqs: dict[str, tuple[str, str]] = {}
    with open(sequences, newline="") as fh:
        for row in csv.reader(fh):
            if row and not row[0].startswith("#") and len(row) >= 5:
                seqs[row[0]] = (row[1], row[4])
    records, skipped = [], []
    with open(dihedrals, newline="") as fh:
        for row in csv.reader(fh):
            if not row:
                continue
            entry = row[0]
            if entry not in seqs:
                skipped.append((entry, "no sequence row"))
                continue
            seq = seqs[entry][0]
            try:
                values = [float(v) for v in row[1:] if v.strip()]
            except ValueError:
                skipped.append((entry, "non-numeric dihedral"))
                continue
            if len(values) != 3 * len(seq):
                skipped.append((entry, f"{len(values)} dihedrals for {len(seq)} residues"))
                continue
            if any(a not in AMINO_ACIDS for a in seq):
                skipped.append((entry, "non-standard residue"))
                continue
            pdb, chain_cdr = entry[:4].lower(), entry[4:]
            chain, cdr = chain_cdr.split("_", 1)
            clean = [v if math.isfinite(v) and abs(v) <= 360 else math.nan for v in values]
            records.append(
                LoopRecord(
                    loop_id=f"pyigclassify:{entry}",
                    source="pyigclassify",
                    pdb_id=pdb,
                    chain=chain,
                    chain_type=cdr[0],
                    cdr=cdr,
                    definition="north",
                    sequence=seq,
                    stem_n="",
                    stem_c="",
                    phi=clean[0::3],
                    psi=clean[1::3],
                    omega=clean[2::3],
                )
            )
    return records, skipped
