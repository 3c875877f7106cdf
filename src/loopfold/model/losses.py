"""Losses and the Ramachandran bins.

``masked_mse`` is the seed's loss with a correct mask: padded and undefined
angles contribute nothing. ``seed_leaky_mask`` rebuilds the seed's own mask
(``sign(target + 3)``), which also keeps the constant cos(phi_1) = 1 and
sin(psi_L) = 0 targets it stored at the undefined ends.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from loopfold.model.features import Batch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is 1 (0 if none)."""
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)


def seed_leaky_targets(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and mask as the seed built them: its two constant end values kept in the loss."""
    target = batch.target.clone()
    mask = batch.target_mask.clone()
    rows = torch.arange(target.shape[0])
    last = batch.lengths - 1
    target[:, 0, 1], mask[:, 0, 1] = 1.0, 1.0  # cos(phi) of residue 1 stored as 1
    target[rows, last, 2], mask[rows, last, 2] = 0.0, 1.0  # sin(psi) of the last residue stored as 0
    return target, mask


def angular_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute angle difference in degrees, wrapped to [0, 180]."""
    d = np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)
    return d


def fit_bins(phi: np.ndarray, psi: np.ndarray, k: int, seed: int = 0, iters: int = 30) -> np.ndarray:
    """``[k, 2]`` (phi, psi) centres in degrees: k-means on the torus (sin/cos embedding)."""
    ok = np.isfinite(phi) & np.isfinite(psi)
    pts = np.radians(np.stack([phi[ok], psi[ok]], 1))
    emb = np.concatenate([np.sin(pts), np.cos(pts)], 1)
    rng = np.random.default_rng(seed)
    centers = emb[rng.choice(len(emb), size=min(k, len(emb)), replace=False)]
    for _ in range(iters):
        lab = ((emb[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        for j in range(len(centers)):
            if (lab == j).any():
                centers[j] = emb[lab == j].mean(0)
    ang = np.degrees(np.arctan2(centers[:, :2], centers[:, 2:]))
    if len(ang) < k:
        ang = np.concatenate([ang, np.repeat(ang[:1], k - len(ang), 0)])
    return ang.astype(np.float32)


def nearest_bins(phi: np.ndarray, psi: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest (phi, psi) bin centre ``[K, 2]`` for angles of any shape (degrees, wrapped).

    NaN angles get bin 0; mask them yourself.
    """
    dphi = (np.asarray(phi)[..., None] - centers[:, 0] + 180) % 360 - 180
    dpsi = (np.asarray(psi)[..., None] - centers[:, 1] + 180) % 360 - 180
    return np.nan_to_num(dphi**2 + dpsi**2, nan=0.0).argmin(-1)


def assign_bins(angles: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest bin per residue ``[B, L]`` and a mask where phi and psi are both defined."""
    phi, psi = angles[..., 0], angles[..., 1]
    ok = torch.isfinite(phi) & torch.isfinite(psi)
    dphi = torch.remainder(torch.nan_to_num(phi)[..., None] - centers[:, 0] + 180, 360) - 180
    dpsi = torch.remainder(torch.nan_to_num(psi)[..., None] - centers[:, 1] + 180, 360) - 180
    return (dphi**2 + dpsi**2).argmin(-1), ok.float()


def training_loss(
    out: dict[str, torch.Tensor],
    batch: Batch,
    leaky_mask: bool = False,
    bin_weight: float = 0.1,
    cis_weight: float = 0.1,
) -> torch.Tensor:
    """The objective: masked MSE on sin/cos, plus weighted bin cross-entropy and cis BCE when predicted."""
    if leaky_mask:
        target, mask = seed_leaky_targets(batch)
    else:
        target, mask = batch.target, batch.target_mask
    loss = masked_mse(out["sincos"], target, mask)
    if "bin_logits" in out:
        labels, ok = assign_bins(batch.angles, out["bin_centers"])
        ce = F.cross_entropy(out["bin_logits"].flatten(0, 1), labels.flatten(), reduction="none")
        loss = loss + bin_weight * (ce * ok.flatten()).sum() / ok.sum().clamp(min=1.0)
    if "cis_logit" in out:
        bce = F.binary_cross_entropy_with_logits(out["cis_logit"], batch.cis, reduction="none")
        loss = loss + cis_weight * (bce * batch.cis_mask).sum() / batch.cis_mask.sum().clamp(min=1.0)
    return loss
