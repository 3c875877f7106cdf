"""The geometry check (:mod:`loopfold.structure.validate`) of a structure file's text: its protein
chains' atoms read with gemmi (refined models, ``--structure`` outputs, crystal structures)."""

from __future__ import annotations

import gemmi
import numpy as np

from loopfold.constants import BACKBONE_ATOMS, THREE_TO_ONE
from loopfold.structure.validate import CLASH_DISTANCE, ChainAtoms, GeometryCheck, RamaTable, check


def structure_chains(st: gemmi.Structure, side_chains: bool = True) -> list[ChainAtoms]:
    """The amino-acid residues of the first model, per chain; hydrogens left out; residues are bonded
    to the next one in the chain (so a missing residue shows as a gap). Without ``side_chains`` only
    N, CA, C, O and CB are read (the atoms of an unrefined model)."""
    out = []
    for ch in st[0]:
        residues = [r for r in ch if r.name in THREE_TO_ONE or r.name == "MSE"]
        if not residues:
            continue
        n = len(residues)
        bb, cb = np.full((n, 4, 3), np.nan), np.full((n, 3), np.nan)
        extra, owner, sg = [], [], []
        for i, r in enumerate(residues):
            for atom in r:
                if atom.is_hydrogen() or (atom.altloc not in ("\0", " ", "A")):
                    continue
                xyz = atom.pos.tolist()
                if atom.name in BACKBONE_ATOMS:
                    bb[i, BACKBONE_ATOMS.index(atom.name)] = xyz
                elif atom.name == "CB":
                    cb[i] = xyz
                elif atom.name != "OXT" and side_chains:
                    extra.append(xyz)
                    owner.append(i)
                    sg.append(atom.name == "SG")
        out.append(ChainAtoms(ch.name, "".join(THREE_TO_ONE.get(r.name, "M") for r in residues),
                              tuple(f"{r.seqid.num}{r.seqid.icode.strip()}" for r in residues), bb, cb,
                              np.ones(n - 1, dtype=bool), np.array(extra).reshape(-1, 3),
                              np.array(owner, dtype=np.int64), np.array(sg, dtype=bool)))  # fmt: skip
    return out


def check_text(text: str, rama: RamaTable | None = None, side_chains: bool = True) -> GeometryCheck:
    """The geometry check of a PDB or mmCIF text's first model (``side_chains`` as in :func:`structure_chains`)."""
    return check(structure_chains(read_model(text), side_chains), rama)


def read_model(text: str) -> gemmi.Structure:
    """A PDB or mmCIF text as a gemmi structure (read once for every check of it)."""
    if text.lstrip().startswith("data_"):
        return gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
    return gemmi.read_pdb_string(text)


def new_atom_contacts(st: gemmi.Structure, new: set[tuple[str, str]], cutoff: float = CLASH_DISTANCE) -> dict:
    """How close the atoms of the ``new`` residues (chain, residue number with insertion code) come to
    every other heavy atom of the structure's first model, ligands included (waters left out; bonded
    neighbours in a chain left out): ``{"pairs_under_2.2": n, "closest": d}`` (Å). ``st`` is not changed."""
    st = st.clone()
    st.remove_hydrogens()
    st.remove_waters()
    model = st[0]
    ns = gemmi.NeighborSearch(model, st.cell, 5.0).populate()
    pairs, closest = 0, float("inf")
    for ci, ch in enumerate(model):
        for ri, res in enumerate(ch):
            if (ch.name, f"{res.seqid.num}{res.seqid.icode.strip()}") not in new:
                continue
            for atom in res:
                for mark in ns.find_atoms(atom.pos, "\0", radius=5.0):
                    cra = mark.to_cra(model)
                    other = (cra.chain.name, f"{cra.residue.seqid.num}{cra.residue.seqid.icode.strip()}")
                    if other in new:
                        continue  # new loop atoms among themselves: the geometry check's business
                    same_chain = mark.chain_idx == ci
                    if same_chain and abs(mark.residue_idx - ri) <= 1:
                        continue
                    d = atom.pos.dist(cra.atom.pos)
                    closest = min(closest, d)
                    pairs += d < cutoff
    return {"pairs_under_2.2": int(pairs), "closest": round(closest, 2) if np.isfinite(closest) else None}
