"""The Rosetta Antibody Benchmark JSON -> loop records.

Each CDR entry holds the IMGT CDR plus two anchor residues each side, with N,
CA and C coordinates (no O: the O column is NaN). Torsions are measured from
those coordinates, so the anchors' outer angles are undefined.
"""

from __future__ import annotations

import json
import os

import numpy as np

from loopfold.constants import AMINO_ACIDS
from loopfold.data.records import LoopRecord
from loopfold.errors import InvalidFile
from loopfold.structure.geometry import backbone_torsions

RAB_ANCHORS = 2


def read_rab_json(path: str | os.PathLike[str]) -> tuple[list[LoopRecord], list[tuple[str, str]]]:
    """Loop records from the RAB JSON file, and ``(loop, reason)`` for skipped loops."""
    try:
        with open(path) as fh:
            entries = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidFile(f"{path}: not a readable RAB JSON file ({exc})") from None
    if not isinstance(entries, list):
        raise InvalidFile(f"{path}: expected a JSON list of antibodies")
    records, skipped = [], []
    for ab in entries:
        try:
            pdb = str(ab["pdb"]).lower()
            cdrs = ab["cdrs"]
        except (KeyError, TypeError):
            raise InvalidFile(f"{path}: an entry lacks 'pdb' or 'cdrs'") from None
        for cdr, entry in cdrs.items():
            name = f"{pdb} {cdr}"
            seq = str(entry.get("sequence", "")).upper()
            try:
                n, ca, c = (np.asarray(entry[k], dtype=np.float64) for k in ("N", "CA", "C"))
            except (KeyError, ValueError):
                skipped.append((name, "missing or malformed N/CA/C coordinates"))
                continue
            if not (n.shape == ca.shape == c.shape == (len(seq), 3)) or len(seq) <= 2 * RAB_ANCHORS:
                skipped.append((name, f"coordinates do not match the {len(seq)}-residue sequence"))
                continue
            if any(a not in AMINO_ACIDS for a in seq):
                skipped.append((name, "non-standard residue"))
                continue
            coords = np.stack([n, ca, c, np.full_like(n, np.nan)], axis=1)
            tors = backbone_torsions(coords)
            chain = ab.get("heavy_chain") if cdr.startswith("H") else ab.get("light_chain")
            records.append(
                LoopRecord(
                    loop_id=f"rab:{pdb}_{cdr}",
                    source="rab",
                    pdb_id=pdb,
                    chain=chain,
                    chain_type=cdr[0],
                    cdr=cdr,
                    definition="imgt",
                    sequence=seq[RAB_ANCHORS:-RAB_ANCHORS],
                    stem_n=seq[:RAB_ANCHORS],
                    stem_c=seq[-RAB_ANCHORS:],
                    phi=tors[:, 0].tolist(),
                    psi=tors[:, 1].tolist(),
                    omega=tors[:, 2].tolist(),
                    coords=coords,
                    has_chain_break=bool((np.linalg.norm(n[1:] - c[:-1], axis=1) > 2.0).any()),
                    source_split="test",
                )
            )
    return records, skipped
