"""The loop record: one CDR loop (with stems) and its backbone torsions.

A loop's *window* is ``stem_n + sequence + stem_c``; every per-residue list
(``phi``, ``psi``, ``omega``, ``residue_ids``) and ``coords`` cover the window.
Angles are in degrees, NaN where undefined (chain ends, breaks, missing atoms,
or not given by the source, e.g. omega in the seed pickles).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SCHEMA_VERSION = "1"


@dataclass
class LoopRecord:
    """One CDR loop.

    Attributes:
        loop_id: unique id, ``{source}:{pdb}_{chain}_{cdr}`` or source-specific.
        source: where it came from (``rosetta``, ``pyigclassify``, ``seed``, ``rab``, a folder name).
        pdb_id: lower-case PDB id, or None.
        chain: chain id in the source file.
        chain_type: ``H`` or ``L``.
        cdr: ``H1`` … ``L3``.
        definition: ``chothia``, ``imgt`` or ``north``.
        sequence: the loop's residues (no stems).
        stem_n, stem_c: stem residues before and after the loop.
        phi, psi, omega: per window residue, degrees, NaN where undefined.
        coords: ``[W, 4, 3]`` N, CA, C, O in Å, or None when the source has none.
        chain_sequence: the whole chain's sequence when known.
        loop_start: 0-based index of the loop's first residue in ``chain_sequence``.
        residue_ids: author residue numbers of the window, when known.
        resolution: Å, when known. date: ISO date, when known.
        has_chain_break, has_missing_atoms: quality flags over the window.
        source_split: the split the source itself assigns (seed pickles), if any.
    """

    loop_id: str
    source: str
    pdb_id: str | None
    chain: str | None
    chain_type: str
    cdr: str
    definition: str
    sequence: str
    stem_n: str
    stem_c: str
    phi: list[float]
    psi: list[float]
    omega: list[float]
    coords: np.ndarray | None = None
    chain_sequence: str | None = None
    loop_start: int | None = None
    residue_ids: list[str] | None = None
    resolution: float | None = None
    date: str | None = None
    has_chain_break: bool = False
    has_missing_atoms: bool = False
    source_split: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def window(self) -> str:
        """``stem_n + sequence + stem_c``."""
        return self.stem_n + self.sequence + self.stem_c

    def to_row(self) -> dict:
        """A flat dict for the Parquet store (coords flattened to ``W*12`` floats)."""
        row = asdict(self)
        row.pop("extra")
        row["coords"] = None if self.coords is None else np.asarray(self.coords).reshape(-1).tolist()
        for key in ("phi", "psi", "omega"):
            row[key] = [float(v) for v in row[key]]
        return row
