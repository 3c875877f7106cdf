"""Write a modelled Fv as PDB or mmCIF (gemmi): chains H and L, IMGT numbering, predicted error as B."""

from __future__ import annotations

import gemmi
import numpy as np

from loopfold.constants import BACKBONE_ATOMS, ONE_TO_THREE, THREE_TO_ONE
from loopfold.fv.assemble import FvModel
from loopfold.io.pdb import remark_250

FORMATS = ("pdb", "cif")


def fv_structure(model: FvModel, name: str = "loopfold") -> gemmi.Structure:
    """A gemmi structure of the Fv: N, CA, C, O and CB per residue, B-factor = predicted error (Å)."""
    st = gemmi.Structure()
    st.name = name
    gm = gemmi.Model(1)
    for ch in model.chains:
        chain = gemmi.Chain(ch.chain_id)
        atoms = np.concatenate([ch.coords, ch.cb[:, None]], 1)
        for i, letter in enumerate(ch.sequence):
            res = gemmi.Residue()
            res.name = ONE_TO_THREE.get(letter, "UNK")
            rid = ch.residue_ids[i]
            num = rid.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            res.seqid = gemmi.SeqId(int(num), (rid[len(num) :] or " ")[0])
            res.het_flag = "A"
            res.entity_type = gemmi.EntityType.Polymer
            for k, atom_name in enumerate((*BACKBONE_ATOMS, "CB")):
                if not np.isfinite(atoms[i, k]).all():
                    continue
                atom = gemmi.Atom()
                atom.name = atom_name
                atom.element = gemmi.Element(atom_name[0])
                atom.pos = gemmi.Position(*(round(float(v), 3) for v in atoms[i, k]))
                atom.occ = 1.0
                atom.b_iso = float(ch.error_frame[i])
                res.add_atom(atom)
            chain.add_residue(res)
        gm.add_chain(chain)
    st.add_model(gm)
    return st


def cif_text(st: gemmi.Structure, name: str, remarks: list[str] | None = None) -> str:
    """mmCIF text a viewer reads right: the data block named after the record, one entity per chain
    sequence with its full sequence, each chain its own ``label_asym_id``, ``label_seq_id`` numbered
    along that sequence, coordinates to 0.001 Å; REMARK lines as ``_loopfold.remark_*`` items."""
    st.name = name
    while len(st) > 1:
        del st[1]
    ch: gemmi.Chain | None
    for ch in st[0]:
        for k, res in enumerate(ch):
            if _amino_acid(res.name):  # the chain's protein (modified residues too): its own asym id
                res.subchain, res.entity_type = ch.name, gemmi.EntityType.Polymer
            else:  # waters together, each other residue (a ligand, a glycan) its own
                res.subchain = f"{ch.name}W" if res.is_water() else f"{ch.name}{k + 1}"
            for atom in res:
                atom.pos = gemmi.Position(*(round(v, 3) for v in atom.pos.tolist()))
    st.setup_entities()
    for ent in st.entities:
        ch = next((c for c in st[0] if c.name in ent.subchains), None)
        if ent.entity_type != gemmi.EntityType.Polymer or ch is None:
            continue
        ent.full_sequence = [r.name for r in ch if r.subchain == ch.name]
        ent.polymer_type = gemmi.PolymerType.PeptideL
    st.assign_label_seq_id()
    doc = st.make_mmcif_document()
    for k, remark in enumerate(remarks or [], 1):  # mmCIF has no REMARK records: a loopfold category
        doc.sole_block().set_pair(f"_loopfold.remark_{k}", gemmi.cif.quote(remark))
    return doc.as_string()


def _amino_acid(name: str) -> bool:
    """A standard or modified amino acid (gemmi's residue table: MSE, PCA, CAS, ...)."""
    if name in THREE_TO_ONE:
        return True
    info = gemmi.find_tabulated_residue(name)
    return info is not None and info.is_amino_acid()


def fv_text(model: FvModel, fmt: str = "pdb", remarks: list[str] | None = None, name: str = "loopfold") -> str:
    """PDB (``REMARK 250`` lines first) or mmCIF text of the Fv."""
    if fmt == "cif":
        return cif_text(fv_structure(model, name), name, remarks)
    if fmt != "pdb":
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return remark_250(remarks or []) + fv_pdb_atoms(model)


def fv_pdb_atoms(model: FvModel) -> str:
    """ATOM, TER and END records of the Fv (written directly: gemmi's per-atom objects cost more
    than the rest of a prediction; tests read the text back with gemmi)."""
    lines, serial = [], 0
    names = (" N  ", " CA ", " C  ", " O  ", " CB ")
    for ch in model.chains:
        atoms = np.concatenate([ch.coords, ch.cb[:, None]], 1)
        finite = np.isfinite(atoms).all(-1)
        rows = np.round(atoms, 3).tolist()
        for i, letter in enumerate(ch.sequence):
            resn = ONE_TO_THREE.get(letter, "UNK")
            rid = ch.residue_ids[i]
            num = rid.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            icode = (rid[len(num) :] or " ")[0]
            b = float(ch.error_frame[i])
            for k in range(5):
                if not finite[i, k]:
                    continue
                serial += 1
                x, y, z = rows[i][k]
                lines.append(f"ATOM  {serial:5d} {names[k]} {resn} {ch.chain_id}{int(num):4d}{icode}   "
                             f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{b:6.2f}          {names[k][1]:>2s}  ")  # fmt: skip
        serial += 1
        last = ch.residue_ids[-1]
        lnum = last.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        lines.append(f"TER   {serial:5d}      {ONE_TO_THREE.get(ch.sequence[-1], 'UNK')} {ch.chain_id}{int(lnum):4d}"
                     f"{(last[len(lnum):] or ' ')[0]}")  # fmt: skip
    lines.append("END")
    return "\n".join(lines) + "\n"


def pdb_to_cif(pdb_text: str, name: str = "loopfold") -> str:
    """mmCIF text of a PDB text's protein chains (:func:`cif_text`; data block ``name``); its
    REMARK 250 lines become ``_loopfold.remark_*`` items."""
    st = gemmi.read_pdb_string(pdb_text)
    remarks = list(dict.fromkeys(line[11:].strip() for line in pdb_text.splitlines()
                                 if line.startswith("REMARK 250 ")))  # fmt: skip
    return cif_text(st, name, remarks)
