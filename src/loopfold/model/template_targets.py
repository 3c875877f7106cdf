"""Candidate templates and their true loop RMSDs: the structural target of template choice.

LoopNet learns per-residue Ramachandran bins by cross-entropy and then picks
the training loop whose bins it finds most probable; nothing in its training
says which template is *structurally* closest. Here each training loop gets
its ``N_CANDIDATES`` most identical templates (same CDR and window length, never
itself; in the strict view none >= 70% identical) with each one's loop RMSD to
the true loop (loop residues superposed on themselves, the benchmark's
``rmsd_loop``). The network scores candidates exactly as prediction does (sum of
the log probabilities of their bins plus ``identity_weight`` x identity) and is
trained on the expected RMSD under the softmax of those scores, so the
template it would write is pulled toward the structurally closest one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopfold.model.template_input import retrieve
from loopfold.model.templates import TemplateLibrary

N_CANDIDATES = 48


def _loop_rmsd(cands: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``[C]`` RMSD of candidate loops ``[C, N, 3]`` to ``true`` ``[N, 3]`` after superposition (batched Kabsch)."""
    p = cands - cands.mean(1, keepdims=True)
    t = true - true.mean(0)
    h = np.einsum("cni,nj->cij", p, t)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("cji,ckj->cik", vt, u)))
    fix = np.ones((len(cands), 3))
    fix[:, 2] = d
    rot = np.einsum("cji,cj,ckj->cik", vt, fix, u)  # V diag(1, 1, d) U^T
    diff = np.einsum("cij,cnj->cni", rot, p) - t
    return np.sqrt((diff**2).sum(-1).mean(1))


def candidate_targets(
    df: pd.DataFrame, library: TemplateLibrary, centers: np.ndarray, max_len: int, cap: float | None = None
) -> dict[str, np.ndarray]:
    """Per row: candidate bins ``[B, C, max_len]`` (-1 where undefined), identities ``[B, C]``,
    true loop RMSDs ``[B, C]`` (NaN where unknown or no candidate)."""
    b = len(df)
    bins = np.full((b, N_CANDIDATES, max_len), -1, dtype=np.int64)
    ident = np.zeros((b, N_CANDIDATES), dtype=np.float32)
    rmsd = np.full((b, N_CANDIDATES), np.nan, dtype=np.float32)
    df = df.reset_index(drop=True)
    widths = (df["stem_n"].str.len() + df["sequence"].str.len() + df["stem_c"].str.len()).to_numpy()
    for (cdr, w), g in df.groupby([df["cdr"], widths]):
        key = (str(cdr), int(w))
        if key not in library.groups:
            continue
        xyz = library.groups[key].coords
        tbins, defined, _, _ = library._features(key, centers)
        caps = None if cap is None else np.full(len(g), cap, dtype=np.float32)
        top, sims, _ = retrieve(library, key[0], key[1], g["sequence"].tolist(), [{x} for x in g["loop_id"]], caps,
                                N_CANDIDATES)  # fmt: skip
        for r, (i, row) in enumerate(g.iterrows()):
            order = top[r][top[r] >= 0]
            if not len(order):
                continue
            k = len(order)
            bins[i, :k, :w] = np.where(defined[order], tbins[order], -1)
            ident[i, :k] = sims[r, :k]
            a, e = len(row["stem_n"]), len(row["stem_n"]) + len(row["sequence"])
            true = row["coords"]
            if true is None or bool(row["has_missing_atoms"]):
                continue
            true = np.asarray(true, dtype=np.float64).reshape(-1, 4, 3)[a:e].reshape(-1, 3)
            if np.isfinite(true).all():
                rmsd[i, :k] = _loop_rmsd(xyz[order][:, a:e].reshape(k, -1, 3), true)
    return {"cand_bins": bins, "cand_ident": ident, "cand_rmsd": rmsd}
