"""Choosing a loop's conformation in the Fv: the network's best templates placed and ranked.

The network ranks templates by how probable their torsions are, one loop at a
time; on new antibodies the best of its top 20 is far better than its first
choice. Each candidate is therefore placed in the modelled Fv the way the
written loop would be (by its template's framework or its stems) and described
by what the placement shows (:data:`FEATURES`); a linear model per CDR, fitted
on training loops predicted as if new (``bench/ranker.py``), predicts each
candidate's framework-superposed RMSD (``rmsd_frame``), and the lowest is
written. The model is kept in the run folder as ``ranker.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from loopfold.constants import CDRS
from loopfold.errors import CheckpointError
from loopfold.fv.assemble import Frame
from loopfold.fv.build import LoopWindow, frame_ca, framework_placed
from loopfold.fv.template_frames import TemplateFrames
from loopfold.io.atomic import write_text
from loopfold.model.templates import Candidates
from loopfold.structure.superpose import kabsch

RANKER_FILE = "ranker.json"
#: What describes a placed candidate (one column each, in this order).
FEATURES = (
    "score_gap",  # network score less the first candidate's (0 for the first)
    "rank",  # place in the network's ranking (0 = first), over the candidates kept
    "identity",  # sequence identity of the template loop to the query loop
    "identity_gap",  # that less the most identical candidate's
    "stem_misfit",  # RMSD (Å) of the placed window's stem N, CA, C to the model's stems
    "framework_residual",  # RMSD (Å) of the template's framework on the model's (0 when placed by the stems)
    "by_framework",  # 1 when placed by the template's framework
    "clashes",  # loop backbone atoms within 3 Å of a framework atom of the model
    "loop_clashes",  # loop backbone atoms within 3 Å of another loop's (as first placed)
    "contacts",  # framework CA atoms within 8 Å of a loop CA, per loop residue
    "consensus",  # mean CA distance (Å) of the placed loop to the other candidates placed
    "length",  # loop residues
)
CLASH = 3.0
CONTACT = 8.0


def columns(x: np.ndarray) -> np.ndarray:
    """What the ranker reads of one loop's candidates ``[K, F]``: the features and the same less their
    mean over the loop's candidates (how a candidate differs from its rivals), ``[K, 2F]``."""
    return np.column_stack([x, x - x.mean(0)])


@dataclass(frozen=True)
class Ranker:
    """Per CDR a linear model of a candidate's ``rmsd_frame`` (Å) on the standardised :func:`columns`
    of :data:`FEATURES`: ``mean`` and ``scale`` ``[2F]``, ``coef`` CDR -> ``[2F + 1]`` (intercept
    last). CDRs without a model, and records of other modes, keep the network's first choice."""

    mean: np.ndarray
    scale: np.ndarray
    coef: dict[str, np.ndarray]
    k: int = 20
    #: the record modes (``paired``, ``nanobody``, ``heavy``) whose loops it ranks
    modes: tuple[str, ...] = ("paired",)

    def predict(self, cdr: str, x: np.ndarray) -> np.ndarray | None:
        """Predicted ``rmsd_frame`` per candidate row of one loop's ``x`` ``[K, F]`` (None when the CDR
        has no model)."""
        c = self.coef.get(cdr)
        if c is None:
            return None
        return ((columns(x) - self.mean) / self.scale) @ c[:-1] + c[-1]

    def save(self, path: str | Path) -> None:
        """Write as JSON (atomically)."""
        doc = {"features": list(FEATURES), "k": self.k, "modes": list(self.modes), "mean": self.mean.tolist(),
               "scale": self.scale.tolist(), "coef": {c: v.tolist() for c, v in self.coef.items()}}  # fmt: skip
        write_text(path, json.dumps(doc, indent=1) + "\n")


def load_ranker(path: str | Path) -> Ranker | None:
    """The ranker of a run folder's file, or None when absent.

    Raises:
        CheckpointError: the file is there but is not a ranker of these features.
    """
    if not Path(path).is_file():
        return None
    try:
        doc = json.loads(Path(path).read_text())
        if not isinstance(doc, dict) or not isinstance(doc["coef"], dict) or not isinstance(doc["modes"], list):
            raise TypeError("coef must be an object and modes a list")
        r = Ranker(np.array(doc["mean"], float), np.array(doc["scale"], float),
                   {str(c): np.array(v, float) for c, v in doc["coef"].items()}, int(doc["k"]),
                   tuple(str(m) for m in doc["modes"]))  # fmt: skip
        ok = tuple(doc["features"]) == FEATURES and r.mean.shape == r.scale.shape == (2 * len(FEATURES),)
        ok &= all(v.shape == (2 * len(FEATURES) + 1,) and np.isfinite(v).all() for v in r.coef.values())
        ok &= bool((r.scale > 0).all() and np.isfinite(r.mean).all()) and 2 <= r.k <= 1000
        ok &= set(r.coef) <= set(CDRS) and set(r.modes) <= {"paired", "nanobody", "heavy", "light"}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a loopfold ranker ({type(exc).__name__}: {exc})") from None
    if not ok:
        raise CheckpointError(f"{path}: a ranker of other features, shapes, CDRs or modes than this loopfold's")
    return r


def _framework_atoms(frame: Frame, lw: LoopWindow, centre: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Backbone atoms and CA atoms of the frame's framework within ``reach`` (Å) of ``centre``, the
    window's own residues left out."""
    atoms, cas = [], []
    for ct, xyz in frame.coords.items():
        keep = np.ones(len(xyz), dtype=bool)
        if ct == lw.chain:
            keep[max(lw.start - lw.n_stem, 0) : lw.start + lw.n_loop + lw.n_stem_c] = False
        a, c = xyz[keep].reshape(-1, 3), xyz[keep, 1]
        atoms.append(a[np.isfinite(a).all(1)])
        cas.append(c[np.isfinite(c).all(1)])
    a, c = np.concatenate(atoms), np.concatenate(cas)
    return a[np.linalg.norm(a - centre, axis=-1) < reach], c[np.linalg.norm(c - centre, axis=-1) < reach]


def place_candidates(frame: Frame, lw: LoopWindow, cand: Candidates, frames: TemplateFrames | None,
                     others: np.ndarray | None = None) -> tuple[list[LoopWindow], np.ndarray]:  # fmt: skip
    """Every candidate placed in the frame as the written loop would be (by its template's framework
    where ``frames`` places this CDR, else superposed on the stems), and their features ``[K, F]``;
    ``others``: backbone atoms ``[M, 3]`` of the antibody's other loops."""
    a, n = lw.n_stem, lw.n_loop
    fixed, stem_idx = _stems(frame, lw)
    ca = frame_ca(frame, lw.chain)
    placed, rows = [], []
    for j in range(len(cand.ids)):
        w = replace(lw, window=cand.windows[j], placement="stems")
        res = None
        if frames is not None and lw.cdr in frames.cdrs:
            w, res = framework_placed(w, frames.get(cand.ids[j]), ca, frames.radius)
        if res is None:
            w = replace(w, window=on_stems(frame, w, (fixed, stem_idx)))
        misfit = float(np.sqrt(((w.window[stem_idx, :3] - fixed) ** 2).sum(-1).mean()))
        placed.append(w)
        rows.append((misfit, 0.0 if res is None else res, float(res is not None)))
    loops = np.stack([w.window[a : a + n] for w in placed])  # [K, n, 4, 3]
    centre = fixed.reshape(-1, 3).mean(0)
    reach = float(np.linalg.norm(loops.reshape(-1, 3) - centre, axis=-1).max()) + CONTACT
    atoms, fw_ca = _framework_atoms(frame, lw, centre, reach)
    k = len(placed)
    clashes = np.zeros(k)
    near = np.zeros(k)
    if len(atoms):
        d, _ = cKDTree(atoms).query(loops.reshape(-1, 3), distance_upper_bound=CLASH)
        clashes = np.isfinite(d).reshape(k, -1).sum(1)
    loop_clashes = np.zeros(k)
    if others is not None and len(others):
        d, _ = cKDTree(others).query(loops.reshape(-1, 3), distance_upper_bound=CLASH)
        loop_clashes = np.isfinite(d).reshape(k, -1).sum(1)
    if len(fw_ca):
        near = cKDTree(fw_ca).query_ball_point(loops[:, :, 1].reshape(-1, 3), CONTACT, return_length=True)
        near = near.reshape(k, n).sum(1) / n
    cas = loops[:, :, 1]
    pair = np.sqrt(((cas[:, None] - cas[None]) ** 2).sum(-1).mean(-1))  # [K, K]
    consensus = pair.sum(1) / max(len(placed) - 1, 1)
    x = np.column_stack([
        cand.scores - cand.scores[0], np.arange(len(placed)), cand.identity, cand.identity - cand.identity.max(),
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], clashes, loop_clashes, near, consensus,
        np.full(len(placed), n),
    ])  # fmt: skip
    return placed, x


def _stems(frame: Frame, lw: LoopWindow) -> tuple[np.ndarray, np.ndarray]:
    """The frame's stem N, CA, C ``[a + c, 3, 3]`` of a window and the window's stem residue indices."""
    a, n, xyz = lw.n_stem, lw.n_loop, frame.coords[lw.chain]
    fixed = np.concatenate([xyz[lw.start - a : lw.start], xyz[lw.start + n : lw.start + n + lw.n_stem_c]])[:, :3]
    return fixed, np.r_[:a, a + n : a + n + lw.n_stem_c]


def on_stems(frame: Frame, lw: LoopWindow, stems: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A window superposed on the frame's stems (its stem N, CA, C on theirs); ``stems``: the frame's
    stems and the window's stem indices when already known (:func:`_stems`)."""
    fixed, idx = stems if stems is not None else _stems(frame, lw)
    rot, tr = kabsch(lw.window[idx, :3].reshape(-1, 3), fixed.reshape(-1, 3))
    return lw.window @ rot.T + tr


def first_loop_atoms(frame: Frame, windows: list[LoopWindow | None]) -> list[np.ndarray]:
    """Per window the backbone atoms ``[4n, 3]`` of its loop residues as first placed in the frame (by
    its template's framework, or on its stems; none for a None window): once per antibody, the others
    of each loop (:func:`others_of`)."""
    out = []
    for w in windows:
        placed = None if w is None else w.window if w.placement == "framework" else on_stems(frame, w)
        out.append(np.zeros((0, 3)) if w is None or placed is None else
                   placed[w.n_stem : w.n_stem + w.n_loop].reshape(-1, 3))  # fmt: skip
    return out


def others_of(atoms: list[np.ndarray], m: int) -> np.ndarray:
    """The loop atoms ``[M, 3]`` of every window but the m-th (what :func:`place_candidates` takes as
    ``others``)."""
    return np.concatenate([a for n, a in enumerate(atoms) if n != m] or [np.zeros((0, 3))])


def ranked_window(frame: Frame, lw: LoopWindow, cand: Candidates | None, frames: TemplateFrames | None,
                  ranker: Ranker, others: np.ndarray | None = None
                  ) -> tuple[LoopWindow, int, float | None]:  # fmt: skip
    """The candidate the ranker predicts lowest, placed (its index in ``cand`` and the predicted
    ``rmsd_frame``). The window as given when that is the first candidate (the written loop), and
    with index 0 and None when the CDR has no model or there is only one candidate."""
    if cand is None or len(cand.ids) < 2 or lw.cdr not in ranker.coef:
        return lw, 0, None
    placed, x = place_candidates(frame, lw, cand, frames, others)
    pred = ranker.predict(lw.cdr, x)
    assert pred is not None
    j = int(np.argmin(pred))
    return (lw if j == 0 else replace(placed[j], error=lw.error)), j, float(pred[j])
