"""Confidence calibration: temperature scaling of the Ramachandran-bin probabilities.

The temperature T is the one (searched on a log grid) that minimises the
negative log likelihood of the true bins of validation residues under
``softmax(log p / T)`` (Guo et al. 2017). ``bench/calibration.py`` bins
residues by confidence and compares mean confidence with the observed frequency.
"""

from __future__ import annotations

import numpy as np


def rescale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log probs / T)`` over the last axis."""
    z = np.log(probs + 1e-12) / temperature
    z -= z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.25, 4] minimising the NLL of ``labels`` (``[N]``) under ``probs`` (``[N, K]``)."""
    if len(labels) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 49))
    rows = np.arange(len(labels))
    nll = [-np.log(rescale(probs, t)[rows, labels] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])
