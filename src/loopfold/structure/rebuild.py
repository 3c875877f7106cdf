"""NeRF: backbone torsions (+ bond lengths and angles) -> N, CA, C, O coordinates.

Natural Extension Reference Frame (Parsons et al. 2005, J Comput Chem 26:1063).
Batched over any leading axes. The PyTorch twin, for training through the
geometry, is :mod:`loopfold.model.rebuild_torch`; the two agree to float
precision (tested).
"""

from __future__ import annotations

import numpy as np

from loopfold import constants as K
from loopfold.structure.geometry import InternalGeometry


def place_atom(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    bond: np.ndarray | float,
    angle_deg: np.ndarray | float,
    torsion_deg: np.ndarray | float,
) -> np.ndarray:
    """Position of D with |CD| = bond, angle B-C-D and dihedral A-B-C-D given.

    Points are ``[..., 3]``; bond, angle and torsion broadcast over ``[...]``.
    """
    bc = c - b
    bc = bc / np.linalg.norm(bc, axis=-1, keepdims=True)
    n = np.cross(b - a, bc)
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    m = np.cross(n, bc)
    ang = np.radians(angle_deg)[..., None]
    tor = np.radians(torsion_deg)[..., None]
    bond = np.asarray(bond)[..., None]
    return c - bond * np.cos(ang) * bc + bond * np.sin(ang) * np.cos(tor) * m + bond * np.sin(ang) * np.sin(tor) * n


def ideal_geometry(shape: tuple[int, ...]) -> InternalGeometry:
    """Engh & Huber ideal bond lengths and angles for a backbone of ``shape`` = ``[..., L]``.

    ``o_torsion`` is NaN: the rebuild then places O at psi + 180 degrees.
    """

    def full(v: float) -> np.ndarray:
        return np.full(shape, v, dtype=np.float64)

    return InternalGeometry(
        n_ca=full(K.BOND_N_CA), ca_c=full(K.BOND_CA_C), c_n=full(K.BOND_C_N),
        n_ca_c=full(K.ANGLE_N_CA_C), ca_c_n=full(K.ANGLE_CA_C_N), c_n_ca=full(K.ANGLE_C_N_CA),
        c_o=full(K.BOND_C_O), ca_c_o=full(K.ANGLE_CA_C_O), o_torsion=full(np.nan),
    )  # fmt: skip


def canonical_first_residue(geom: InternalGeometry) -> np.ndarray:
    """N, CA, C ``[..., 3, 3]`` of residue 0 in a fixed frame: N at the origin,
    CA on +x, C in the xy plane."""
    n_ca = geom.n_ca[..., 0]
    ca_c = geom.ca_c[..., 0]
    tau = np.radians(geom.n_ca_c[..., 0])
    zeros = np.zeros_like(n_ca)
    n = np.stack([zeros, zeros, zeros], axis=-1)
    ca = np.stack([n_ca, zeros, zeros], axis=-1)
    c = np.stack([n_ca - ca_c * np.cos(tau), ca_c * np.sin(tau), zeros], axis=-1)
    return np.stack([n, ca, c], axis=-2)


def rebuild_backbone(
    torsions: np.ndarray,
    geometry: InternalGeometry | None = None,
    first_residue: np.ndarray | None = None,
) -> np.ndarray:
    """Coordinates ``[..., L, 4, 3]`` (N, CA, C, O) from torsions ``[..., L, 3]`` in degrees.

    Args:
        torsions: phi, psi, omega per residue. phi of residue 0 is not used
            (residue 0 is placed whole); psi of the last residue only places its O.
        geometry: bond lengths and angles ``[..., L]``; ideal (Engh & Huber) if None.
        first_residue: N, CA, C of residue 0, ``[..., 3, 3]``; a canonical frame if None.

    Returns:
        Coordinates; the last residue's O is NaN when its psi is NaN and no
        ``o_torsion`` is given.

    >>> import numpy as np
    >>> xyz = rebuild_backbone(np.tile([-60.0, -45.0, 180.0], (5, 1)))
    >>> xyz.shape
    (5, 4, 3)
    """
    torsions = np.asarray(torsions, dtype=np.float64)
    lead = torsions.shape[:-1]  # [..., L]
    geom = geometry if geometry is not None else ideal_geometry(lead)
    if first_residue is None:
        first_residue = canonical_first_residue(geom)
    length = lead[-1]
    out = np.full(lead + (4, 3), np.nan)
    out[..., 0, :3, :] = first_residue
    phi, psi, omega = torsions[..., 0], torsions[..., 1], torsions[..., 2]
    for i in range(1, length):
        prev = out[..., i - 1, :, :]
        n = place_atom(
            prev[..., 0, :],
            prev[..., 1, :],
            prev[..., 2, :],
            geom.c_n[..., i - 1],
            geom.ca_c_n[..., i - 1],
            psi[..., i - 1],
        )
        ca = place_atom(prev[..., 1, :], prev[..., 2, :], n, geom.n_ca[..., i], geom.c_n_ca[..., i], omega[..., i - 1])
        c = place_atom(prev[..., 2, :], n, ca, geom.ca_c[..., i], geom.n_ca_c[..., i], phi[..., i])
        out[..., i, 0, :], out[..., i, 1, :], out[..., i, 2, :] = n, ca, c  # fmt: skip
    o_tor = np.where(np.isnan(geom.o_torsion), psi + 180.0, geom.o_torsion)
    out[..., 3, :] = place_atom(out[..., 0, :], out[..., 1, :], out[..., 2, :],
                                geom.c_o, geom.ca_c_o, o_tor)  # fmt: skip
    return out
