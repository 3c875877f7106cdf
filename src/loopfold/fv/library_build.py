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
a chain break inside a framework stretch are dropped from an entry. Several
folders can be given (the Rosetta database, ``sabdab_extra``): a PDB id already
read from an earlier folder is skipped. With ``test_from`` (a time split),
structures released on or after that date are left out, and so is every
structure whose CDR-H3 is >= ``identity`` identical to one of theirs. An entry
with a VH and no VL whose FR2 hallmarks are a VHH's is marked a nanobody.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.constants import CDRS
from loopfold.data.extract import folder_metadata, is_structure_file, metadata_for
from loopfold.data.identity import max_identity
from loopfold.data.splits import Exclusions, similar_to_exclusions
from loopfold.errors import LoopfoldError
from loopfold.fv.library import CHAINS, FrameworkLibrary, clean_entry, closest_contact, entry_from_chains
from loopfold.io.pdb import read_structure
from loopfold.numbering.anarci import number_sequences
from loopfold.numbering.cdr import locate_cdr
from loopfold.numbering.vhh import is_vhh


def _read_entry(job: tuple[str, dict]) -> tuple[str, dict] | tuple[str, str]:
    """One file's entry (residues, coords, resolution, date, loops) or the reason it gives none."""
    path, meta = job
    try:
        sf = read_structure(path, meta.get("pdb_id"))
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
        coords[c], dev_c = clean_entry(coords[c], ct)
        residues[c, ~np.isfinite(coords[c]).all((1, 2))] = 0
        dev = max(dev, dev_c)
    resolution = meta.get("resolution", sf.resolution)
    nanobody = "L" not in chains and is_vhh(chains["H"][0], chains["H"][2])
    return path, {"bond_deviation": dev, "contact": closest_contact(residues, coords), "pdb_id": sf.pdb_id,
                  "residues": residues, "coords": coords, "date": meta.get("date", sf.date) or "",
                  "resolution": np.nan if resolution is None else resolution, "loops": loops,
                  "nanobody": nanobody}  # fmt: skip


def build_library(
    folders: str | Path | list[str | Path], exclusions: Exclusions | None = None, identity: float = 0.7,
    workers: int | None = None, max_bond_deviation: float = 0.05, min_contact: float = 2.3,
    test_from: str | None = None,
) -> tuple[FrameworkLibrary, dict[str, int]]:
    """The library of one or more structure folders, and counts of what was left out and why."""
    jobs = []
    for folder in folders if isinstance(folders, list) else [folders]:
        meta = folder_metadata(Path(folder))
        jobs += [(str(p), metadata_for(str(p), meta)) for p in sorted(Path(folder).iterdir()) if is_structure_file(p)]
    entries: list[dict] = []
    report = {"files": len(jobs), "unusable": 0, "same_pdb_id": 0, "excluded_id": 0, "no_h3": 0, "recent": 0,
              "bond_geometry": 0, "excluded_similar_loop": 0, "duplicate": 0}  # fmt: skip
    seen: set[str] = set()
    recent_h3: list[str] = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for _, got in pool.map(_read_entry, jobs, chunksize=16):
            if isinstance(got, str):
                report["unusable"] += 1
                continue
            h3 = [seq for cdr, seq in got["loops"] if cdr == "H3"]
            if got["pdb_id"] in seen:
                report["same_pdb_id"] += 1
            elif exclusions is not None and got["pdb_id"][:4] in exclusions.pdb_ids:
                report["excluded_id"] += 1
            elif test_from is not None and got["date"] >= test_from:
                report["recent"] += 1
                recent_h3 += h3
            elif not h3:  # which antibody it is cannot be checked
                report["no_h3"] += 1
            elif got["bond_deviation"] > max_bond_deviation or got["contact"] < min_contact:
                report["bond_geometry"] += 1
            else:
                entries.append(got)
            seen.add(got["pdb_id"])
    if entries and (exclusions is not None or recent_h3):
        loops = pd.DataFrame([(k, cdr, seq) for k, e in enumerate(entries) for cdr, seq in e["loops"] if cdr == "H3"],
                             columns=["entry", "cdr", "sequence"]).assign(definition="north")  # fmt: skip
        close = np.zeros(len(loops), dtype=bool)
        if exclusions is not None:
            close |= similar_to_exclusions(loops, exclusions, identity)
        if recent_h3:
            close |= max_identity(loops["sequence"].tolist(), recent_h3) >= identity
        drop = set(loops.loc[close, "entry"])
        report["excluded_similar_loop"] = len(drop)
        entries = [e for k, e in enumerate(entries) if k not in drop]
    entries = _unique(entries)
    report["duplicate"] = report["files"] - sum(v for k, v in report.items() if k not in ("files", "duplicate")) \
        - len(entries)  # fmt: skip
    report["entries"] = len(entries)
    report["nanobody_entries"] = sum(bool(e["nanobody"]) for e in entries)
    if not entries:
        raise LoopfoldError(f"{folders}: no structure gave a framework entry")
    lib = FrameworkLibrary(
        ids=np.array([e["pdb_id"] for e in entries]),
        residues=np.stack([e["residues"] for e in entries]),
        coords=_centred(np.stack([e["coords"] for e in entries])),
        resolution=np.array([e["resolution"] for e in entries], dtype=np.float32),
        h3=np.array([next(seq for cdr, seq in e["loops"] if cdr == "H3") for e in entries]),
        nanobody=np.array([bool(e["nanobody"]) for e in entries]),
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
