"""Loop records (DataFrame rows) -> padded tensors for the networks.

Per window position: one-hot residue (20), region (N-stem, loop, C-stem: 3),
CDR (6), position within the loop / 30 and loop length / 30 (2) = 31 features.
Targets: (sin phi, cos phi, sin psi, cos psi) with a mask that is 1 only where
the angle is defined, and omega cis (|omega| < 90) / trans with its own mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self, cast

import numpy as np
import pandas as pd
import torch

from loopfold.constants import AA_INDEX, AMINO_ACIDS, CDRS
from loopfold.errors import LoopTooLong, UnknownResidue

N_FEATURES = len(AMINO_ACIDS) + 3 + len(CDRS) + 2


@dataclass
class Inputs:
    """What a network reads for B windows of at most L residues (no targets: inference builds these)."""

    features: torch.Tensor  # [B, L, F]
    lengths: torch.Tensor  # [B]
    pad_mask: torch.Tensor  # [B, L] True at real residues
    #: whole-Fv inputs (``fvnet`` only, see :mod:`loopfold.model.fv_inputs`); None otherwise
    templates: torch.Tensor | None = None  # [B, L, T] retrieved-template features
    context: torch.Tensor | None = None  # [B, N_SLOTS] Fv residue per IMGT slot
    slots: torch.Tensor | None = None  # [B, L] IMGT slot of each window residue

    def subset(self, idx: torch.Tensor | np.ndarray) -> Self:
        """The rows ``idx`` as a new batch of the same type."""
        return type(self)(**cast(dict[str, Any], {k: None if getattr(self, k) is None else getattr(self, k)[idx]
                                                  for k in self.__dataclass_fields__}))  # fmt: skip

    def inputs(
        self, idx: torch.Tensor | np.ndarray | None = None, width: int | None = None, fv: bool = True
    ) -> dict:
        """Keyword arguments of a network call for rows ``idx`` cut to ``width`` positions (with the
        whole-Fv inputs when the batch has them and ``fv``: networks that read them)."""
        sel = slice(None) if idx is None else idx
        out = {"features": self.features[sel, :width], "lengths": self.lengths[sel]}
        if self.context is not None and fv:
            assert self.templates is not None and self.slots is not None  # set with context (fv_inputs.with_fv)
            out.update(templates=self.templates[sel, :width], context=self.context[sel], slots=self.slots[sel, :width])
        return out


@dataclass(kw_only=True)
class Batch(Inputs):
    """:class:`Inputs` with the training targets of dataset rows."""

    target: torch.Tensor  # [B, L, 4] sin/cos phi, sin/cos psi (0 where undefined)
    target_mask: torch.Tensor  # [B, L, 4] 1 where defined
    angles: torch.Tensor  # [B, L, 3] phi, psi, omega in degrees, NaN where undefined
    cis: torch.Tensor  # [B, L] 1 cis, 0 trans
    cis_mask: torch.Tensor  # [B, L]
    loop_mask: torch.Tensor  # [B, L] True inside the loop (not the stems)
    coords: torch.Tensor | None = None  # [B, L, 4, 3] true backbone (structure loss), NaN where unknown
    cand_bins: torch.Tensor | None = None  # [B, C, L] candidate templates' bins (-1 undefined)
    cand_ident: torch.Tensor | None = None  # [B, C] their identity to the loop
    cand_rmsd: torch.Tensor | None = None  # [B, C] their true loop RMSD (NaN: unknown or no candidate)


def query_inputs(feats: np.ndarray, lengths: np.ndarray) -> Inputs:
    """Network inputs for encoded query windows (:func:`encode_window`) of ``lengths`` residues."""
    pad = np.arange(feats.shape[1])[None, :] < lengths[:, None]
    return Inputs(torch.from_numpy(feats), torch.from_numpy(lengths), torch.from_numpy(pad))


def sincos(phi_psi: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (sin phi, cos phi, sin psi, cos psi) of ``[..., 2]`` angles in degrees (NaN stays NaN).

    >>> sincos(np.array([90.0, 180.0])).round(6).tolist()
    [1.0, 0.0, 0.0, -1.0]
    """
    rad = np.radians(phi_psi)
    return np.stack([np.sin(rad[..., 0]), np.cos(rad[..., 0]), np.sin(rad[..., 1]), np.cos(rad[..., 1])], -1)


def encode_window(sequence: str, stem_n: int, stem_c: int, cdr: str, max_len: int) -> np.ndarray:
    """``[max_len, N_FEATURES]`` features of one window (zeros past its end).

    Raises:
        InvalidSequence: a letter outside the 20 standard amino acids, or too long a window.
    """
    n = len(sequence)
    if n > max_len:
        raise LoopTooLong(f"window of {n} residues is longer than the model's limit of {max_len}")
    x = np.zeros((max_len, N_FEATURES), dtype=np.float32)
    for i, aa in enumerate(sequence):
        k = AA_INDEX.get(aa)
        if k is None:
            raise UnknownResidue(f"residue {i + 1} is {aa!r}, not one of the 20 standard amino acids")
        x[i, k] = 1.0
    loop_len = n - stem_n - stem_c
    base = len(AMINO_ACIDS)
    x[:stem_n, base] = 1.0
    x[stem_n : n - stem_c, base + 1] = 1.0
    x[n - stem_c : n, base + 2] = 1.0
    if cdr in CDRS:
        x[:n, base + 3 + CDRS.index(cdr)] = 1.0
    x[:n, -2] = (np.arange(n) - stem_n) / 30.0
    x[:n, -1] = loop_len / 30.0
    return x


def batch_from_frame(df: pd.DataFrame, max_len: int) -> Batch:
    """Encode dataset rows; angles come from the rows' phi/psi/omega (NaN allowed)."""
    b = len(df)
    feats = np.zeros((b, max_len, N_FEATURES), dtype=np.float32)
    angles = np.full((b, max_len, 3), np.nan, dtype=np.float32)
    lengths = np.zeros(b, dtype=np.int64)
    loop_mask = np.zeros((b, max_len), dtype=bool)
    for i, row in enumerate(df.itertuples(index=False)):
        window = row.stem_n + row.sequence + row.stem_c
        n = len(window)
        feats[i] = encode_window(window, len(row.stem_n), len(row.stem_c), row.cdr, max_len)
        angles[i, :n, 0] = row.phi
        angles[i, :n, 1] = row.psi
        angles[i, :n, 2] = row.omega
        lengths[i] = n
        loop_mask[i, len(row.stem_n) : n - len(row.stem_c)] = True
    return batch_from_arrays(feats, lengths, angles, loop_mask)


def batch_from_arrays(feats: np.ndarray, lengths: np.ndarray, angles: np.ndarray, loop_mask: np.ndarray) -> Batch:
    """Assemble a Batch from encoded features and degree angles."""
    max_len = feats.shape[1]
    pad = np.arange(max_len)[None, :] < lengths[:, None]
    tgt = sincos(angles[..., :2])
    tmask = np.isfinite(tgt) & pad[..., None]
    omega = angles[..., 2]
    cmask = np.isfinite(omega) & pad
    return Batch(
        features=torch.from_numpy(feats),
        lengths=torch.from_numpy(lengths),
        pad_mask=torch.from_numpy(pad),
        target=torch.from_numpy(np.nan_to_num(tgt).astype(np.float32)),
        target_mask=torch.from_numpy(tmask.astype(np.float32)),
        angles=torch.from_numpy(angles.astype(np.float32)),
        cis=torch.from_numpy((np.abs(np.nan_to_num(omega, nan=180.0)) < 90).astype(np.float32)),
        cis_mask=torch.from_numpy(cmask.astype(np.float32)),
        loop_mask=torch.from_numpy(loop_mask),
    )
