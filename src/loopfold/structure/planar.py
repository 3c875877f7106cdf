"""Peptide bonds made planar: trans, or cis before a proline where the model already has it cis.

Templates carry their own peptide bonds: a cis bond before a proline stays cis in a model whose
residue there is not a proline, and a stretch spliced from another structure can leave a bond
twisted. Each such bond (|omega| under ``TRANS_MIN`` where trans is wanted, or over ``CIS_MAX``
before a cis proline) is set to 180° (0° for the cis proline) and the residues on either side
are rebuilt from their own torsions, bond lengths and angles and closed onto the unchanged
residues two further out (:func:`loopfold.structure.closure.close_windows`), widening the
moving stretch a residue each side while it does not close. At the end of a stretch of bonded
residues the rest of the stretch is rebuilt from the corrected torsion instead.
"""

from __future__ import annotations

import numpy as np

from loopfold.constants import ANGLE_C_N_CA, ANGLE_CA_C_N, BOND_C_N, CHAIN_BREAK_DISTANCE
from loopfold.structure.closure import close_windows
from loopfold.structure.geometry import backbone_torsions, internal_geometry
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.validate import CIS_MAX, TRANS_MIN

STEMS = 2  # fixed residues each side the rebuilt stretch closes onto
CLOSED = 0.1  # Å: anchor RMSD a rebuilt stretch must reach to be kept
CONTACT = 3.0  # Å: backbone atoms closer than this to the rest of the chain count against a rebuild


def omega_targets(omega: np.ndarray, next_letters: str) -> np.ndarray:
    """``[N - 1]`` wanted omega per bond (degrees): 0 before a proline whose bond is cis-like
    (|omega| < 90), else 180; NaN where the bond is fine as it is or undefined."""
    om = np.abs(omega)
    pro = np.array([a == "P" for a in next_letters], dtype=bool)
    cis = pro & (om < 90.0)
    bad = np.where(cis, om >= CIS_MAX, om < TRANS_MIN) & np.isfinite(om)
    return np.where(bad, np.where(cis, 0.0, 180.0), np.nan)


def planarize(coords: np.ndarray, letters: str) -> tuple[np.ndarray, list[int]]:
    """Backbone ``[N, 4, 3]`` with its non-planar peptide bonds corrected (see the module docstring).

    Args:
        coords: N, CA, C, O per residue in sequence order (NaN rows: residues absent).
        letters: one-letter code per residue.

    Returns:
        The corrected coordinates and the indices ``k`` of the bonds ``k -> k + 1`` corrected.
    """
    out = np.array(coords, dtype=np.float64, copy=True)
    done: list[int] = []
    if len(out) < 2:
        return out, done
    for _ in range(3):  # a correction can leave a neighbouring bond to correct
        targets = omega_targets(backbone_torsions(out)[:-1, 2], letters[1:])
        todo = [int(k) for k in np.nonzero(np.isfinite(targets))[0]]
        if not todo:
            break
        for k in todo:
            if _fix_bond(out, k, float(targets[k])):
                done.append(k)
    return out, sorted(set(done))


def _run(coords: np.ndarray, k: int) -> tuple[int, int]:
    """First and last residue of the stretch of bonded, complete residues around bond ``k``."""
    ok = np.isfinite(coords).all((1, 2))
    cn = np.linalg.norm(coords[1:, 0] - coords[:-1, 2], axis=-1)
    link = ok[:-1] & ok[1:] & (np.nan_to_num(cn, nan=9.0) <= CHAIN_BREAK_DISTANCE)
    lo, hi = k, k + 1
    while lo > 0 and link[lo - 1]:
        lo -= 1
    while hi < len(coords) - 1 and link[hi]:
        hi += 1
    return lo, hi


def _fix_bond(out: np.ndarray, k: int, target: float) -> bool:
    """Correct bond ``k`` in place: of the rebuilt stretches (one to four residues each side of the
    bond) that close and have the bond right, the one with the fewest backbone atoms under
    ``CONTACT`` from the rest of the chain, then the one that moves its atoms least; False when
    none does (``out`` unchanged)."""
    lo, hi = _run(out, k)
    best: tuple[tuple[int, float], int, np.ndarray] | None = None
    for widen in range(1, 5):
        m0, m1 = max(k - widen, lo), min(k + 1 + widen, hi)
        s0, s1 = m0 - STEMS, m1 + STEMS
        free_n, free_c = s0 < lo, s1 > hi
        if free_n and free_c:
            break
        sub0, sub1 = (lo if free_n else s0), (hi if free_c else s1)
        sub = out[sub0 : sub1 + 1]
        j = k - sub0
        new = _rebuilt(sub, j, target, free_n, free_c)
        if new is None:
            continue
        score = (_contacts(new, out, sub0), float(np.sqrt(((new - sub) ** 2).sum(-1).mean())))
        if best is None or score < best[0]:
            best = (score, sub0, new)
        if free_n or free_c:  # a free end: widening changes nothing
            break
    if best is None:
        return False
    out[best[1] : best[1] + len(best[2])] = best[2]
    return True


def _contacts(new: np.ndarray, out: np.ndarray, sub0: int) -> int:
    """Backbone atoms of a rebuilt stretch closer than ``CONTACT`` to atoms of the chain outside it
    or to its own atoms two or more residues away (bonded neighbours left out)."""
    rest = np.concatenate([out[: max(sub0 - 1, 0)], out[sub0 + len(new) + 1 :]]).reshape(-1, 3)
    rest = rest[np.isfinite(rest).all(1)]
    x = new.reshape(-1, 3)
    res = np.repeat(np.arange(len(new)), 4)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    d2[np.abs(res[:, None] - res[None]) <= 1] = np.inf
    inner = int((d2.min(1) < CONTACT**2).sum())
    if not len(rest):
        return inner
    d2 = (x**2).sum(1)[:, None] + (rest**2).sum(1)[None] - 2.0 * x @ rest.T
    return inner + int((d2.min(1) < CONTACT**2).sum())


def _rebuilt(sub: np.ndarray, j: int, target: float, free_n: bool, free_c: bool) -> np.ndarray | None:
    """A stretch with bond ``j`` set to ``target``: closed onto its ``STEMS`` end residues each side, or
    rebuilt to a free end; None when it does not close or the bond does not come out right."""
    if free_n:  # rebuilt backwards: the residues before the bond turned about it
        return _rebuild_reversed(sub, j, target)
    tors = backbone_torsions(sub)
    geom = internal_geometry(sub)
    tors[j, 2] = target
    geom.c_n[j], geom.ca_c_n[j], geom.c_n_ca[j + 1] = BOND_C_N, ANGLE_CA_C_N, ANGLE_C_N_CA
    new = rebuild_backbone(tors, geom, first_residue=sub[0, :3])
    if free_c:
        return new
    (res,) = close_windows([new], [sub[:STEMS]], [sub[-STEMS:]])
    if res.anchor_rmsd >= CLOSED:
        return None
    om = abs(backbone_torsions(res.coords)[j, 2])
    return res.coords if ((om < CIS_MAX) if target == 0.0 else (om >= TRANS_MIN)) else None


def _rebuild_reversed(sub: np.ndarray, j: int, target: float) -> np.ndarray | None:
    """The stretch up to bond ``j`` turned, as a rigid body, about that bond's C-N axis so that omega ``j``
    is ``target``; the residues after the bond stay (a chain's free N-terminal end). None when the turn
    does not reach the target."""
    head, tail = sub[: j + 1], sub[j + 1 :]
    tors = backbone_torsions(sub)
    delta = np.radians(target - tors[j, 2])
    axis = tail[0, 0] - head[-1, 2]  # C(j) -> N(j + 1)
    axis /= np.linalg.norm(axis)
    origin = head[-1, 2]
    x = head.reshape(-1, 3) - origin
    for sign in (-1.0, 1.0):  # the sign that turns omega the right way
        c, s = np.cos(sign * delta), np.sin(sign * delta)
        rot = x * c + np.cross(axis, x) * s + np.outer(x @ axis, axis) * (1 - c)
        new = np.concatenate([(rot + origin).reshape(head.shape), tail])
        om = backbone_torsions(new)[j, 2]
        if np.isfinite(om) and abs(abs(om) - abs(target)) < 5.0:
            return new
    return None
