"""Read PDB/mmCIF (plain, .gz, .bz2) into backbones; put new backbones into a structure read.

gemmi parses the files; this module is the narrow adapter around it.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np

from loopfold.constants import AMINO_ACIDS, BACKBONE_ATOMS
from loopfold.errors import BadStructure, InvalidFile
from loopfold.io.model_file import remark_250
from loopfold.structure.backbone import Backbone


@dataclass(frozen=True)
class StructureFile:
    """The protein chains of a structure file's first model, with metadata.

    ``resolution`` is None when the file does not give one; ``date`` is the
    deposition date as ISO ``YYYY-MM-DD`` when known.
    """

    path: str
    pdb_id: str
    chains: tuple[Backbone, ...]
    resolution: float | None
    date: str | None


def read_text(path: str | os.PathLike[str]) -> str:
    """The decompressed text of a structure file (``.gz`` and ``.bz2`` handled)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.suffix == ".gz":
            raw = gzip.decompress(raw)
        elif p.suffix == ".bz2":
            raw = bz2.decompress(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise InvalidFile(f"{p}: cannot read ({exc})") from None
    if not raw.strip():
        raise InvalidFile(f"{p}: empty file")
    if b"\x00" in raw:
        raise InvalidFile(f"{p}: binary content, not a PDB or mmCIF text file")
    return raw.decode("utf-8", errors="replace")


def _residue_letter(name: str) -> str | None:
    """One-letter code of an amino-acid residue name (MSE -> M); None if not an amino acid."""
    info = gemmi.find_tabulated_residue(name)
    if info is None or not info.is_amino_acid():
        return None
    letter = info.one_letter_code.upper()
    return letter if letter in AMINO_ACIDS else "X"


def _backbone_of_chain(chain: gemmi.Chain, path: str) -> Backbone | None:
    """Backbone of one chain: highest-occupancy altloc per atom, amino acids only."""
    letters: list[str] = []
    ids: list[str] = []
    rows: list[np.ndarray] = []
    best_occ: list[float] = []
    seen: dict[str, int] = {}
    for res in chain:
        letter = _residue_letter(res.name)
        if letter is None:
            continue
        rid = f"{res.seqid.num}{res.seqid.icode.strip()}"
        xyz = np.full((4, 3), np.nan)
        occ = np.zeros(4)
        names = [(a.name, a.altloc) for a in res]
        if len(set(names)) != len(names):
            raise BadStructure(f"{path}: duplicate residue {chain.name} {rid} ({res.name}): atoms repeated")
        for atom in res:
            if atom.name in BACKBONE_ATOMS:
                k = BACKBONE_ATOMS.index(atom.name)
                if np.isnan(xyz[k, 0]) or atom.occ > occ[k]:
                    xyz[k] = atom.pos.tolist()
                    occ[k] = atom.occ
        mean_occ = _backbone_occupancy(res)
        if rid in seen:
            j = seen[rid]
            if letters[j] == letter and not any(a.altloc != "\x00" for a in res):
                raise BadStructure(f"{path}: duplicate residue {chain.name} {rid} ({res.name})")
            if mean_occ > best_occ[j]:  # microheterogeneity: keep the better-occupied residue
                letters[j], rows[j], best_occ[j] = letter, xyz, mean_occ
            continue
        seen[rid] = len(letters)
        letters.append(letter)
        ids.append(rid)
        rows.append(xyz)
        best_occ.append(mean_occ)
    if len(letters) < 2:
        return None
    return Backbone("".join(letters), np.stack(rows), tuple(ids), chain.name)


def iso_date(text: str | None) -> str | None:
    """An ISO ``YYYY-MM-DD`` date from ``YYYY-MM-DD`` or PDB-style ``DD-MON-YY`` text, else None."""
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d-%b-%y"):
        try:
            return datetime.datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return None


_RELEASED = re.compile(r"^REMARK 999 .*\bRELEASED (\d{4}-\d{2}-\d{2})\b", re.MULTILINE)


def release_date(text: str) -> str | None:
    """The release date a ``REMARK 999 ... RELEASED YYYY-MM-DD`` line gives (``sabdab_extra`` files), else None."""
    m = _RELEASED.search(text[:20000])
    return iso_date(m.group(1)) if m else None


def _strip_legacy_columns(text: str) -> str:
    """Cut ATOM/HETATM records after column 72 (gemmi then infers elements from atom names)."""
    return "\n".join(line[:72] if line.startswith(("ATOM", "HETATM")) else line for line in text.splitlines())


def read_structure(path: str | os.PathLike[str], pdb_id: str | None = None) -> StructureFile:
    """Read a PDB or mmCIF file's first model into protein-chain backbones.

    Raises:
        InvalidFile: unreadable, empty, binary or unparsable files.
        BadStructure: no protein chain with at least two residues, or duplicate residues.
    """
    p = str(path)
    text = read_text(path)
    st = _parse(text, p)
    if len(st) == 0:
        raise BadStructure(f"{p}: no model with atoms")
    chains = tuple(b for ch in st[0] if (b := _backbone_of_chain(ch, p)) is not None)
    if not chains:
        raise BadStructure(f"{p}: no protein chain with at least two amino-acid residues")
    header = st.info
    date = (
        iso_date(header["_pdbx_database_status.recvd_initial_deposition_date"])
        if ("_pdbx_database_status.recvd_initial_deposition_date" in header)
        else None
    ) or release_date(text)
    entry = header["_entry.id"] if "_entry.id" in header else ""
    if not entry:
        m = re.match(r"(?:pdb)?(\d[a-z0-9]{3})(?:[._]|$)", Path(p).name.lower())
        entry = m.group(1) if m else ""
    return StructureFile(
        path=p,
        pdb_id=(pdb_id or entry or Path(p).name.split(".")[0]).lower(),
        chains=chains,
        resolution=float(st.resolution) if st.resolution > 0 else None,
        date=date,
    )


def _check_coordinates(text: str, p: str) -> None:
    """Every ATOM/HETATM record's x, y, z (columns 31-54) must be numbers: gemmi reads "abc.de" as 0."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith(("ATOM", "HETATM")):
            for field in (line[30:38], line[38:46], line[46:54]):
                try:
                    ok = math.isfinite(float(field))
                except ValueError:
                    ok = False
                if not ok:
                    raise InvalidFile(f"{p}: line {lineno}: coordinate {field.strip()!r} is not a number")


def _parse(text: str, p: str) -> gemmi.Structure:
    """Parse PDB or mmCIF text with gemmi; InvalidFile naming ``p`` when it cannot, or when a
    coordinate is not a number."""
    is_cif = text.lstrip().startswith("data_")
    if not is_cif:
        _check_coordinates(text, p)
    try:
        if is_cif:
            st = gemmi.make_structure_from_block(gemmi.cif.read_string(text)[0])
        else:
            try:
                st = gemmi.read_pdb_string(text)
            except (RuntimeError, ValueError):
                # legacy files keep a segment id or line number in columns 73-80
                st = gemmi.read_pdb_string(_strip_legacy_columns(text))
    except (RuntimeError, ValueError, IndexError) as exc:
        raise InvalidFile(f"{p}: not a parsable PDB/mmCIF file ({exc})") from None
    if is_cif and len(st):  # mmCIF coordinates that are not numbers come back as NaN
        for chain in st[0]:
            for res in chain:
                for atom in res:
                    if not (math.isfinite(atom.pos.x) and math.isfinite(atom.pos.y) and math.isfinite(atom.pos.z)):
                        raise InvalidFile(f"{p}: chain {chain.name} residue {res.seqid.num}{res.seqid.icode.strip()}"
                                          f" atom {atom.name}: coordinates are not numbers")  # fmt: skip
    return st


def structure_with_backbones(
    path: str | os.PathLike[str],
    replacements: dict[str, dict[str, np.ndarray]],
    remarks: list[str] | None = None,
    b_factors: dict[str, dict[str, float]] | None = None,
    renamed: dict[str, str] | None = None,
) -> str:
    """PDB text of a structure's first model with some residues' backbones replaced.

    ``replacements`` maps chain id -> residue id (``"100A"``) -> ``[4, 3]`` N, CA, C, O or ``[5, 3]``
    with CB (NaN: none, as for a glycine). A replaced residue keeps its name and loses its side
    chain (only the new backbone and CB are written), with B-factor ``b_factors[chain][residue id]``
    (0 when not given); every other atom is written as read.
    Chain ids that PDB cannot hold (more than one character, from mmCIF) are written as free
    one-letter ids, never merged: the mapping goes into ``renamed`` and a REMARK line.
    """
    p = str(path)
    st = _parse(read_text(path), p)
    while len(st) > 1:
        del st[1]
    for chain in st[0]:
        _keep_one_residue_per_number(chain)
        todo = replacements.get(chain.name, {})
        for res in chain:
            rid = f"{res.seqid.num}{res.seqid.icode.strip()}"
            if rid not in todo:
                continue
            while len(res):
                del res[0]
            for k, name in enumerate((*BACKBONE_ATOMS, "CB")[: len(todo[rid])]):
                if not np.isfinite(todo[rid][k]).all():
                    continue
                atom = gemmi.Atom()
                atom.name = name
                atom.element = gemmi.Element(name[0])
                atom.pos = gemmi.Position(*map(float, todo[rid][k]))
                atom.occ = 1.0
                atom.b_iso = float((b_factors or {}).get(chain.name, {}).get(rid, 0.0))
                res.add_atom(atom)
    st.setup_entities()
    mapping = pdb_chain_ids([ch.name for ch in st[0]])
    for chain in st[0]:
        chain.name = mapping.get(chain.name, chain.name)
    if renamed is not None:
        renamed.update(mapping)
    remarks = [*(remarks or []), *(f"CHAIN {old} WRITTEN AS {new}" for old, new in mapping.items())]
    opts = gemmi.PdbWriteOptions()
    opts.cryst1_record = st.cell.is_crystal()
    return remark_250(remarks) + st.make_pdb_string(opts)


def pdb_chain_ids(names: list[str]) -> dict[str, str]:
    """For chain ids a PDB file cannot hold (longer than one character): old id -> a free one-letter
    id (A-Z, a-z, 0-9, in order), distinct from every id kept. Empty when all ids fit.

    Raises:
        BadStructure: more chains than one-letter ids.
    """
    long = [n for n in dict.fromkeys(names) if len(n) > 1]
    if not long:
        return {}
    used = {n for n in names if len(n) == 1}
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" if c not in used]
    if len(free) < len(long):
        raise BadStructure(f"{len(set(names))} chains: too many for one-letter PDB chain ids; write mmCIF")
    return dict(zip(long, free, strict=False))


def _backbone_occupancy(res: gemmi.Residue) -> float:
    """Mean over N, CA, C, O of each atom's best occupancy (0 for a missing atom)."""
    occ = dict.fromkeys(BACKBONE_ATOMS, 0.0)
    for atom in res:
        if atom.name in occ:
            occ[atom.name] = max(occ[atom.name], atom.occ)
    return sum(occ.values()) / len(occ)


def _keep_one_residue_per_number(chain: gemmi.Chain) -> None:
    """Microheterogeneity (two amino-acid types at one number): keep the residue the backbone reader
    keeps (higher mean backbone occupancy, the first on a tie), so no number appears twice."""
    best: dict[str, tuple[float, int]] = {}
    drop = []
    for i, res in enumerate(chain):
        if _residue_letter(res.name) is None:
            continue  # ligands and waters keep their numbers
        rid = f"{res.seqid.num}{res.seqid.icode.strip()}"
        occ = _backbone_occupancy(res)
        if rid in best:
            keep_new = occ > best[rid][0]
            drop.append(best[rid][1] if keep_new else i)
            if keep_new:
                best[rid] = (occ, i)
        else:
            best[rid] = (occ, i)
    for i in sorted(drop, reverse=True):
        del chain[i]
