"""Typed loop values before rounding: what the API's :class:`~loopfold.api.Loop` is built from (the
JSON record holds the same values rounded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoopArrays:
    """One loop's residues (stems excluded) as written: backbone ``coords`` ``[n, 4, 3]`` N, CA, C, O
    (Å), ``angles`` ``[n, 3]`` phi, psi, omega (degrees; NaN where undefined), ``confidence`` ``[n]``
    and ``error`` ``[n]``, the predicted error of each residue with the loop superposed on itself (Å;
    None without an error model)."""

    coords: np.ndarray
    angles: np.ndarray
    confidence: np.ndarray
    error: np.ndarray | None

