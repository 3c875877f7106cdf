"""Kabsch superposition and RMSD."""

from __future__ import annotations

import numpy as np


def kabsch(mobile: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation ``R`` [3, 3] and translation ``t`` [3] minimising |mobile @ R.T + t - target|.

    Both inputs are ``[N, 3]`` with the same atom order and no NaN.
    """
    mc = mobile.mean(axis=0)
    tc = target.mean(axis=0)
    h = (mobile - mc).T @ (target - tc)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    fix = np.diag([1.0, 1.0, d])
    rot = vt.T @ fix @ u.T
    return rot, tc - mc @ rot.T


def superposed_rmsd(mobile: np.ndarray, target: np.ndarray) -> float:
    """RMSD (Å) after optimal superposition of two ``[..., 3]`` point sets.

    Atoms that are NaN in either set are left out; NaN if fewer than 3 remain.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(10, 3))
    >>> round(superposed_rmsd(x @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]) + 5, x), 8)
    0.0
    """
    m = np.asarray(mobile, dtype=np.float64).reshape(-1, 3)
    t = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    ok = np.isfinite(m).all(axis=1) & np.isfinite(t).all(axis=1)
    if ok.sum() < 3:
        return float("nan")
    m, t = m[ok], t[ok]
    rot, tr = kabsch(m, t)
    diff = m @ rot.T + tr - t
    return float(np.sqrt((diff**2).sum(axis=1).mean()))


def rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD (Å) of two ``[..., 3]`` point sets without superposition (NaN atoms left out)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 3)
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    if not ok.any():
        return float("nan")
    return float(np.sqrt(((a[ok] - b[ok]) ** 2).sum(axis=1).mean()))
