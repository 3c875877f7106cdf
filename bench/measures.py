"""Measurements the benchmarks (and tests) make of loopfold's outputs; loopfold itself does not need them.

Run from ``bench/`` scripts as ``from measures import ...`` and from tests as ``from bench.measures import ...``.
"""

from __future__ import annotations

import gemmi
import numpy as np
import pandas as pd

from loopfold.constants import BOND_C_N, BOND_C_O, BOND_CA_C, BOND_N_CA
from loopfold.evaluate.error_fit import error_table
from loopfold.fv.assemble import FvChain, FvModel
from loopfold.fv.library import FrameworkLibrary
from loopfold.structure.contacts import model_atoms, nonbonded_d2


def geometry_report(model: FvModel) -> dict[str, float]:
    """Largest backbone bond-length deviation from ideal (Å, over N-CA, CA-C, C-O and the peptide C-N),
    the longest peptide C-N (a chain gap shows as > 2 Å) and the closest non-bonded heavy-atom pair."""
    dev, gap = 0.0, 0.0
    for ch in model.chains:
        x = ch.coords
        for (i, j), ideal in zip(((0, 1), (1, 2), (2, 3)), (BOND_N_CA, BOND_CA_C, BOND_C_O), strict=True):
            dev = max(dev, float(np.abs(np.linalg.norm(x[:, i] - x[:, j], axis=-1) - ideal).max()))
        cn = np.linalg.norm(x[1:, 0] - x[:-1, 2], axis=-1)
        if len(cn):
            dev, gap = max(dev, float(np.abs(cn - BOND_C_N).max())), max(gap, float(cn.max()))
    return {"max_bond_deviation": round(dev, 3), "max_peptide_bond": round(gap, 3),
            "min_nonbonded": round(min_nonbonded(model.chains), 3)}  # fmt: skip


def min_nonbonded(chains: list[FvChain] | tuple[FvChain, ...]) -> float:
    """Closest pair of heavy atoms (N, CA, C, O, CB) not in the same or neighbouring residues of a chain."""
    x, r, c, _ = model_atoms([(ch.coords, ch.cb) for ch in chains])
    return float(np.sqrt(nonbonded_d2(x, r, c).min()))


def closest_heavy_pair(pdb_text: str) -> float:
    """Closest pair of heavy atoms in different residues that are not bonded neighbours (Å); a
    disulfide's two SG atoms are bonded and not counted."""
    st = gemmi.read_pdb_string(pdb_text)
    st.remove_hydrogens()
    xyz, res, chain, sg = [], [], [], []
    for c, ch in enumerate(st[0]):
        for i, r in enumerate(ch):
            for atom in r:
                xyz.append(atom.pos.tolist())
                res.append(i)
                chain.append(c)
                sg.append(atom.name == "SG")
    s = np.array(sg)
    d2 = nonbonded_d2(np.array(xyz), np.array(res), np.array(chain))
    d2[s[:, None] & s[None]] = np.inf
    return float(np.sqrt(d2.min()))


def predicted_rmsd(predictor, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per loop: predicted ``rmsd_predicted`` and true ``rmsd_loop`` (NaN where unknown)."""
    x, _, loops, true = error_table(predictor, df)
    out = np.full(len(true), np.nan)
    if predictor.error_model is None or len(loops) == 0:
        return out, true
    err = predictor.error_model.predict(x)
    for i in np.unique(loops):
        out[i] = float(np.sqrt(np.mean(err[loops == i] ** 2)))
    return out, true


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation over the pairs where both are finite (None for fewer than 3)."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return None
    ra, rb = pd.Series(a[ok]).rank().to_numpy(), pd.Series(b[ok]).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def error_report(predictor, df: pd.DataFrame, bins: int = 4) -> dict | None:
    """How well ``rmsd_predicted`` tracks the true ``rmsd_loop``: Spearman overall, for H3 and per CDR,
    and observed vs predicted mean per quartile of the prediction. None when the model has no error model."""
    if predictor.error_model is None:
        return None
    df = df.reset_index(drop=True)
    pred, true = predicted_rmsd(predictor, df)
    ok = np.isfinite(pred) & np.isfinite(true)
    out: dict = {"n": int(ok.sum()), "spearman": spearman(pred, true), "by_cdr": {}}
    for cdr in sorted(df["cdr"].unique()):
        sel = (df["cdr"] == cdr).to_numpy()
        both = sel & ok
        out["by_cdr"][str(cdr)] = {"n": int(both.sum()), "spearman": spearman(pred[sel], true[sel]),
                                   "predicted": float(pred[both].mean()) if both.any() else None,
                                   "observed": float(true[both].mean()) if both.any() else None}  # fmt: skip
    edges = np.quantile(pred[ok], np.linspace(0, 1, bins + 1)) if ok.any() else []
    out["bins"] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = ok & (pred >= lo) & (pred <= hi)
        out["bins"].append({"range": [round(float(lo), 2), round(float(hi), 2)], "n": int(sel.sum()),
                            "predicted": float(pred[sel].mean()), "observed": float(true[sel].mean())})  # fmt: skip
    return out


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """Mean confidence and observed accuracy per confidence decile, and the expected calibration error."""
    edges = np.linspace(0, 1, n_bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (confidence >= lo) & (confidence < hi if hi < 1 else confidence <= hi)
        if sel.any():
            c, a = float(confidence[sel].mean()), float(correct[sel].mean())
            table.append({"range": [round(lo, 2), round(hi, 2)], "n": int(sel.sum()),
                          "confidence": round(c, 3), "accuracy": round(a, 3)})  # fmt: skip
            ece += sel.sum() / len(confidence) * abs(c - a)
    return {"ece": round(float(ece), 4), "table": table}


def library_subset(lib: FrameworkLibrary, keep: np.ndarray) -> FrameworkLibrary:
    """The framework library's entries where ``keep`` is True."""
    return FrameworkLibrary(lib.ids[keep], lib.residues[keep], lib.coords[keep], lib.resolution[keep], lib.error_coef,
                            None if lib.h3 is None else lib.h3[keep],
                            None if lib.nanobody is None else lib.nanobody[keep])  # fmt: skip
