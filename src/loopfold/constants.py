"""Numbers that live in one place: alphabets, ideal backbone geometry, CDR ranges.

Bond lengths in Ångström and angles in degrees are the Engh & Huber (1991)
ideal values (Acta Cryst. A47, 392-400), as used by most refinement programs.
"""

from __future__ import annotations

#: The twenty standard amino acids, one-letter codes, in the order models use.
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
AA_INDEX = {aa: i for i, aa in enumerate(AMINO_ACIDS)}

#: Three-letter to one-letter codes for the standard residues.
THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E",
    "GLY": "G", "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F",
    "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
}  # fmt: skip
ONE_TO_THREE = {v: k for k, v in THREE_TO_ONE.items()}

#: The seed pickles' 21-letter one-hot alphabet (SEC = selenocysteine, "U").
SEED_ALPHABET = (
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLU", "GLN", "GLY", "HIS", "ILE", "LEU",
    "LYS", "MET", "PHE", "PRO", "SEC", "SER", "THR", "TYR", "TRP", "VAL",
)  # fmt: skip
#: Padding value of the seed's targets.
SEED_PAD = -3.0

#: Backbone atoms in the order coordinates are stored: [L, 4, 3].
BACKBONE_ATOMS = ("N", "CA", "C", "O")

# --- Engh & Huber 1991 ideal backbone geometry (Å, degrees) ---
BOND_N_CA = 1.458
BOND_CA_C = 1.525
BOND_C_N = 1.329
BOND_C_O = 1.231
ANGLE_N_CA_C = 111.2  # tau
ANGLE_CA_C_N = 116.2
ANGLE_C_N_CA = 121.7
ANGLE_CA_C_O = 120.1

#: C(i)-N(i+1) distance above which two residues are not bonded (a chain break), Å.
CHAIN_BREAK_DISTANCE = 2.0

#: CDR names and the chain type each belongs to.
CDRS = ("H1", "H2", "H3", "L1", "L2", "L3")
DEFINITIONS = ("chothia", "imgt", "north")

#: CDR boundaries (first, last residue, inclusive) as numbering positions.
#: Chothia and North boundaries are given in Chothia numbering (Al-Lazikani et
#: al. 1997; North et al. 2011, J Mol Biol 406:228); IMGT in IMGT numbering
#: (Lefranc et al. 2003). ``CDR_BOUNDS_IMGT`` gives every definition's
#: boundaries translated into IMGT numbering, for chains numbered by anarcism.
#: The boundaries are framework positions, which the two schemes map 1:1.
CDR_BOUNDS_CHOTHIA = {
    "chothia": {"H1": (26, 32), "H2": (52, 56), "H3": (95, 102),
                "L1": (24, 34), "L2": (50, 56), "L3": (89, 97)},
    "north": {"H1": (23, 35), "H2": (50, 58), "H3": (93, 102),
              "L1": (24, 34), "L2": (49, 56), "L3": (89, 97)},
    # IMGT CDRs between the framework residues IMGT 26/39, 55/66, 104/118, which are
    # Chothia H25/H34, H50/H58, H92/H103 and L26/L33, L49/L53, L88/L98 (measured on
    # every Rosetta antibody database chain whose two numberings pass validation).
    "imgt": {"H1": (26, 33), "H2": (51, 57), "H3": (93, 102),
             "L1": (27, 32), "L2": (50, 52), "L3": (89, 97)},
}  # fmt: skip
CDR_BOUNDS_IMGT = {
    "chothia": {"H1": (27, 37), "H2": (57, 64), "H3": (107, 117),
                "L1": (24, 40), "L2": (56, 69), "L3": (105, 117)},
    "north": {"H1": (24, 40), "H2": (55, 66), "H3": (105, 117),
              "L1": (24, 40), "L2": (55, 69), "L3": (105, 117)},
    "imgt": {"H1": (27, 38), "H2": (56, 65), "H3": (105, 117),
             "L1": (27, 38), "L2": (56, 65), "L3": (105, 117)},
}  # fmt: skip

#: Conserved residues (Chothia numbering) used to check a numbered file.
CONSERVED_CHOTHIA = {"H": {22: "C", 92: "C", 103: "W"}, "L": {23: "C", 88: "C", 35: "W"}}

#: Default number of stem residues each side of a loop (the seed used 3).
DEFAULT_STEMS = 3

#: REMARK line of files whose B-factor column holds loopfold's predicted error (Å)
B_REMARK = "B-factor: predicted backbone error in A (every residue)"
#: REMARK lines of a ``--structure`` file: what its B-factor column holds (one meaning, Å²)
STRUCTURE_B_REMARKS = ("B-factor (A^2): the input's for kept atoms, and for predicted",
                       "loop residues 8 pi^2/3 x (predicted error in A)^2 (error: the JSON)")  # fmt: skip
#: REMARK line of a refined model (``--refine``)
REFINED_REMARK = "refined: side chains by PDBFixer, restrained minimisation by OpenMM"
