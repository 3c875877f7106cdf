"""Predicted error in Å: a per-residue regression fitted on held-out (validation) predictions.

After training, the model predicts the validation loops (never trained on);
each loop residue's true error is its backbone deviation (Å, root mean square over N, CA,
C, O) once the loop is superposed on itself. A least-squares fit maps
per-residue features the predictor has at run time to that error:

* the network's probability of the output residue's Ramachandran bin, and its
  bin entropy;
* the loop's highest identity to a template of its CDR (the training part), capped
  at ``IDENTITY_CAP``: validation loops, on which the fit is made, are all below
  it (a 70% cluster split), so higher identities would be extrapolated;
* loop length, the residue's distance from the nearer loop end, the CDR.

``rmsd_predicted`` of a loop is the root mean square of its residues' errors,
the same quantity as ``rmsd_loop``. The coefficients live in the run's
``config.json`` (``info.error_model``); ``docs/model.md`` gives how well the
prediction ranks and calibrates on the held-out sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from loopfold.constants import CDRS
from loopfold.errors import InvalidFile

FEATURES = ("bias", "confidence", "entropy", "identity", "length", "centrality") + tuple(f"cdr_{c}" for c in CDRS)
FLOOR, CEILING = 0.05, 25.0
IDENTITY_CAP = 0.7


@dataclass(frozen=True)
class ErrorModel:
    """Coefficients of the per-residue error regression, in ``FEATURES`` order."""

    coef: np.ndarray

    @classmethod
    def from_info(cls, info: dict, where: str) -> ErrorModel | None:
        """The error model stored in a run's info block (None when the run has none).

        Raises:
            InvalidFile: a stored model that is not one finite number per feature.
        """
        block = info.get("error_model")
        if block is None:
            return None
        coef = block.get("coef") if isinstance(block, dict) else None
        ok = isinstance(coef, list) and len(coef) == len(FEATURES) and block.get("features") == list(FEATURES)
        ok = ok and all(isinstance(c, int | float) and not isinstance(c, bool) and np.isfinite(c)
                        for c in cast(list, coef))  # fmt: skip
        if not ok:
            raise InvalidFile(f"{where}: error_model must name the features {', '.join(FEATURES)} and hold "
                              f"{len(FEATURES)} finite coefficients")  # fmt: skip
        return cls(np.asarray(coef, dtype=np.float64))

    def to_info(self) -> dict:
        """JSON-ready block for ``config.json``."""
        return {"features": list(FEATURES), "coef": [round(float(c), 6) for c in self.coef]}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Per-residue error (Å) from features ``[N, len(FEATURES)]``."""
        return np.clip(x @ self.coef, FLOOR, CEILING)


def residue_features(
    confidence: np.ndarray, probs: np.ndarray | None, identity: float | None, cdr: str
) -> np.ndarray:
    """``[n, len(FEATURES)]`` features of one loop's n residues.

    ``confidence`` ``[n]`` is the probability of each output residue's bin, ``probs``
    ``[n, K]`` the bin probabilities (None: entropy 0).
    """
    return loops_features(confidence, probs, [identity], [cdr], [len(confidence)])


def loops_features(
    confidence: np.ndarray, probs: np.ndarray | None, identity: list[float | None], cdrs: list[str],
    sizes: list[int] | np.ndarray,
) -> np.ndarray:
    """:func:`residue_features` of several loops at once, their residues end to end: loop k has
    ``sizes[k]`` residues, template identity ``identity[k]`` and CDR ``cdrs[k]``."""
    sizes_ = np.asarray(sizes, dtype=int)
    m = int(sizes_.sum())
    x = np.zeros((m, len(FEATURES)))
    x[:, 0] = 1.0
    x[:, 1] = np.nan_to_num(confidence, nan=0.0)
    if probs is not None:
        p = np.clip(probs, 1e-9, 1.0)
        x[:, 2] = -(p * np.log(p)).sum(-1) / np.log(p.shape[-1])
    x[:, 3] = np.repeat([0.0 if v is None else min(v, IDENTITY_CAP) for v in identity], sizes_)
    n = np.repeat(sizes_, sizes_)
    pos = np.arange(m) - np.repeat(np.cumsum(sizes_) - sizes_, sizes_)
    x[:, 4] = n / 10.0
    x[:, 5] = np.minimum(pos + 1, n - pos) / 10.0
    col = np.repeat([6 + CDRS.index(c) if c in CDRS else -1 for c in cdrs], sizes_)
    known = col >= 0
    x[np.flatnonzero(known), col[known]] = 1.0
    return x


def residue_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``[n]`` per-residue deviation (Å, root mean square over the 4 atoms) after superposing the loop on itself."""
    from loopfold.structure.superpose import kabsch

    p, t = pred.reshape(-1, 3), true.reshape(-1, 3)
    rot, tr = kabsch(p, t)
    d = ((p @ rot.T + tr - t) ** 2).sum(-1).reshape(-1, 4)
    return np.sqrt(d.mean(1))


def fit_error_model(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3) -> ErrorModel:
    """Least squares (a small ridge) of per-residue errors ``y`` on features ``x``."""
    a = x.T @ x + ridge * np.eye(x.shape[1])
    return ErrorModel(np.linalg.solve(a, x.T @ y))
