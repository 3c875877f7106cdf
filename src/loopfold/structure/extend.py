"""Extend a backbone past its ends with ideal geometry (NeRF), for chain ends no template covers."""

from __future__ import annotations

import numpy as np

from loopfold import constants as K
from loopfold.structure.geometry import dihedral
from loopfold.structure.rebuild import place_atom

#: phi, psi of the residues added (a beta strand, as framework chain ends are)
STRAND = (-120.0, 130.0)


def extend_before(first: np.ndarray, k: int, phi_psi: tuple[float, float] = STRAND) -> np.ndarray:
    """``[k, 4, 3]`` residues (chain order) built before residue ``first`` (``[4, 3]`` N, CA, C, O)."""
    phi, psi = phi_psi
    out = []
    n, ca, c = first[0], first[1], first[2]
    for _ in range(k):
        c_p = place_atom(c, ca, n, K.BOND_C_N, K.ANGLE_C_N_CA, phi)
        ca_p = place_atom(ca, n, c_p, K.BOND_CA_C, K.ANGLE_CA_C_N, 180.0)
        n_p = place_atom(n, c_p, ca_p, K.BOND_N_CA, K.ANGLE_N_CA_C, psi)
        o_p = place_atom(n, ca_p, c_p, K.BOND_C_O, K.ANGLE_CA_C_O, 180.0)
        out.append(np.stack([n_p, ca_p, c_p, o_p]))
        n, ca, c = n_p, ca_p, c_p
    return np.stack(out[::-1]) if out else np.zeros((0, 4, 3))


def extend_after(last: np.ndarray, k: int, phi_psi: tuple[float, float] = STRAND) -> np.ndarray:
    """``[k, 4, 3]`` residues built after residue ``last`` (``[4, 3]``); its psi follows from its O."""
    phi, psi = phi_psi
    out = []
    n, ca, c, o = last
    psi_last = float(dihedral(n, ca, c, o)) + 180.0
    for _ in range(k):
        n_x = place_atom(n, ca, c, K.BOND_C_N, K.ANGLE_CA_C_N, psi_last)
        ca_x = place_atom(ca, c, n_x, K.BOND_N_CA, K.ANGLE_C_N_CA, 180.0)
        c_x = place_atom(c, n_x, ca_x, K.BOND_CA_C, K.ANGLE_N_CA_C, phi)
        o_x = place_atom(n_x, ca_x, c_x, K.BOND_C_O, K.ANGLE_CA_C_O, psi + 180.0)
        out.append(np.stack([n_x, ca_x, c_x, o_x]))
        n, ca, c, psi_last = n_x, ca_x, c_x, psi
    return np.stack(out) if out else np.zeros((0, 4, 3))
