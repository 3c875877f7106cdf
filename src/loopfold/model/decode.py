"""Network outputs -> torsion angles (degrees) and per-residue confidence."""

from __future__ import annotations

import numpy as np
import torch

from loopfold.model.features import Inputs
from loopfold.model.losses import nearest_bins


@torch.no_grad()
def run_network(
    model: torch.nn.Module, batch: Inputs, chunk: int = 2048, temperature: float = 1.0
) -> dict[str, np.ndarray]:
    """Predictions for a batch (bin probabilities tempered by ``temperature``).

    Returns:
        ``mean`` ``[B, L, 3]``: phi, psi from atan2 of the sin/cos head (the
        MSE-optimal estimate), omega 180 or 0 (FvNet's own omega head: the nearer of the two);
        ``mode`` ``[B, L, 3]``: phi, psi of the most probable Ramachandran bin
        (equal to ``mean`` for networks without bins), same omega;
        ``sincos`` ``[B, L, 4]``; ``confidence`` ``[B, L]`` (probability of the chosen bin, or
        the mean length of the sin/cos vectors); ``bin_probs`` ``[B, L, K]`` when available.
    """
    model.eval()
    n, length = batch.features.shape[:2]
    lengths = batch.lengths.numpy()
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding per chunk
    if getattr(model, "reads_fv", False) and batch.context is not None:
        # one antibody's windows together, so each chunk encodes every Fv context once
        group = np.unique(batch.context.numpy(), axis=0, return_inverse=True)[1].reshape(-1)
        order = np.lexsort((lengths, group))
        chunk = min(chunk, 256)  # its memory holds every Fv residue per window: small chunks keep it small
    res: dict[str, np.ndarray] = {}
    centers = None
    for i in range(0, n, chunk):
        idx = torch.from_numpy(order[i : i + chunk])
        width = int(lengths[order[i : i + chunk]].max())
        o = model(**batch.inputs(idx, width, fv=getattr(model, "reads_fv", False)))
        for key, val in o.items():
            if key == "bin_centers":
                centers = val
                continue
            v = val.float().numpy()
            if key not in res:
                res[key] = np.zeros((n, length) + v.shape[2:], dtype=np.float32)
            res[key][order[i : i + chunk], :width] = v
    sc = res["sincos"]
    mean = np.zeros(sc.shape[:2] + (3,), dtype=np.float64)
    mean[..., 0] = np.degrees(np.arctan2(sc[..., 0], sc[..., 1]))
    mean[..., 1] = np.degrees(np.arctan2(sc[..., 2], sc[..., 3]))
    cis = res["cis_logit"] > 0 if "cis_logit" in res else np.zeros(sc.shape[:2], dtype=bool)
    mean[..., 2] = np.where(cis, 0.0, 180.0)
    if "omega_sincos" in res:  # a network with its own omega (FvNet): cis or trans, never twisted
        om = res["omega_sincos"]
        mean[..., 2] = np.where(np.abs(np.degrees(np.arctan2(om[..., 0], om[..., 1]))) < 90.0, 0.0, 180.0)
    mode = mean.copy()
    out = {"mean": mean, "sincos": sc}
    if "bond_angles" in res:
        out["bond_angles"] = res["bond_angles"]
    if "bin_logits" in res:
        logits = res["bin_logits"]
        z = logits / temperature
        probs = np.exp(z - z.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        best = probs.argmax(-1)
        assert centers is not None  # every network with bin_logits also outputs bin_centers
        c = centers.numpy()
        mode[..., 0] = c[best, 0]
        mode[..., 1] = c[best, 1]
        out["bin_probs"] = probs
        out["bin_centers"] = c
        out["confidence"] = probs.max(-1)
        if "cis_logit" in res:
            out["cis_logit"] = res["cis_logit"]
    else:
        norms = np.sqrt(sc[..., 0] ** 2 + sc[..., 1] ** 2) + np.sqrt(sc[..., 2] ** 2 + sc[..., 3] ** 2)
        out["confidence"] = np.clip(norms / 2, 0, 1)
    out["mode"] = mode
    return out


def bin_confidence(pred: dict, angles: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``[B, L]`` the model's probability of the (phi, psi) bin of each output residue (0 past ``lengths``)."""
    if "bin_probs" not in pred:
        return pred["confidence"]
    c = pred["bin_centers"]
    out = np.zeros(angles.shape[:2], dtype=np.float32)
    inside = np.arange(angles.shape[1])[None, :] < np.asarray(lengths)[:, None]
    real = inside & np.isfinite(angles[..., 0]) & np.isfinite(angles[..., 1])
    bins = nearest_bins(angles[real, 0], angles[real, 1], c)  # [M] residues only, no padding
    out[real] = pred["bin_probs"][real][np.arange(len(bins)), bins]
    return out
