"""One copy of each structure across loop sources (``loopfold data merge --dedupe``).

Sources are ranked in the order they are given (the first wins). A structure
(all loops of one source and PDB id) of a later source is dropped when an
earlier source holds the same PDB id, or a chain with the same sequence: the
same crystal or the same antibody again, which would otherwise sit in two
split parts or give a loop two partners.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class DedupeReport:
    """Structures and loops dropped, by reason, and the loops kept."""

    kept_loops: int = 0
    dropped_structures: dict[str, int] = field(default_factory=lambda: {"same_pdb_id": 0, "same_chain_sequence": 0})
    dropped_loops: int = 0


def dedupe_sources(df: pd.DataFrame, rank: list[int]) -> tuple[np.ndarray, DedupeReport]:
    """Mask of rows to keep; ``rank[i]`` is the position of row i's input (lower wins)."""
    ranks = np.asarray(rank)
    pdb = df["pdb_id"].fillna("").astype(str).str.lower().str[:4].to_numpy()
    seqs = df["chain_sequence"].to_numpy()
    keep = np.ones(len(df), dtype=bool)
    report = DedupeReport()
    seen_ids: set[str] = set()
    seen_seqs: set[str] = set()
    for r in sorted(set(ranks.tolist())):
        rows = np.nonzero(ranks == r)[0]
        new_ids: set[str] = set()
        new_seqs: set[str] = set()
        by_structure: dict[str, list[int]] = {}
        for i in rows:
            by_structure.setdefault(pdb[i] or f"row{i}", []).append(int(i))
        for pid, idx in by_structure.items():
            chains = {s for s in seqs[idx] if isinstance(s, str) and s}
            if pid in seen_ids:
                report.dropped_structures["same_pdb_id"] += 1
            elif chains & seen_seqs:
                report.dropped_structures["same_chain_sequence"] += 1
            else:
                new_ids.add(pid)
                new_seqs |= chains
                continue
            keep[idx] = False
        seen_ids |= new_ids
        seen_seqs |= new_seqs
    report.kept_loops = int(keep.sum())
    report.dropped_loops = int((~keep).sum())
    return keep, report
