"""Clash relief for a closed loop: turn its phi/psi so atoms that come too close move apart.

Each step finds the loop's backbone and CB atoms closer than ``MARGIN`` to an
obstacle atom (the rest of the model) or to a non-neighbouring atom of the loop
itself, asks each to move away along the contact to ``MARGIN`` (a CB's push is
given to its CA, which carries it), keeps the C-anchor where it is and the other
loop atoms near where they are, and takes a damped least-squares step on the
torsions (:func:`loopfold.structure.closure.torsion_step`). The loop stays
closed: the anchor is the heaviest target, and the caller closes it again.
"""

from __future__ import annotations

import numpy as np

from loopfold.structure.closure import apply_torsions, objective, torsion_step

MARGIN = 2.6  # Å: pushed-apart atoms aim for this distance (clashes are counted under 2.2)
DONE = 2.35  # Å: a loop with no pair closer than this is left alone
ANCHOR_WEIGHT = 10.0
STAY_WEIGHT = 0.05


def ideal_cb(coords: np.ndarray, glycine: np.ndarray | None = None) -> np.ndarray:
    """``[..., 3]`` CB from N, CA, C (``[..., 4, 3]``) with ideal geometry (as in trRosetta/AlphaFold);
    NaN where ``glycine`` (a bool mask over the residues) is True."""
    n, ca, c = coords[..., 0, :], coords[..., 1, :], coords[..., 2, :]
    b, cc = ca - n, c - ca
    cb = -0.58273431 * np.cross(b, cc) + 0.56802827 * b - 0.54067466 * cc + ca
    if glycine is not None:
        cb[np.asarray(glycine, dtype=bool)] = np.nan
    return cb


def contacts(window: np.ndarray, n_stem: int, n_loop: int, obstacles: np.ndarray, glycine: np.ndarray,
             within: float = MARGIN) -> list[tuple[int, np.ndarray]]:  # fmt: skip
    """Loop atoms (flat index into the window's N, CA, C, O) closer than ``within`` to something, each
    with the push that would take it to ``MARGIN``."""
    loop = np.arange(n_stem, n_stem + n_loop)
    atoms = np.concatenate([window[loop], ideal_cb(window[loop], glycine)[:, None]], 1)  # [n, 5, 3]
    flat = atoms.reshape(-1, 3)
    res = np.repeat(loop, 5)
    kind = np.tile(np.arange(5), len(loop))
    # everything else in the window (stems included) is an obstacle too, unless bonded (|i - j| <= 1)
    w_atoms = np.concatenate([window, ideal_cb(window)[:, None]], 1).reshape(-1, 3)
    w_res = np.repeat(np.arange(len(window)), 5)
    target = res * 4 + np.where(kind == 4, 1, kind)  # a CB's push goes to its CA
    pushes = np.zeros((len(window) * 4, 3))
    hit = np.zeros(len(window) * 4, dtype=bool)
    for obs, obs_res in ((obstacles, None), (w_atoms, w_res)):
        if not len(obs):
            continue
        d2 = (flat**2).sum(1)[:, None] + (obs**2).sum(1)[None] - 2.0 * flat @ obs.T
        close = d2 < within**2  # NaN (a glycine's CB) compares False
        if obs_res is not None:
            close &= np.abs(res[:, None] - obs_res[None]) > 1
        i, j = np.nonzero(close)
        if not len(i):
            continue
        v = flat[i] - obs[j]
        d = np.maximum(np.linalg.norm(v, axis=1), 1e-6)
        np.add.at(pushes, target[i], v / d[:, None] * (MARGIN - d)[:, None])
        hit[target[i]] = True
    return [(int(k), pushes[k]) for k in np.nonzero(hit)[0]]


def relieve(window: np.ndarray, n_stem: int, n_loop: int, obstacles: np.ndarray, glycine: np.ndarray,
            steps: int = 12) -> tuple[np.ndarray, float]:  # fmt: skip
    """The window with its loop turned away from clashes (stems unchanged; as given when none), and
    the RMSD (Å) of the loop's own anchor (N, CA, C of the first C-stem residue) from the fixed one."""
    xyz = window.astype(np.float64).copy()
    flat = xyz.reshape(1, -1, 3)
    bond_res = (n_stem + np.arange(2 * n_loop) // 2)[None]
    bond_ok = np.ones_like(bond_res, dtype=bool)
    anchor_idx = (n_stem + n_loop) * 4 + np.arange(3)
    anchor = flat[0, anchor_idx].copy()
    loop_idx = np.array([r * 4 + k for r in range(n_stem, n_stem + n_loop) for k in range(3)])
    damping = 1.0
    for _ in range(steps):
        if not contacts(flat[0].reshape(-1, 4, 3), n_stem, n_loop, obstacles, glycine, within=DONE):
            break
        found = contacts(flat[0].reshape(-1, 4, 3), n_stem, n_loop, obstacles, glycine)
        idx = np.array([k for k, _ in found])
        moved = np.array([flat[0, k] + v for k, v in found])
        stay = np.setdiff1d(loop_idx, idx)
        mov_idx = np.concatenate([anchor_idx, idx, stay])[None]
        tgt = np.concatenate([anchor, moved, flat[0, stay]])[None]
        w = np.concatenate([np.full(3, ANCHOR_WEIGHT), np.ones(len(idx)), np.full(len(stay), STAY_WEIGHT)])[None]
        before = objective(flat, mov_idx, tgt, w)
        delta = torsion_step(flat, bond_res, bond_ok, mov_idx, tgt, w, np.array([damping]))
        new = apply_torsions(flat, bond_res, bond_ok, delta)
        if objective(new, mov_idx, tgt, w) > before:
            damping *= 10.0
            continue
        flat = new
        damping = max(damping / 3.0, 1e-3)
    out = flat[0].reshape(-1, 4, 3)
    rms = float(np.sqrt(((out[n_stem + n_loop, :3] - window[n_stem + n_loop, :3]) ** 2).sum(-1).mean()))
    out[:n_stem] = window[:n_stem]
    out[n_stem + n_loop :] = window[n_stem + n_loop :]
    return out, rms
