"""Loop placement on both stems and closure, many loops at once.

A predicted window (N-stem + loop + C-stem) is placed by superposing all its
stem residues (N, CA, C, both sides) on the fixed stems, so both ends set the
loop's direction. The loop is then hung from the last fixed N-stem residue and
its phi/psi are turned by damped least-squares steps (Levenberg-Marquardt on
the torsions; the analytic derivative of an atom about a bond is the one cyclic
coordinate descent uses, Canutescu & Dunbrack 2003): first towards the
stem-placed loop and the C-anchor together (it keeps the placement), then onto
the C-anchor alone (N, CA, C of the first C-stem residue) until it is closed.
In a development test (600 Rosetta loops, their phi/psi given 15° of noise,
closed onto their own stems) CCD turning one bond at a time needed a median
of about 150 sweeps and these steps a median of 3. Every step updates all
loops of a batch at once (numpy over ``[B, atoms, 3]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A loop counts as closed when the moving anchor N is this close (Å) to the fixed one (the peptide
#: bond then deviates by at most this), and the anchor's N, CA, C RMSD is within ``TOLERANCE`` of
#: the floor set by the stem geometry (the RMSD of the best superposition of the predicted
#: anchor residue on the fixed one: their bond lengths and angles differ).
TOLERANCE = 0.03
ANCHOR_WEIGHTS = np.array([4.0, 1.0, 1.0])  # N, CA, C: the peptide bond matters most
PLACE_STEPS = 3  # steps towards the stem-placed loop before closing onto the anchor alone
FIT_WEIGHT = 0.2  # weight of each loop atom (against the anchor's) in those steps
DAMPING = 1.0  # Levenberg-Marquardt damping: keeps each step's torsion changes small


@dataclass(frozen=True)
class ClosureResult:
    """Closed window coordinates ``[W, 4, 3]``, anchor RMSD (Å) and the closing steps used."""

    coords: np.ndarray
    anchor_rmsd: float
    iterations: int


def batch_kabsch(mobile: np.ndarray, target: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotations ``[B, 3, 3]`` and translations ``[B, 3]`` minimising the weighted distance of
    ``mobile @ R.T + t`` to ``target`` (both ``[B, M, 3]``; weights ``[B, M]``, 0 for padding)."""
    w = weights[..., None] / weights.sum(1)[:, None, None]
    mc, tc = (mobile * w).sum(1), (target * w).sum(1)
    h = np.einsum("bmi,bmj->bij", (mobile - mc[:, None]) * w, target - tc[:, None])
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("bji,bkj->bik", vt, u)))
    fix = np.ones_like(mc)
    fix[:, 2] = d
    rot = np.einsum("bji,bj,bkj->bik", vt, fix, u)
    return rot, tc - np.einsum("bi,bji->bj", mc, rot)


#: ``stems``: a window is placed by its stem residues; ``framework``: it comes placed (by its template's
#: framework, :mod:`loopfold.fv.template_frames`); ``n_stem``: it hangs from its last N-stem residue with
#: its predicted direction (loopfold 0.2's placement, kept for the benchmark that compares them).
PLACEMENTS = ("stems", "framework", "n_stem")

#: Loops are closed in batches of similar length (padding to the longest costs every step).
LENGTH_BUCKETS = (7, 10, 13, 17)


def close_windows(
    windows: list[np.ndarray],
    stems_n: list[np.ndarray],
    stems_c: list[np.ndarray],
    tolerance: float = TOLERANCE,
    max_iter: int = 50,
    placement: str | list[str] = "stems",
) -> list[ClosureResult]:
    """Place predicted windows on fixed stems and close them (see :func:`_close_batch`), in batches of
    loops of similar length. ``placement`` is one of :data:`PLACEMENTS`, for all windows or per window."""
    modes = [placement] * len(windows) if isinstance(placement, str) else list(placement)
    if len(modes) != len(windows) or not set(modes) <= set(PLACEMENTS):
        raise ValueError(f"placement must be one of {PLACEMENTS}, for all windows or one per window")
    n = np.array([len(w) - len(a) - len(c) for w, a, c in zip(windows, stems_n, stems_c, strict=True)])
    bucket = np.searchsorted(np.array(LENGTH_BUCKETS), n)
    out: list[ClosureResult | None] = [None] * len(windows)
    for k in np.unique(bucket):
        idx = np.nonzero(bucket == k)[0]
        done = _close_batch([windows[i] for i in idx], [stems_n[i] for i in idx], [stems_c[i] for i in idx],
                            tolerance, max_iter, [modes[i] for i in idx])  # fmt: skip
        for i, r in zip(idx, done, strict=True):
            out[i] = r
    return out  # type: ignore[return-value]


def _close_batch(
    windows: list[np.ndarray],
    stems_n: list[np.ndarray],
    stems_c: list[np.ndarray],
    tolerance: float = TOLERANCE,
    max_iter: int = 50,
    placement: list[str] | None = None,
) -> list[ClosureResult]:
    """Place predicted windows on fixed stems and close them.

    Args:
        windows: per loop ``[a + n + c, 4, 3]`` predicted N, CA, C, O of N-stem, loop and C-stem (any frame).
        stems_n: per loop the fixed ``[a, 4, 3]`` N-stem residues (a >= 1).
        stems_c: per loop the fixed ``[c, 4, 3]`` C-stem residues (c >= 1).
        placement: per window ``stems`` (all stem residues place the loop; the default), ``framework``
            (the window is already placed in the fixed frame) or ``n_stem`` (the loop hangs from the
            last N-stem residue with its predicted direction, then closes). ``stems`` and ``framework``
            windows are first turned towards where they were placed, then closed.

    Returns:
        Per loop the window in the fixed frame: stems are the fixed residues, the loop closed
        onto them (its first residue bonded to the N-stem, its last to the C-stem).
    """
    if not windows:
        return []
    a = np.array([len(s) for s in stems_n])
    c = np.array([len(s) for s in stems_c])
    n = np.array([len(w) for w in windows]) - a - c
    if (a < 1).any() or (c < 1).any() or (n < 1).any():
        raise ValueError("closure needs at least one residue in each stem and in the loop")
    b, wmax = len(windows), int((a + n + c).max())
    xyz = np.zeros((b, wmax, 4, 3))
    for i, w in enumerate(windows):
        xyz[i, : len(w)] = w
    # 1. all stem residues (N, CA, C, both sides) on the fixed stems
    smax = int((a + c).max())
    mob, fix, wt = np.zeros((b, 3 * smax, 3)), np.zeros((b, 3 * smax, 3)), np.zeros((b, 3 * smax))
    for i in range(b):
        k = 3 * (a[i] + c[i])
        mob[i, :k] = np.concatenate([xyz[i, : a[i], :3], xyz[i, a[i] + n[i] : a[i] + n[i] + c[i], :3]]).reshape(-1, 3)
        fix[i, :k] = np.concatenate([stems_n[i][:, :3], stems_c[i][:, :3]]).reshape(-1, 3)
        wt[i, :k] = 1.0
    rot, tr = batch_kabsch(mob, fix, wt)
    modes = np.array(placement if placement is not None else ["stems"] * b)
    given = modes != "stems"
    rot[given], tr[given] = np.eye(3), 0.0
    xyz = np.einsum("bwki,bji->bwkj", xyz, rot) + tr[:, None, None]
    placed = xyz.copy()
    # 2. hang the loop from the fixed last N-stem residue (its N, CA, C frame)
    last = np.arange(b), a - 1
    # (its C weighted most: the peptide bond to the first loop residue keeps the predicted length)
    rot, tr = batch_kabsch(xyz[last][:, :3], np.stack([s[-1, :3] for s in stems_n]), np.tile([1.0, 1.0, 20.0], (b, 1)))
    xyz = np.einsum("bwki,bji->bwkj", xyz, rot) + tr[:, None, None]
    for i in range(b):
        xyz[i, : a[i]] = stems_n[i]
    # 3. CCD: targets are the loop's N, CA, C where the stem placement put them and the C-anchor
    anchor = np.stack([s[0, :3] for s in stems_c])
    flat = xyz.reshape(b, -1, 3)
    loop_atoms = np.zeros((b, wmax * 4), dtype=bool)  # N, CA, C of loop residues
    for i in range(b):
        r = np.arange(a[i], a[i] + n[i])
        loop_atoms[i, (r[:, None] * 4 + np.arange(3)).ravel()] = True
    anchor_idx = ((a + n)[:, None] * 4 + np.arange(3)).astype(int)  # [B, 3]
    sweeps = np.zeros(b, dtype=int)

    def anchor_rmsd(sel: np.ndarray) -> np.ndarray:
        moving = np.take_along_axis(flat[sel], anchor_idx[sel][..., None], axis=1)
        return np.sqrt(((moving - anchor[sel]) ** 2).sum(-1).mean(-1))

    def closed(sel: np.ndarray) -> np.ndarray:
        moving = np.take_along_axis(flat[sel], anchor_idx[sel][..., None], axis=1)
        n_gap = np.linalg.norm(moving[:, 0] - anchor[sel, 0], axis=-1)
        return (n_gap < tolerance) & (anchor_rmsd(sel) < floor[sel] + tolerance)

    # the best any closure can do: the predicted anchor residue superposed on the fixed one
    pred_anchor = np.take_along_axis(flat, anchor_idx[..., None], axis=1)
    r_, t_ = batch_kabsch(pred_anchor, anchor, np.ones((b, 3)))
    floor = np.sqrt(((np.einsum("bmi,bji->bmj", pred_anchor, r_) + t_[:, None] - anchor) ** 2).sum(-1).mean(-1))

    bond_res = a[:, None] + np.arange(2 * int(n.max()))[None] // 2  # [B, K] residue of each phi/psi bond
    bond_ok = np.arange(2 * int(n.max()))[None] < 2 * n[:, None]
    damping = np.full(b, DAMPING)
    active = np.arange(b)
    fit = modes != "n_stem"
    place_steps = PLACE_STEPS if fit.any() else 0
    for it in range(max_iter + place_steps):
        fitting = it < place_steps
        if not fitting:
            active = active[~closed(active)]
        if not len(active):
            break
        sweeps[active] += 0 if fitting else 1
        sel = active[fit[active]] if fitting else active  # n_stem windows are not turned towards a placement
        if not len(sel):
            continue
        f = flat[sel]
        mov_idx, tgt, w = anchor_idx[sel], anchor[sel], np.tile(ANCHOR_WEIGHTS, (len(sel), 1))
        if fitting:  # also the loop's N, CA, C where the stem placement put them
            k = int(3 * n[sel].max())
            li = np.zeros((len(sel), k), dtype=int)
            lw = np.zeros((len(sel), k))
            for j, row in enumerate(sel):
                at = np.nonzero(loop_atoms[row])[0]
                li[j, : len(at)], lw[j, : len(at)] = at, FIT_WEIGHT
            mov_idx = np.concatenate([mov_idx, li], 1)
            tgt = np.concatenate([tgt, np.take_along_axis(placed[sel].reshape(len(sel), -1, 3), li[..., None], 1)], 1)
            w = np.concatenate([w, lw], 1)
        if it == place_steps:
            damping[:] = DAMPING
        before = objective(f, mov_idx, tgt, w)
        delta = torsion_step(f, bond_res[sel], bond_ok[sel], mov_idx, tgt, w, damping[sel])
        flat[sel] = apply_torsions(f, bond_res[sel], bond_ok[sel], delta)
        worse = objective(flat[sel], mov_idx, tgt, w) > before  # linearisation failed: undo, damp more
        flat[sel[worse]] = f[worse]
        damping[sel] = np.where(worse, damping[sel] * 10.0, np.maximum(damping[sel] / 3.0, 1e-3))
    out = []
    rms = anchor_rmsd(np.arange(b))
    for i in range(b):
        w = xyz[i, : a[i] + n[i] + c[i]].copy()
        w[a[i] + n[i] :] = stems_c[i]
        out.append(ClosureResult(coords=w, anchor_rmsd=float(rms[i]), iterations=int(sweeps[i])))
    return out


def objective(f: np.ndarray, mov_idx: np.ndarray, tgt: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``[B]`` weighted squared distance of the moving atoms to their targets."""
    x = np.take_along_axis(f, mov_idx[..., None], axis=1)
    return (w * ((x - tgt) ** 2).sum(-1)).sum(-1)


def torsion_step(f: np.ndarray, bond_res: np.ndarray, bond_ok: np.ndarray, mov_idx: np.ndarray, tgt: np.ndarray,
                  w: np.ndarray, damping: np.ndarray) -> np.ndarray:  # fmt: skip
    """``[B, K]`` damped least-squares change of each phi/psi (radians) moving atoms ``mov_idx`` towards ``tgt``.

    The derivative of atom x about bond k (origin o, unit axis u) is u x (x - o) for atoms after the
    bond; the step solves (J^T W J + damping I) d = -J^T W e (Levenberg-Marquardt).
    """
    bsz, kk = bond_res.shape
    r = np.arange(bsz)[:, None]
    i0 = bond_res * 4 + (np.arange(kk)[None] % 2)
    origin = f[r, i0]  # [B, K, 3]
    axis = f[r, i0 + 1] - origin
    axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
    x = np.take_along_axis(f, mov_idx[..., None], axis=1)  # [B, M, 3]
    jac = np.cross(axis[:, None], x[:, :, None] - origin[:, None])  # [B, M, K, 3]
    after = mov_idx[:, :, None] >= (bond_res * 4 + 2 + np.arange(kk)[None] % 2)[:, None]
    jac *= (after & bond_ok[:, None])[..., None]
    jac = jac.transpose(0, 1, 3, 2).reshape(bsz, -1, kk)  # [B, 3M, K]
    err = (x - tgt).reshape(bsz, -1)
    ww = np.repeat(w, 3, axis=1)
    jtw = jac.transpose(0, 2, 1) * ww[:, None]
    lhs = jtw @ jac + damping[:, None, None] * np.eye(kk)[None]
    return -np.linalg.solve(lhs, (jtw @ err[..., None]))[..., 0]


def apply_torsions(f: np.ndarray, bond_res: np.ndarray, bond_ok: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Turn every phi/psi bond k by ``delta[:, k]`` (radians) at once.

    Turning the bonds from the last to the first, each about its axis in ``f``, gives the same
    chain as turning them first to last about their moved axes; so atom j moves by the product
    of the rotations of every bond before it, and those products are prefix products of 4x4
    transforms: K small matrix products and one pass over the atoms, not K passes.
    """
    bsz, kk = bond_res.shape
    r = np.arange(bsz)[:, None]
    i0 = bond_res * 4 + (np.arange(kk)[None] % 2)
    origin = f[r, i0]
    axis = f[r, i0 + 1] - origin
    axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
    theta = np.where(bond_ok, delta, 0.0)
    cos, sin = np.cos(theta)[..., None, None], np.sin(theta)[..., None, None]
    ux = np.zeros((bsz, kk, 3, 3))
    ux[..., 0, 1], ux[..., 0, 2], ux[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    ux[..., 1, 0], ux[..., 2, 0], ux[..., 2, 1] = axis[..., 2], -axis[..., 1], axis[..., 0]
    rot = cos * np.eye(3) + sin * ux + (1 - cos) * axis[..., :, None] * axis[..., None, :]  # [B, K, 3, 3]
    tr = origin - np.einsum("bkij,bkj->bki", rot, origin)
    pre_r = np.empty((bsz, kk + 1, 3, 3))
    pre_t = np.empty((bsz, kk + 1, 3))
    pre_r[:, 0], pre_t[:, 0] = np.eye(3), 0.0
    for k in range(kk):  # P_k = P_(k-1) o R_k
        pre_r[:, k + 1] = pre_r[:, k] @ rot[:, k]
        pre_t[:, k + 1] = np.einsum("bij,bj->bi", pre_r[:, k], tr[:, k]) + pre_t[:, k]
    start = np.where(bond_ok, bond_res * 4 + 2 + np.arange(kk)[None] % 2, np.iinfo(np.int64).max)
    m = (start[:, None, :] <= np.arange(f.shape[1])[None, :, None]).sum(-1)  # [B, A] bonds before each atom
    return np.einsum("baij,baj->bai", pre_r[r, m], f) + pre_t[r, m]
