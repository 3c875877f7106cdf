"""Evaluation metrics over loop windows, overall, per CDR and per loop-length bin.

* ``seed_mse``: the seed's metric, mean squared error over (sin, cos) of phi
  and psi, only where the true angle is defined;
* ``phi_mae``, ``psi_mae``: mean absolute angular error in degrees;
* ``rmsd_local``: backbone (N, CA, C, O) RMSD in Å between the window rebuilt
  from predicted torsions (ideal geometry) and the true window, superposed; only
  loops with coordinates and no chain break count (``n_rmsd`` of them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopfold.model.features import sincos
from loopfold.model.losses import angular_distance
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.superpose import superposed_rmsd

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


def per_loop_errors(
    df: pd.DataFrame, angles: np.ndarray, pred_sincos: np.ndarray, coords: list[np.ndarray | None] | None = None
) -> pd.DataFrame:
    """Per-loop sums for the metrics: squared sin/cos error, abs phi/psi error, counts, RMSD.

    ``coords`` gives predicted coordinates per loop where known; other loops are
    rebuilt from ``angles`` with ideal geometry.
    """
    true, lens = true_arrays(df, angles.shape[1])
    t_sc = sincos(true[..., :2])
    ok = np.isfinite(t_sc)
    sq = np.where(ok, (pred_sincos - np.nan_to_num(t_sc)) ** 2, 0.0)
    dphi = angular_distance(angles[..., 0], true[..., 0])
    dpsi = angular_distance(angles[..., 1], true[..., 1])
    rmsds = np.full(len(df), np.nan)
    for i, row in enumerate(df.itertuples(index=False)):
        if row.coords is None or row.has_chain_break:
            continue
        n = lens[i]
        xyz = coords[i] if coords is not None and coords[i] is not None else rebuild_backbone(angles[i, :n])
        rmsds[i] = superposed_rmsd(xyz, row.coords)
    return pd.DataFrame({
        "cdr": df["cdr"].to_numpy(),
        "length": df["sequence"].str.len().to_numpy(),
        "sq": sq.sum((1, 2)), "n_sq": ok.sum((1, 2)),
        "phi_abs": np.nansum(np.where(np.isfinite(dphi), dphi, 0), 1), "n_phi": np.isfinite(dphi).sum(1),
        "psi_abs": np.nansum(np.where(np.isfinite(dpsi), dpsi, 0), 1), "n_psi": np.isfinite(dpsi).sum(1),
        "rmsd": rmsds,
    })  # fmt: skip


def summarise(errs: pd.DataFrame) -> dict:
    """Aggregate per-loop errors into the metric dict."""
    r = errs["rmsd"].dropna()
    return {
        "n_loops": int(len(errs)),
        "seed_mse": float(errs["sq"].sum() / max(errs["n_sq"].sum(), 1)),
        "phi_mae": float(errs["phi_abs"].sum() / max(errs["n_phi"].sum(), 1)),
        "psi_mae": float(errs["psi_abs"].sum() / max(errs["n_psi"].sum(), 1)),
        "rmsd_local": float(r.mean()) if len(r) else None,
        "n_rmsd": int(len(r)),
    }


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
