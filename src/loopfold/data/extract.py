"""Structure files -> CDR loop records, with a reason for everything skipped.

Two numbering modes: ``sequence`` (the default, and the path prediction uses)
numbers each chain's sequence (anarcism, validated against the conserved
residues, anarcii as second opinion; IMGT) and works with any numbering and
chain ids; ``file`` trusts the residue numbers in the file (Chothia, as in the
Rosetta antibody database; checked against the conserved Cys/Trp) and takes the
chain type from the chain id (H or L). ``auto`` picks ``file`` for files whose
name contains ``chothia``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loopfold.constants import CDRS, CONSERVED_CHOTHIA, DEFAULT_STEMS
from loopfold.data.records import LoopRecord
from loopfold.errors import LoopfoldError, NumberingError
from loopfold.io.pdb import StructureFile, iso_date, read_structure
from loopfold.numbering.anarci import number_sequence
from loopfold.numbering.cdr import LoopSlice, locate_cdr
from loopfold.structure.backbone import Backbone
from loopfold.structure.geometry import backbone_torsions

STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")


@dataclass(frozen=True)
class ExtractOptions:
    """How loops are cut from structures."""

    definition: str = "north"
    stems: int = DEFAULT_STEMS
    numbering: str = "sequence"  # sequence | file | auto
    source: str = "pdb"


@dataclass
class ExtractResult:
    """Loops from one file, plus skipped items as ``(what, reason)`` pairs."""

    path: str
    records: list[LoopRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


def is_structure_file(path: Path) -> bool:
    """True for ``.pdb/.ent/.cif/.mmcif`` files, also ``.gz`` or ``.bz2`` compressed."""
    name = path.name.lower()
    for comp in (".gz", ".bz2"):
        if name.endswith(comp):
            name = name[: -len(comp)]
    return path.is_file() and name.endswith(STRUCTURE_SUFFIXES)


def _numbering_mode(path: str, options: ExtractOptions) -> str:
    if options.numbering != "auto":
        return options.numbering
    return "file" if "chothia" in Path(path).name.lower() else "sequence"


def file_numbering(bb: Backbone) -> tuple[str, list[int], list[int]] | str:
    """(chain type, indices, numbers) from Chothia numbers in the file, or a skip reason."""
    ctype = bb.chain_id.upper()
    if ctype not in ("H", "L"):
        return f"chain {bb.chain_id!r} is not named H or L in a numbered file"
    numbers = []
    for rid in bb.residue_ids:
        m = re.match(r"-?\d+", rid)
        if m is None:
            return f"chain {bb.chain_id}: residue id {rid!r} is not a number"
        numbers.append(int(m.group()))
    by_number = {n: bb.sequence[i] for i, n in reversed(list(enumerate(numbers)))}
    bad = [f"{aa}{pos}" for pos, aa in CONSERVED_CHOTHIA[ctype].items() if by_number.get(pos) != aa]
    if len(bad) >= 2:  # one unusual residue happens in real antibodies; two mean misnumbering
        return f"chain {bb.chain_id}: numbering check failed, expected conserved {', '.join(bad)}"
    return ctype, list(range(len(bb))), numbers


def _window_record(
    sf: StructureFile,
    bb: Backbone,
    torsions: np.ndarray,
    loop: LoopSlice,
    chain_type: str,
    options: ExtractOptions,
    meta: dict,
) -> LoopRecord | str:
    lo, hi = loop.start - options.stems, loop.stop + options.stems
    if lo < 0 or hi > len(bb):
        return f"{loop.cdr}: stems run past the chain end"
    window = bb.slice(lo, hi)
    if "X" in window.sequence:
        return f"{loop.cdr}: non-standard residue in the loop window"
    tors = torsions[lo:hi]
    breaks = bool(window.breaks().any())
    return LoopRecord(
        loop_id=f"{options.source}:{meta.get('pdb_id', sf.pdb_id)}_{bb.chain_id}_{loop.cdr}",
        source=options.source,
        pdb_id=meta.get("pdb_id", sf.pdb_id),
        chain=bb.chain_id,
        chain_type=chain_type,
        cdr=loop.cdr,
        definition=options.definition,
        sequence=bb.sequence[loop.start : loop.stop],
        stem_n=bb.sequence[lo : loop.start],
        stem_c=bb.sequence[loop.stop : hi],
        phi=tors[:, 0].tolist(),
        psi=tors[:, 1].tolist(),
        omega=tors[:, 2].tolist(),
        coords=window.coords,
        chain_sequence=bb.sequence,
        loop_start=loop.start,
        residue_ids=list(window.residue_ids),
        resolution=meta.get("resolution", sf.resolution),
        date=meta.get("date", sf.date),
        has_chain_break=breaks,
        has_missing_atoms=bool(window.missing_atoms().any()),
    )


def extract_file(path: str, options: ExtractOptions, meta: dict | None = None) -> ExtractResult:
    """Read one structure file and cut every CDR loop it holds.

    Never raises for bad input: a file that cannot be used comes back with
    ``error`` set; chains and loops that cannot be used are listed in ``skipped``.
    """
    result = ExtractResult(path=path)
    meta = meta or {}
    try:
        sf = read_structure(path)
    except LoopfoldError as exc:
        result.error = str(exc)
        return result
    mode = _numbering_mode(path, options)
    scheme = "chothia" if mode == "file" else "imgt"
    for bb in sf.chains:
        torsions = backbone_torsions(bb.coords)
        if mode == "file":
            numbered = file_numbering(bb)
            if isinstance(numbered, str):
                result.skipped.append((f"chain {bb.chain_id}", numbered))
                continue
            domains = [numbered]
        else:
            try:
                doms = number_sequence(bb.sequence, name=f"{Path(path).name}:{bb.chain_id}")
            except NumberingError as exc:
                result.skipped.append((f"chain {bb.chain_id}", f"not numbered ({exc})"))
                continue
            domains = [(d.chain_type, list(d.indices), [p for p, _ in d.positions]) for d in doms]
        for ctype, indices, numbers in domains:
            for cdr in (c for c in CDRS if c[0] == ctype):
                loop = locate_cdr(indices, numbers, cdr, options.definition, scheme)
                if loop is None:
                    result.skipped.append((f"{bb.chain_id} {cdr}", "CDR or its anchors not found"))
                    continue
                rec = _window_record(sf, bb, torsions, loop, ctype, options, meta)
                if isinstance(rec, str):
                    result.skipped.append((f"{bb.chain_id} {cdr}", rec))
                else:
                    if len(domains) > 1:
                        rec.loop_id += f"_d{indices[0]}"
                    result.records.append(rec)
    return result


def rosetta_metadata(folder: Path) -> dict[str, dict]:
    """Resolution and date per file from the Rosetta database's ``info/cdr_info``, if present."""
    table = folder.parent / "info" / "cdr_info"
    out: dict[str, dict] = {}
    if not table.is_file():
        return out
    for line in table.read_text(errors="replace").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#") or len(parts) < 16:
            continue
        try:
            res = float(parts[1])
        except ValueError:
            res = None
        # the date column (``DD-MON-YY``) follows BioType; take the first field that reads as a date
        date = next((d for f in parts[14:] if (d := iso_date(f)) is not None), None)
        out[parts[0]] = {"resolution": res, "date": date, "pdb_id": parts[0][3:7]}
    return out


def docking_metadata(folder: Path) -> dict[str, dict]:
    """PDB id of each docking-benchmark antibody file (``*_r_u`` come from another entry)."""
    table = folder.parent / "antibody_antigen_cases.txt"
    out: dict[str, dict] = {}
    if not table.is_file():
        return out
    for line in table.read_text(errors="replace").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) < 2 or "_" not in cols[0]:
            continue
        case = cols[0].split("_")[0].upper()
        out[f"{case}_r_b.pdb"] = {"pdb_id": case.lower()}
        out[f"{case}_r_u.pdb"] = {"pdb_id": cols[1].split("_")[0].lower()}
    return out


def manifest_metadata(folder: Path) -> dict[str, dict]:
    """PDB id, release date and resolution per file from a ``manifest.csv`` in or beside the
    folder (``sabdab_extra``: columns file, pdb, release, resolution)."""
    import csv

    out: dict[str, dict] = {}
    for table in (folder / "manifest.csv", folder.parent / "manifest.csv"):
        if not table.is_file():
            continue
        with open(table, newline="", errors="replace") as fh:
            for row in csv.DictReader(fh):
                name = (row.get("file") or "").removesuffix(".gz").removesuffix(".bz2")
                if not name or not row.get("pdb"):
                    continue
                try:
                    res = float(row.get("resolution") or "nan")
                except ValueError:
                    res = float("nan")
                out[name] = {"pdb_id": row["pdb"].lower(), "date": iso_date(row.get("release")),
                             "resolution": None if res != res else res}  # fmt: skip
        break
    return out


def source_name(folder: Path) -> str:
    """The ``source`` of loops read from a folder: its name, or its parent's for a ``structures`` folder
    that a ``manifest.csv`` beside it describes (``sabdab_extra/structures`` -> ``sabdab_extra``)."""
    if not (folder / "manifest.csv").is_file() and (folder.parent / "manifest.csv").is_file():
        return folder.parent.name
    return folder.name


def folder_metadata(folder: Path) -> dict[str, dict]:
    """Per-file metadata found beside a structure folder (Rosetta, docking benchmark, ``manifest.csv``)."""
    meta = rosetta_metadata(folder)
    for name, extra in (*docking_metadata(folder).items(), *manifest_metadata(folder).items()):
        meta.setdefault(name, {}).update(extra)
    return meta


def metadata_for(path: str, meta: dict[str, dict]) -> dict:
    """The metadata entry of a file, matched by its name without compression suffix."""
    name = os.path.basename(path)
    for comp in (".gz", ".bz2"):
        name = name.removesuffix(comp)
    return meta.get(name, {})
