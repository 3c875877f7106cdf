"""Build the framework library from a folder of Fv structures (``loopfold data frameworks``).

Every chain is numbered from its sequence with validation (as ``predict`` does);
a structure gives one entry from its first VH and first VL domain. Left out:
structures whose PDB id is excluded, structures whose CDR-H3 cannot be found, structures of the same or a related
antibody (CDR-H3, North, >= ``identity`` identical to an excluded H3: the rule
training follows, applied to the loop that identifies an antibody; the library
stores no loop residues, so no loop reaches a model through it), and copies:
entries with the same framework residues as a better-resolved one, and entries
whose framework backbone has a bond length more than ``max_bond_deviation``
from ideal or two heavy atoms closer than ``min_contact`` (their errors would
reach every model built on them). Residues after
a chain break inside a framework stretch are dropped from an entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.constants import CDRS
from loopfold.data.extract import is_structure_file
from loopfold.data.splits import Exclusions, similar_to_exclusions
from loopfold.errors import LoopfoldError
from loopfold.fv.library import CHAINS, FrameworkLibrary, clean_entry, closest_contact, entry_from_chains
from loopfold.io.pdb import read_structure
from loopfold.numbering.anarci import number_sequences
from loopfold.numbering.cdr import locate_cdr


def _read_entry(path: str) -> tuple[str, dict] | tuple[str, str]:
    """One file's entry (residues, coords, resolution, loops) or the reason it gives none."""
    try:
        sf = read_structure(path)
    except LoopfoldError as exc:
        return path, str(exc)
    numbered = number_sequences([(f"{path}:{bb.chain_id}", bb.sequence) for bb in sf.chains], workers=1)
    chains: dict = {}
    loops: list[tuple[str, str]] = []
    for bb, doms in zip(sf.chains, numbered, strict=True):
        if isinstance(doms, LoopfoldError):
            continue
        for d in doms:
            if d.chain_type in chains:
                continue
            chains[d.chain_type] = (bb.sequence, bb.coords, d)
            numbers = [p for p, _ in d.positions]
            for cdr in (c for c in CDRS if c[0] == d.chain_type):
                sl = locate_cdr(d.indices, numbers, cdr, "north", d.scheme)
                if sl is not None:
                    loops.append((cdr, bb.sequence[sl.start : sl.stop]))
    if "H" not in chains:
        return path, "no heavy-chain variable domain"
    residues, coords = entry_from_chains(chains)
    dev = 0.0
    for c, ct in enumerate(CHAINS):
        coords[c], d = clean_entry(coords[c], ct)
        residues[c, ~np.isfinite(coords[c]).all((1, 2))] = 0
        dev = max(dev, d)
    return path, {"bond_deviation": dev, "contact": closest_contact(residues, coords), "pdb_id": sf.pdb_id,
                  "residues": residues, "coords": coords,
                  "resolution": np.nan if sf.resolution is None else sf.resolution, "loops": loops}  # fmt: skip


def build_library(
    folder: str | Path, exclusions: Exclusions | None = None, identity: float = 0.7, workers: int | None = None,
    max_bond_deviation: float = 0.05, min_contact: float = 2.3,
) -> tuple[FrameworkLibrary, dict[str, int]]:
    """The library of a structure folder, and counts of what was left out and why."""
    files = sorted(str(p) for p in Path(folder).iterdir() if is_structure_file(p))
    entries: list[dict] = []
    report = {"files": len(files), "unusable": 0, "excluded_id": 0, "no_h3": 0, "bond_geometry": 0,
              "excluded_similar_loop": 0, "duplicate": 0}  # fmt: skip
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for _, got in pool.map(_read_entry, files, chunksize=16):
            if isinstance(got, str):
                report["unusable"] += 1
            elif exclusions is not None and got["pdb_id"][:4] in exclusions.pdb_ids:
                report["excluded_id"] += 1
            elif not any(cdr == "H3" for cdr, _ in got["loops"]):  # which antibody it is cannot be checked
                report["no_h3"] += 1
            elif got["bond_deviation"] > max_bond_deviation or got["contact"] < min_contact:
                report["bond_geometry"] += 1
            else:
                entries.append(got)
    if exclusions is not None and entries:
        loops = pd.DataFrame([(k, cdr, seq) for k, e in enumerate(entries) for cdr, seq in e["loops"] if cdr == "H3"],
                             columns=["entry", "cdr", "sequence"]).assign(definition="north")  # fmt: skip
        close = set(loops.loc[similar_to_exclusions(loops, exclusions, identity), "entry"])
        report["excluded_similar_loop"] = len(close)
        entries = [e for k, e in enumerate(entries) if k not in close]
    entries = _unique(entries)
    report["duplicate"] = report["files"] - report["unusable"] - report["excluded_id"] - report["no_h3"] - \
        report["bond_geometry"] - report["excluded_similar_loop"] - len(entries)  # fmt: skip
    report["entries"] = len(entries)
    if not entries:
        raise LoopfoldError(f"{folder}: no structure gave a framework entry")
    lib = FrameworkLibrary(
        ids=np.array([e["pdb_id"] for e in entries]),
        residues=np.stack([e["residues"] for e in entries]),
        coords=_centred(np.stack([e["coords"] for e in entries])),
        resolution=np.array([e["resolution"] for e in entries], dtype=np.float32),
        h3=np.array([next(seq for cdr, seq in e["loops"] if cdr == "H3") for e in entries]),
    )
    return lib, report


def _unique(entries: Iterable[dict]) -> list[dict]:
    """One entry per distinct pair of framework sequences: the best resolved."""
    best: dict[bytes, dict] = {}
    for e in entries:
        key = e["residues"].tobytes()
        res = e["resolution"] if np.isfinite(e["resolution"]) else 99.0
        old = best.get(key)
        if old is None or res < (old["resolution"] if np.isfinite(old["resolution"]) else 99.0):
            best[key] = e
    return sorted(best.values(), key=lambda e: e["pdb_id"])


def _centred(coords: np.ndarray) -> np.ndarray:
    """Each entry moved so its framework CA atoms are centred at the origin."""
    ca = coords[:, :, :, 1]
    centre = np.nanmean(ca.reshape(len(coords), -1, 3), axis=1)
    return (coords - centre[:, None, None, None, :]).astype(np.float32)
