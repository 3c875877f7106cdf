"""Distances, angles and dihedrals, and the backbone's internal coordinates.

Conventions (IUPAC): for residue i, phi = C(i-1)-N(i)-CA(i)-C(i),
psi = N(i)-CA(i)-C(i)-N(i+1), omega = CA(i)-C(i)-N(i+1)-CA(i+1) (the peptide
bond after residue i, as Rosetta and PyIgClassify report it). Undefined values
(chain ends, chain breaks, missing atoms) are NaN, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopfold.constants import CHAIN_BREAK_DISTANCE


def dihedral(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Dihedral angle a-b-c-d in degrees, over the leading axes of ``[..., 3]`` inputs.

    >>> import numpy as np
    >>> round(float(dihedral(np.array([1.0, 0, 0]), np.zeros(3), np.array([0, 0, 1.0]),
    ...                      np.array([0, 1.0, 1]))), 6)
    90.0
    """
    b0 = a - b
    b1 = c - b
    b2 = d - c
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, axis=-1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, axis=-1, keepdims=True) * b1n
    x = np.sum(v * w, axis=-1)
    y = np.sum(np.cross(b1n, v) * w, axis=-1)
    return np.degrees(np.arctan2(y, x))


def angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Bond angle a-b-c in degrees over ``[..., 3]`` inputs."""
    u = a - b
    v = c - b
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance over ``[..., 3]`` inputs."""
    return np.linalg.norm(a - b, axis=-1)


def backbone_torsions(coords: np.ndarray) -> np.ndarray:
    """phi, psi, omega in degrees, ``[..., L, 3]``, from coords ``[..., L, 4, 3]``.

    NaN at the first residue's phi, the last residue's psi and omega, across
    chain breaks (C-N > 2.0 Å) and wherever an atom is missing.
    """
    n, ca, c = coords[..., 0, :], coords[..., 1, :], coords[..., 2, :]
    shape = coords.shape[:-2] + (3,)
    out = np.full(shape, np.nan)
    if coords.shape[-3] < 2:
        return out
    bonded = np.linalg.norm(n[..., 1:, :] - c[..., :-1, :], axis=-1) <= CHAIN_BREAK_DISTANCE
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = dihedral(c[..., :-1, :], n[..., 1:, :], ca[..., 1:, :], c[..., 1:, :])
        psi = dihedral(n[..., :-1, :], ca[..., :-1, :], c[..., :-1, :], n[..., 1:, :])
        omega = dihedral(ca[..., :-1, :], c[..., :-1, :], n[..., 1:, :], ca[..., 1:, :])
    out[..., 1:, 0] = np.where(bonded, phi, np.nan)
    out[..., :-1, 1] = np.where(bonded, psi, np.nan)
    out[..., :-1, 2] = np.where(bonded, omega, np.nan)
    return out


@dataclass(frozen=True)
class InternalGeometry:
    """Bond lengths (Å) and angles (degrees) of a backbone, each ``[..., L]``.

    Entries that link residue i to i+1 (``c_n``, ``ca_c_n``) are NaN at the last
    residue; ``c_n_ca`` (the angle at N(i), from C(i-1)) is NaN at the first.
    ``o_torsion`` is the N-CA-C-O dihedral that places the carbonyl oxygen.
    """

    n_ca: np.ndarray
    ca_c: np.ndarray
    c_n: np.ndarray
    n_ca_c: np.ndarray
    ca_c_n: np.ndarray
    c_n_ca: np.ndarray
    c_o: np.ndarray
    ca_c_o: np.ndarray
    o_torsion: np.ndarray


def internal_geometry(coords: np.ndarray) -> InternalGeometry:
    """Measure every bond length and angle of a backbone ``[..., L, 4, 3]``."""
    n, ca, c, o = (coords[..., k, :] for k in range(4))
    nan = np.full(coords.shape[:-2], np.nan)

    def shifted(values: np.ndarray, first: bool) -> np.ndarray:
        out = nan.copy()
        if first:
            out[..., 1:] = values
        else:
            out[..., :-1] = values
        return out

    with np.errstate(invalid="ignore", divide="ignore"):
        return InternalGeometry(
            n_ca=distance(n, ca),
            ca_c=distance(ca, c),
            c_n=shifted(distance(c[..., :-1, :], n[..., 1:, :]), first=False),
            n_ca_c=angle(n, ca, c),
            ca_c_n=shifted(angle(ca[..., :-1, :], c[..., :-1, :], n[..., 1:, :]), first=False),
            c_n_ca=shifted(angle(c[..., :-1, :], n[..., 1:, :], ca[..., 1:, :]), first=True),
            c_o=distance(c, o),
            ca_c_o=angle(ca, c, o),
            o_torsion=dihedral(n, ca, c, o),
        )
