"""The one writer of loopfold's own models (an Fv, loops alone) as PDB or mmCIF text.

A model is a list of :class:`ModelChain`: per residue its atoms (N, CA, C, O and
optionally CB), IMGT or sequential residue ids, and the B-factor column (the
predicted error, Å). PDB text is written directly (gemmi's per-atom objects cost
more than the rest of a prediction; tests read it back with gemmi); mmCIF goes
through gemmi (:func:`cif_text`). Free-text notes become ``REMARK 250`` lines in
PDB and ``_loopfold.remark_*`` items in mmCIF.
"""

from __future__ import annotations

from dataclasses import dataclass

import gemmi
import numpy as np

from loopfold.constants import BACKBONE_ATOMS, ONE_TO_THREE, THREE_TO_ONE

FORMATS = ("pdb", "cif")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class ModelChain:
    """One chain of a model: ``atoms`` ``[n, k, 3]`` (Å; NaN atoms left out) named ``atom_names``,
    ``residue_ids`` (number and insertion code, ``"111A"``; empty: 1, 2, ... by position) and the
    B-factor of each residue (0 when None)."""

    chain_id: str
    sequence: str
    residue_ids: tuple[str, ...]
    atoms: np.ndarray
    atom_names: tuple[str, ...] = BACKBONE_ATOMS
    b_factors: np.ndarray | None = None

    def seqid(self, i: int) -> tuple[int, str]:
        """Residue i's number and insertion code (one character, blank when none)."""
        rid = self.residue_ids[i] or str(i + 1)
        num = rid.rstrip(_LETTERS)
        return int(num), (rid[len(num) :] or " ")[0]


def remark_250(remarks: list[str]) -> str:
    """``REMARK 250`` records of free text, each remark wrapped at word boundaries into lines of at
    most 69 characters (the PDB line width)."""
    out = []
    for remark in remarks:
        line = ""
        for word in remark.split():
            if line and len(line) + 1 + len(word) > 69:
                out.append(line)
                line = ""
            line = f"{line} {word}".strip()[:69]
        out.append(line)
    return "".join(f"REMARK 250 {line}\n" for line in out)


def pdb_text(chains: list[ModelChain], remarks: list[str] | None = None) -> str:
    """PDB text: ``REMARK 250`` lines, then ATOM and TER records per chain, then END."""
    lines, serial = [], 0
    for ch in chains:
        names = [f" {n:<3s}" if len(n) < 4 else n for n in ch.atom_names]
        finite = np.isfinite(ch.atoms).all(-1)
        rows = np.round(ch.atoms, 3).tolist()
        for i, letter in enumerate(ch.sequence):
            resn = ONE_TO_THREE.get(letter, "UNK")
            num, icode = ch.seqid(i)
            b = 0.0 if ch.b_factors is None else float(ch.b_factors[i])
            for k, name in enumerate(names):
                if not finite[i, k]:
                    continue
                serial += 1
                x, y, z = rows[i][k]
                lines.append(f"ATOM  {serial:5d} {name} {resn} {ch.chain_id}{num:4d}{icode}   "
                             f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{b:6.2f}          {name[1]:>2s}  ")  # fmt: skip
        if not ch.sequence:
            continue
        serial += 1
        num, icode = ch.seqid(len(ch.sequence) - 1)
        lines.append(f"TER   {serial:5d}      {ONE_TO_THREE.get(ch.sequence[-1], 'UNK')} {ch.chain_id}{num:4d}{icode}")
    lines.append("END")
    return remark_250(remarks or []) + "\n".join(lines) + "\n"


def model_structure(chains: list[ModelChain], name: str = "loopfold") -> gemmi.Structure:
    """The model as a gemmi structure (coordinates to 0.001 Å), for :func:`cif_text`."""
    st = gemmi.Structure()
    st.name = name
    gm = gemmi.Model(1)
    for ch in chains:
        chain = gemmi.Chain(ch.chain_id)
        for i, letter in enumerate(ch.sequence):
            res = gemmi.Residue()
            res.name = ONE_TO_THREE.get(letter, "UNK")
            res.seqid = gemmi.SeqId(*ch.seqid(i))
            res.het_flag = "A"
            res.entity_type = gemmi.EntityType.Polymer
            for k, atom_name in enumerate(ch.atom_names):
                if not np.isfinite(ch.atoms[i, k]).all():
                    continue
                atom = gemmi.Atom()
                atom.name = atom_name
                atom.element = gemmi.Element(atom_name[0])
                atom.pos = gemmi.Position(*(round(float(v), 3) for v in ch.atoms[i, k]))
                atom.occ = 1.0
                atom.b_iso = 0.0 if ch.b_factors is None else float(ch.b_factors[i])
                res.add_atom(atom)
            chain.add_residue(res)
        gm.add_chain(chain)
    st.add_model(gm)
    return st


def model_text(chains: list[ModelChain], fmt: str = "pdb", remarks: list[str] | None = None,
               name: str = "loopfold") -> str:  # fmt: skip
    """The model as PDB or mmCIF text (data block ``name``)."""
    if fmt == "cif":
        return cif_text(model_structure(chains, name), name, remarks)
    if fmt != "pdb":
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return pdb_text(chains, remarks)


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


def pdb_to_cif(text: str, name: str = "loopfold") -> str:
    """mmCIF text of a PDB text's protein chains (:func:`cif_text`; data block ``name``); its
    REMARK 250 lines become ``_loopfold.remark_*`` items."""
    st = gemmi.read_pdb_string(text)
    remarks = list(dict.fromkeys(line[11:].strip() for line in text.splitlines() if line.startswith("REMARK 250 ")))
    return cif_text(st, name, remarks)
