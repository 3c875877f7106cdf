"""Baselines: per-residue-type mean, and the most identical training loop (the database-search idea of FREAD)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopfold.data.identity import identity_matrix
from loopfold.model.features import sincos
from loopfold.model.templates import TemplateLibrary


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


class IdentityTemplateBaseline:
    """Copies the most sequence-identical training loop of the same CDR and window length.

    Loops with coordinates are rebuilt exactly as the model's templates are (own
    torsions and bond angles, ideal bond lengths:
    :class:`loopfold.model.templates.TemplateLibrary`), so the baseline and the
    model differ only in which training loop they pick. Training data without
    coordinates (the seed's angle tables) give torsions only, rebuilt with ideal
    geometry. Windows with no training loop of their (CDR, length) fall back to
    the residue mean.
    """

    name = "identity template"

    def fit(self, train: pd.DataFrame) -> IdentityTemplateBaseline:
        """Template library of the training loops with coordinates, torsions of all; residue-mean fallback."""
        self.library = TemplateLibrary.from_frame(train)
        train = train.reset_index(drop=True)
        self.torsions: dict[tuple[str, int], tuple[np.ndarray, list[str]]] = {}
        for key, idx in train.groupby([train["cdr"], train["phi"].map(len)]).indices.items():
            rows = train.iloc[idx]
            tors = np.stack([np.stack([r.phi, r.psi, np.nan_to_num(r.omega, nan=180.0)], 1)
                             for r in rows.itertuples(index=False)])  # fmt: skip
            self.torsions[key] = (tors, rows["sequence"].tolist())
        self.fallback = ResidueMeanBaseline().fit(train)
        return self

    def predict(self, df: pd.DataFrame, max_len: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
        """(angles, sincos) as for :class:`ResidueMeanBaseline`, and window coordinates (None: rebuild)."""
        ang, sc = self.fallback.predict(df, max_len)
        coords: list[np.ndarray | None] = [None] * len(df)
        df = df.reset_index(drop=True)
        keys = list(zip(df["cdr"], df["phi"].map(len), strict=True))
        for key in set(keys):
            if key in self.library.groups:
                g = self.library.groups[key]
                tors, xyz, seqs = g.torsions, g.coords, g.sequences
            elif key in self.torsions:
                (tors, seqs), xyz = self.torsions[key], None
            else:
                continue
            rows = [i for i, k in enumerate(keys) if k == key]
            best = identity_matrix([df["sequence"][i] for i in rows], seqs).argmax(1)
            n = key[1]
            for i, j in zip(rows, best, strict=True):
                t = tors[j].copy()
                t[:, :2] = np.where(np.isfinite(t[:, :2]), t[:, :2], ang[i, :n, :2])
                ang[i, :n] = t
                sc[i, :n] = sincos(t[:, :2])
                coords[i] = None if xyz is None else xyz[j]
        return ang, sc, coords
