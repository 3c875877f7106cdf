"""Loop closure by cyclic coordinate descent (CCD; Canutescu & Dunbrack 2003, Protein Sci 12:963).

A loop window is first superposed on the fixed N-terminal stem; CCD then turns
the loop's phi and psi, one at a time and each by the closed-form angle that
best brings the moving C-terminal anchor atoms onto their fixed positions. Each
step is the smallest rotation that helps most, so the torsions change little.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopfold.structure.superpose import kabsch


@dataclass(frozen=True)
class ClosureResult:
    """Closed window coordinates ``[W, 4, 3]``, anchor RMSD (Å) and the iterations used."""

    coords: np.ndarray
    anchor_rmsd: float
    iterations: int


def _rotate(points: np.ndarray, origin: np.ndarray, axis: np.ndarray, theta: float) -> np.ndarray:
    """Rotate ``[..., 3]`` points by theta (radians) about the line through origin along unit axis."""
    p = points - origin
    cos, sin = np.cos(theta), np.sin(theta)
    return origin + p * cos + np.cross(axis, p) * sin + np.outer(p @ axis, axis).reshape(p.shape) * (1 - cos)


def _best_angle(moving: np.ndarray, fixed: np.ndarray, origin: np.ndarray, axis: np.ndarray) -> float:
    """The rotation about the axis that minimises the squared distance of moving to fixed atoms."""
    num = den = 0.0
    for m, f in zip(moving, fixed, strict=True):
        o = origin + np.dot(m - origin, axis) * axis
        r = m - o
        rn = np.linalg.norm(r)
        if rn < 1e-9:
            continue
        rhat = r / rn
        s = np.cross(axis, rhat)
        fv = f - o
        num += rn * np.dot(fv, s)
        den += rn * np.dot(fv, rhat)
    return float(np.arctan2(num, den))


def close_loop(
    window: np.ndarray,
    stem_n: np.ndarray,
    anchor_c: np.ndarray,
    n_stem: int,
    n_loop: int,
    tolerance: float = 0.02,
    max_iter: int = 1000,
) -> ClosureResult:
    """Place a predicted window on fixed stems and close it.

    Args:
        window: predicted ``[W, 4, 3]`` N, CA, C, O of stems + loop (any frame).
        stem_n: fixed ``[n_stem, 4, 3]`` coordinates of the N-terminal stem residues.
        anchor_c: fixed ``[3, 3]`` N, CA, C of the first C-terminal stem residue.
        n_stem: residues of the N-terminal stem at the window's start (>= 1).
        n_loop: loop residues after them; residue ``n_stem + n_loop`` is the anchor.

    Returns:
        The window in the structure's frame with the loop closed onto the anchor.
    """
    if n_stem < 1 or n_loop < 1:
        raise ValueError(f"closure needs at least one stem and one loop residue, got {n_stem} and {n_loop}")
    xyz = window.astype(np.float64).copy()
    # superpose the predicted last N-stem residue (N, CA, C) on the fixed one, so the first
    # loop residue hangs off it with the predicted geometry; stems keep their own atoms
    rot, tr = kabsch(xyz[n_stem - 1, :3], stem_n[-1, :3])
    xyz = xyz @ rot.T + tr
    xyz[:n_stem] = stem_n
    a = n_stem + n_loop  # anchor residue index in the window
    flat = xyz.reshape(-1, 3)

    def anchor_rmsd() -> float:
        return float(np.sqrt(((xyz[a, :3] - anchor_c) ** 2).sum(-1).mean()))

    iterations = 0
    while iterations < max_iter and anchor_rmsd() >= tolerance:
        iterations += 1
        # rotatable bonds: phi (N-CA) and psi (CA-C) of each loop residue
        for res, i0, i1 in ((r, k, k + 1) for r in range(n_stem, a) for k in (0, 1)):
            origin = xyz[res, i0]
            axis = xyz[res, i1] - origin
            axis = axis / np.linalg.norm(axis)
            theta = _best_angle(xyz[a, :3], anchor_c, origin, axis)
            # atoms after the bond move: phi moves this residue's C and O onwards, psi its O onwards
            start = res * 4 + (2 if i0 == 0 else 3)
            flat[start:] = _rotate(flat[start:], origin, axis, theta)
    return ClosureResult(coords=xyz, anchor_rmsd=anchor_rmsd(), iterations=iterations)
