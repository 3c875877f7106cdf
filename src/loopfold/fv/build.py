"""Predicted loops grafted into a framework: closure over a batch, CB atoms, per-residue errors, clashes."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from loopfold.constants import BOND_C_N, CDRS
from loopfold.errors import BadStructure
from loopfold.fv.assemble import Frame, FvChain, FvModel
from loopfold.fv.library import FRAME_ERROR, N_POS
from loopfold.fv.template_frames import domain_ca, framework_pose
from loopfold.structure.closure import ClosureResult, close_windows
from loopfold.structure.contacts import close_pairs, model_atoms
from loopfold.structure.relieve import contacts, ideal_cb, relieve

#: Non-bonded heavy atoms closer than this (Å) count as a clash (the issue's bar without refinement).
CLASH_DISTANCE = 2.2
#: A relieved loop must close this well (Å, every peptide bond) to replace the one it came from.
PEPTIDE_TOLERANCE = 0.04


@dataclass(frozen=True)
class LoopWindow:
    """A predicted loop window to graft: its chain type, start in the chain sequence, stems and
    loop length, the predicted ``[W, 4, 3]`` window and the loop residues' predicted error (or None)."""

    cdr: str
    chain: str
    start: int
    n_stem: int
    n_loop: int
    n_stem_c: int
    window: np.ndarray
    error: np.ndarray | None
    #: how closure places the window (:data:`~loopfold.structure.closure.PLACEMENTS`)
    placement: str = "stems"


def stems(frame: Frame, lw: LoopWindow, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The framework's N- and C-stem residues for a loop window.

    Raises:
        BadStructure: a stem residue has no framework coordinates (outside the numbered domain).
    """
    xyz = frame.coords[lw.chain]
    lo, end = lw.start - lw.n_stem, lw.start + lw.n_loop
    sn, sc = xyz[max(lo, 0) : lw.start], xyz[end : end + lw.n_stem_c]
    if lo < 0 or len(sn) < lw.n_stem or len(sc) < lw.n_stem_c or not (np.isfinite(sn).all() and np.isfinite(sc).all()):
        raise BadStructure(f"{name} {lw.cdr}: its stems are not framework residues of the numbered domain")
    return sn, sc


def close_all(frames: list[Frame], loops: list[list[LoopWindow]], names: list[str], placement: str | None = None
              ) -> list[list[ClosureResult]]:  # fmt: skip
    """Close every loop of many antibodies in one batch (stems from each antibody's framework), each
    placed as its window says or all as ``placement``."""
    flat = [(k, lw) for k, lws in enumerate(loops) for lw in lws]
    pairs = [stems(frames[k], lw, names[k]) for k, lw in flat]
    closed = close_windows([lw.window for _, lw in flat], [p[0] for p in pairs], [p[1] for p in pairs],
                           placement=placement or [lw.placement for _, lw in flat])  # fmt: skip
    out: list[list[ClosureResult]] = [[] for _ in loops]
    for (k, _), res in zip(flat, closed, strict=True):
        out[k].append(res)
    return out


def framework_placed(lw: LoopWindow, template_ca: np.ndarray | None, model_ca: np.ndarray,
                     radius: float | None = None) -> tuple[LoopWindow, float | None]:  # fmt: skip
    """The window moved into the model by its template's own framework and marked ``framework``, with
    the framework superposition's residual (Å): ``template_ca`` ``[128, 3]`` in the window's frame
    (:mod:`loopfold.fv.template_frames`) superposed on the model chain's ``model_ca`` (``[128, 3]``,
    :func:`~loopfold.fv.template_frames.domain_ca`). Unchanged, and None, when the template has no
    frame or shares too few positions with the model. ``radius``: only framework CA atoms within this
    distance (Å) of the window's stem CA atoms are superposed (None: the whole chain's framework)."""
    if template_ca is None:
        return lw, None
    tca = template_ca
    if radius is not None:
        ends = np.concatenate([lw.window[: lw.n_stem, 1], lw.window[lw.n_stem + lw.n_loop :, 1]])
        near = (np.linalg.norm(tca[:, None] - ends[None], axis=-1) < radius).any(1)
        tca = np.where(near[:, None], tca, np.nan)
    pose = framework_pose(tca, model_ca)
    if pose is None:
        return lw, None
    rot, tr, res = pose
    return replace(lw, window=lw.window @ rot.T + tr, placement="framework"), res


def frame_ca(frame: Frame, chain: str) -> np.ndarray:
    """``[128, 3]`` framework CA of one chain of a frame at its IMGT positions (NaN where none)."""
    dom = frame.domains.get(chain)
    return np.full((N_POS, 3), np.nan) if dom is None else domain_ca(frame.coords[chain], dom)


def assemble(frame: Frame, loops: list[LoopWindow], closed: list[ClosureResult], name: str,
             coef: tuple[float, ...] = FRAME_ERROR) -> FvModel:  # fmt: skip
    """The Fv: framework residues from the frame, loop residues from their closed windows.

    Raises:
        BadStructure: a residue of the numbered domain has no coordinates (a CDR not predicted).
    """
    chains = []
    for ct in ("H", "L"):
        if ct not in frame.coords:
            continue
        seq, dom = frame.sequences[ct], frame.domains[ct]
        xyz = frame.coords[ct].copy()
        region = np.array(["FR"] * len(seq), dtype=object)
        err = np.full(len(seq), np.nan)
        for lw, res in zip(loops, closed, strict=True):
            if lw.chain != ct:
                continue
            sl = slice(lw.start, lw.start + lw.n_loop)
            xyz[sl] = res.coords[lw.n_stem : lw.n_stem + lw.n_loop]
            region[sl] = lw.cdr
            if lw.error is not None:
                p, q = loop_error_coef(coef, lw.cdr)
                err[sl] = p + q * lw.error
        idx = np.array(dom.indices)
        if not np.isfinite(xyz[idx]).all():
            bad = int(idx[~np.isfinite(xyz[idx]).all((1, 2))][0])
            raise BadStructure(f"{name} chain {ct}: residue {seq[bad]}{bad + 1} has no coordinates "
                               f"(in a CDR that was not predicted)")  # fmt: skip
        fw = (region[idx] == "FR") | ~np.isfinite(err[idx])
        err[idx[fw]] = _framework_error(frame, ct, idx[fw], coef)
        ids = tuple(f"{n}{i}" for n, i in dom.positions)
        same = frame.same[ct][idx] & (region[idx] == "FR")
        chains.append(FvChain(ct, "".join(seq[i] for i in idx), ids, xyz[idx],
                              ideal_cb(xyz[idx], np.array([seq[i] == "G" for i in idx], dtype=bool)),
                              np.round(err[idx], 2), tuple(region[idx]), idx, same))  # fmt: skip
    return FvModel(tuple(chains), dict(frame.templates), dict(frame.identity), count_clashes(chains),
                   frame.notes)  # fmt: skip


def relieve_clashes(frame: Frame, loops: list[LoopWindow], closed: list[ClosureResult], name: str,
                    coef: tuple[float, ...] = FRAME_ERROR, rounds: int = 2) -> tuple[FvModel, list[ClosureResult]]:
    """The assembled Fv, with every loop in a clash turned away from it (and closed again) when that
    leaves fewer clashes; returns the model and the loops' closed windows."""
    model = assemble(frame, loops, closed, name, coef)
    best = (model.clashes, model, list(closed))
    closed = list(closed)
    for _ in range(rounds):
        if model.clashes == 0:
            break
        for k, (lw, res) in enumerate(zip(loops, closed, strict=True)):
            obstacles = _obstacles(model, lw, res.coords)
            gly = np.array([a == "G" for a in frame.sequences[lw.chain][lw.start : lw.start + lw.n_loop]])
            if not contacts(res.coords, lw.n_stem, lw.n_loop, obstacles, gly, within=CLASH_DISTANCE):
                continue
            moved, rms = relieve(res.coords, lw.n_stem, lw.n_loop, obstacles, gly)
            a, n = lw.n_stem, lw.n_loop
            if peptide_deviation(moved) < PEPTIDE_TOLERANCE:  # the anchor held: still closed
                closed[k] = ClosureResult(moved, rms, res.iterations)
                continue
            (again,) = close_windows([moved], [moved[:a]], [moved[a + n :]])
            if peptide_deviation(again.coords) < PEPTIDE_TOLERANCE:  # kept only if still closed
                closed[k] = again
        model = assemble(frame, loops, closed, name, coef)
        if model.clashes < best[0]:
            best = (model.clashes, model, list(closed))
    return best[1], best[2]


def peptide_deviation(window: np.ndarray) -> float:
    """Largest deviation (Å) of a window's peptide C-N bonds from ideal."""
    return float(np.abs(np.linalg.norm(window[1:, 0] - window[:-1, 2], axis=-1) - BOND_C_N).max())


def _obstacles(model: FvModel, lw: LoopWindow, window: np.ndarray) -> np.ndarray:
    """Heavy atoms of the model near a loop window (within the window's CA reach of its centre plus
    6 Å), the window's own residues left out (the loop checks itself)."""
    centre = np.nanmean(window[:, 1], axis=0)
    out = []
    for ch in model.chains:
        keep = ~((ch.index >= lw.start - lw.n_stem) & (ch.index < lw.start + lw.n_loop + lw.n_stem_c)) \
            if ch.chain_id == lw.chain else np.ones(len(ch.index), dtype=bool)  # fmt: skip
        atoms = np.concatenate([ch.coords[keep], ch.cb[keep, None]], 1).reshape(-1, 3)
        out.append(atoms[np.isfinite(atoms).all(1)])
    atoms = np.concatenate(out)
    reach = np.nanmax(np.linalg.norm(window[:, 1] - centre, axis=-1)) + 6.0
    return atoms[np.linalg.norm(atoms - centre, axis=-1) < reach]


def loop_error_coef(coef: tuple[float, ...], cdr: str) -> tuple[float, float]:
    """The (p, q) of a CDR's loop residues (error = p + q x the loop error model's): its own pair when
    the coefficients carry one per CDR (see ``FRAME_ERROR``), else the shared one."""
    if len(coef) == 5 + 2 * len(CDRS):
        k = 5 + 2 * CDRS.index(cdr)
        return coef[k], coef[k + 1]
    return coef[3], coef[4]


def _framework_error(frame: Frame, ct: str, idx: np.ndarray, coef: tuple[float, ...]) -> np.ndarray:
    """Predicted error of framework residues from the template identity (see ``FRAME_ERROR``)."""
    a, b, c = coef[:3]
    return a + b * (1.0 - frame.identity.get(ct, 0.0)) + c * ~frame.same[ct][idx]


def count_clashes(chains: list[FvChain] | tuple[FvChain, ...]) -> int:
    """Pairs of heavy atoms (N, CA, C, O, CB) closer than ``CLASH_DISTANCE`` that are not in the same or
    neighbouring residues of a chain, where at least one atom is in a CDR."""
    x, r, c, loop = model_atoms([(ch.coords, ch.cb) for ch in chains],
                                [np.array([g != "FR" for g in ch.region]) for ch in chains])  # fmt: skip
    q = np.nonzero(loop)[0]
    if not len(q):
        return 0
    i, j = close_pairs(x, r, c, q, CLASH_DISTANCE)
    return int((~(loop[j] & (j <= i))).sum())  # loop-loop pairs once
