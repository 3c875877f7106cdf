"""Evaluation metrics, overall, per CDR and per loop-length bin, as the field reports them.

Loop residues are the CDR's own residues (no stems). Primary metrics:

* ``rmsd_loop``: backbone (N, CA, C, O) RMSD in Å of the loop residues,
  superposed on themselves;
* ``rmsd_stem``: RMSD of the loop residues after superposing the stem residues
  (the loop-modelling convention; loops with no stem residue on either side
  have none);
* ``phi_mae``, ``psi_mae``: mean absolute angular error in degrees over loop residues;
* ``seed_mse``: the seed's metric (squared error over sin/cos of phi and psi,
  where the true angle is defined), over loop residues.

Secondary, over the whole window (loop + stems): ``rmsd_local`` (window
superposed on itself), ``seed_mse_window``, ``phi_mae_window``,
``psi_mae_window``. Only loops with coordinates and no chain break get RMSDs
(``n_rmsd`` of them). Predicted windows are rebuilt from the predicted angles
with ideal geometry unless coordinates are given.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from loopfold.model.features import sincos
from loopfold.model.losses import angular_distance
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.superpose import kabsch, rmsd, superposed_rmsd

LENGTH_BINS = ((0, 8, "<=8"), (9, 12, "9-12"), (13, 16, "13-16"), (17, 99, ">=17"))


def true_arrays(df: pd.DataFrame, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """True angles ``[B, L, 3]`` (degrees, NaN padded) and window lengths ``[B]``."""
    ang = np.full((len(df), max_len, 3), np.nan)
    lens = np.zeros(len(df), dtype=int)
    for i, row in enumerate(df.itertuples(index=False)):
        n = len(row.phi)
        ang[i, :n] = np.stack([row.phi, row.psi, row.omega], 1)
        lens[i] = n
    return ang, lens


def loop_mask(df: pd.DataFrame, max_len: int) -> np.ndarray:
    """``[B, L]`` True at the loop's own residues of each window (stems and padding False)."""
    mask = np.zeros((len(df), max_len), dtype=bool)
    for i, (sn, seq) in enumerate(zip(df["stem_n"], df["sequence"], strict=True)):
        mask[i, len(sn) : len(sn) + len(seq)] = True
    return mask


def stem_rmsd(pred: np.ndarray, true: np.ndarray, loop: np.ndarray) -> float:
    """RMSD of the ``loop`` residues of ``pred`` ``[W, 4, 3]`` after superposing its other (stem) residues.

    NaN when fewer than three stem atoms are known in both.
    """
    stem = ~loop
    ps, ts = pred[stem].reshape(-1, 3), true[stem].reshape(-1, 3)
    ok = np.isfinite(ps).all(1) & np.isfinite(ts).all(1)
    if ok.sum() < 3:
        return float("nan")
    rot, t = kabsch(ps[ok], ts[ok])
    return rmsd(pred[loop].reshape(-1, 3) @ rot.T + t, true[loop])


def _masked_sums(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-loop sum and count of the finite ``values`` under ``mask`` (``[B, L, ...]`` / ``[B, L]``)."""
    ok = np.isfinite(values) & mask.reshape(mask.shape + (1,) * (values.ndim - 2))
    return np.where(ok, values, 0.0).reshape(len(values), -1).sum(1), ok.reshape(len(values), -1).sum(1)


def per_loop_errors(
    df: pd.DataFrame, angles: np.ndarray, pred_sincos: np.ndarray, coords: list[np.ndarray | None] | None = None
) -> pd.DataFrame:
    """Per-loop sums and counts for the metrics, over loop residues and over the window; RMSDs.

    ``coords`` gives predicted window coordinates per loop where known; other loops are
    rebuilt from ``angles`` with ideal geometry.
    """
    true, lens = true_arrays(df, angles.shape[1])
    t_sc = sincos(true[..., :2])
    sq = (pred_sincos - t_sc) ** 2
    dphi = angular_distance(angles[..., 0], true[..., 0])[..., None]
    dpsi = angular_distance(angles[..., 1], true[..., 1])[..., None]
    window = np.arange(angles.shape[1])[None, :] < lens[:, None]
    cols: dict[str, np.ndarray] = {"cdr": df["cdr"].to_numpy(), "length": df["sequence"].str.len().to_numpy()}
    for suffix, mask in (("", loop_mask(df, angles.shape[1])), ("_window", window)):
        for name, values in (("sq", sq), ("phi_abs", dphi), ("psi_abs", dpsi)):
            cols[name + suffix], cols["n_" + name + suffix] = _masked_sums(values, mask)
    rmsd = {k: np.full(len(df), np.nan) for k in ("rmsd_loop", "rmsd_stem", "rmsd_local")}
    for i, row in enumerate(df.itertuples(index=False)):
        if row.coords is None or row.has_chain_break:
            continue
        n = lens[i]
        xyz = (cast(np.ndarray, coords[i]) if coords is not None and coords[i] is not None
               else rebuild_backbone(angles[i, :n]))  # fmt: skip
        ref = np.asarray(row.coords, dtype=np.float64).reshape(n, 4, 3)
        loop = np.zeros(n, dtype=bool)
        loop[len(row.stem_n) : len(row.stem_n) + len(row.sequence)] = True
        rmsd["rmsd_local"][i] = superposed_rmsd(xyz, ref)
        rmsd["rmsd_loop"][i] = superposed_rmsd(xyz[loop], ref[loop])
        rmsd["rmsd_stem"][i] = stem_rmsd(xyz, ref, loop)
    return pd.DataFrame(cols | rmsd)


def summarise(errs: pd.DataFrame) -> dict:
    """Aggregate per-loop errors into the metric dict (loop residues first, window figures after)."""
    out: dict = {"n_loops": int(len(errs))}
    for suffix in ("", "_window"):
        out["seed_mse" + suffix] = float(errs["sq" + suffix].sum() / max(errs["n_sq" + suffix].sum(), 1))
        for a in ("phi", "psi"):
            out[f"{a}_mae{suffix}"] = float(errs[f"{a}_abs{suffix}"].sum() / max(errs[f"n_{a}_abs{suffix}"].sum(), 1))
    for key in ("rmsd_loop", "rmsd_stem", "rmsd_local"):
        r = errs[key].dropna()
        out[key] = float(r.mean()) if len(r) else None
        if key == "rmsd_loop":
            out["rmsd_loop_median"] = float(r.median()) if len(r) else None
    out["n_rmsd"] = int(errs["rmsd_loop"].notna().sum())
    return out


def evaluate_angles(
    df: pd.DataFrame,
    angles: np.ndarray,
    pred_sincos: np.ndarray | None = None,
    coords: list[np.ndarray | None] | None = None,
) -> dict:
    """Metrics overall, ``by_cdr`` and ``by_length``.

    Args:
        angles: predicted phi, psi, omega ``[B, L, 3]`` in degrees (rebuilt for RMSD).
        pred_sincos: predicted (sin phi, cos phi, sin psi, cos psi) ``[B, L, 4]`` for
            ``seed_mse``; derived from ``angles`` when None.
        coords: predicted window coordinates per loop (None entries: rebuilt from ``angles``).
    """
    if pred_sincos is None:
        pred_sincos = sincos(angles[..., :2])
    errs = per_loop_errors(df.reset_index(drop=True), angles, pred_sincos, coords)
    out = summarise(errs)
    out["by_cdr"] = {str(c): summarise(g) for c, g in errs.groupby("cdr")}
    out["by_length"] = {}
    for lo, hi, name in LENGTH_BINS:
        g = errs[(errs["length"] >= lo) & (errs["length"] <= hi)]
        if len(g):
            out["by_length"][name] = summarise(g)
    return out
