"""Baselines: per-residue-type mean, and nearest neighbour (the database-search idea of FREAD)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopfold.data.identity import identity_matrix
from loopfold.model.features import sincos


def _window(row) -> str:  # noqa: ANN001
    return row.stem_n + row.sequence + row.stem_c


class ResidueMeanBaseline:
    """Predicts, for each residue type (per CDR when seen there), the mean (sin, cos) of phi and psi."""

    name = "residue-mean"

    def fit(self, train: pd.DataFrame) -> ResidueMeanBaseline:
        """Average the training windows' sin/cos by (CDR, residue) and by residue."""
        sums: dict[tuple, np.ndarray] = {}
        for row in train.itertuples(index=False):
            sc = sincos(np.stack([row.phi, row.psi], 1))
            for aa, v in zip(_window(row), sc, strict=True):
                for key in ((row.cdr, aa), (None, aa)):
                    acc = sums.setdefault(key, np.zeros(8))
                    ok = np.isfinite(v)
                    acc[:4] += np.where(ok, v, 0)
                    acc[4:] += ok
        self.table = {k: v[:4] / np.maximum(v[4:], 1) for k, v in sums.items()}
        return self

    def predict(self, df: pd.DataFrame, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """(angles ``[B, L, 3]`` in degrees, sincos ``[B, L, 4]``)."""
        sc = np.zeros((len(df), max_len, 4))
        for i, row in enumerate(df.itertuples(index=False)):
            for j, aa in enumerate(_window(row)):
                sc[i, j] = self.table.get((row.cdr, aa), self.table.get((None, aa), np.zeros(4)))
        ang = np.full((len(df), max_len, 3), 180.0)
        ang[..., 0] = np.degrees(np.arctan2(sc[..., 0], sc[..., 1]))
        ang[..., 1] = np.degrees(np.arctan2(sc[..., 2], sc[..., 3]))
        return ang, sc


class NearestNeighbourBaseline:
    """Copies the torsions of the most similar training loop of the same CDR and window length."""

    name = "nearest-neighbour"

    def fit(self, train: pd.DataFrame) -> NearestNeighbourBaseline:
        """Index training loops by (CDR, window length); the residue mean is the fallback."""
        self.train = train.reset_index(drop=True)
        self.groups = self.train.groupby([self.train["cdr"], self.train["phi"].map(len)]).indices
        self.fallback = ResidueMeanBaseline().fit(train)
        return self

    def predict(self, df: pd.DataFrame, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """(angles, sincos) as for :class:`ResidueMeanBaseline`."""
        ang, sc = self.fallback.predict(df, max_len)
        df = df.reset_index(drop=True)
        keys = list(zip(df["cdr"], df["phi"].map(len), strict=True))
        for key in set(keys):
            if key not in self.groups:
                continue
            rows = [i for i, k in enumerate(keys) if k == key]
            cand = self.groups[key]
            sim = identity_matrix([df["sequence"][i] for i in rows], [self.train["sequence"][j] for j in cand])
            best = cand[sim.argmax(1)]
            for i, j in zip(rows, best, strict=True):
                src = self.train.iloc[j]
                n = len(src["phi"])
                t = np.stack([src["phi"], src["psi"], np.nan_to_num(src["omega"], nan=180.0)], 1)
                t[:, :2] = np.where(np.isfinite(t[:, :2]), t[:, :2], ang[i, :n, :2])
                ang[i, :n] = t
                sc[i, :n] = sincos(t[:, :2])
        return ang, sc
