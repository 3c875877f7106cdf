"""Non-bonded atom pairs of a model: the clash count, the geometry report, the library's contact
filter and the refinement check share these (the VH-VL interface test and the clash relief compare
two separate atom sets and compute their own distances)."""

from __future__ import annotations

import numpy as np


def nonbonded_d2(x: np.ndarray, residue: np.ndarray, chain: np.ndarray) -> np.ndarray:
    """Squared distances between all atoms (``[N, N]``), infinite for pairs in the same or adjacent
    residues of one chain (bonded neighbours).

    Args:
        x: ``[N, 3]`` atom positions (no NaN).
        residue: ``[N]`` each atom's residue index along its chain.
        chain: ``[N]`` each atom's chain index.
    """
    d2 = (x**2).sum(1)[:, None] + (x**2).sum(1)[None] - 2.0 * x @ x.T
    d2[(chain[:, None] == chain[None]) & (np.abs(residue[:, None] - residue[None]) <= 1)] = np.inf
    return np.maximum(d2, 0.0)


def close_pairs(x: np.ndarray, residue: np.ndarray, chain: np.ndarray, rows: np.ndarray,
                cutoff: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Non-bonded pairs ``(row atom, atom)`` closer than ``cutoff`` (Å), rows given as atom indices: the
    distances are compared first and only the few close pairs checked for bonded neighbours."""
    xr = x[rows]
    d2 = (xr**2).sum(1)[:, None] + (x**2).sum(1)[None] - 2.0 * xr @ x.T
    i, j = np.nonzero(d2 < cutoff**2)
    i = rows[i]
    keep = ~((chain[i] == chain[j]) & (np.abs(residue[i] - residue[j]) <= 1))
    return i[keep], j[keep]


def model_atoms(
    chains: list[tuple[np.ndarray, np.ndarray]], flags: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Atoms of chains given as ``([L, 4, 3] backbone, [L, 3] CB)``: positions, residue index, chain
    index and each atom's residue flag (``flags``: one bool array per chain; False when None), NaN
    atoms (a glycine's CB) left out."""
    xyz, res, chain, flag = [], [], [], []
    for ci, (bb, cb) in enumerate(chains):
        xyz.append(np.concatenate([bb, cb[:, None]], 1).reshape(-1, 3))  # [L * 5, 3]
        res.append(np.repeat(np.arange(len(bb)), 5))
        chain.append(np.full(5 * len(bb), ci))
        flag.append(np.repeat(np.zeros(len(bb), bool) if flags is None else np.asarray(flags[ci], bool), 5))
    x, r, c, f = (np.concatenate(v) for v in (xyz, res, chain, flag))
    ok = np.isfinite(x).all(1)
    return x[ok], r[ok], c[ok], f[ok]
