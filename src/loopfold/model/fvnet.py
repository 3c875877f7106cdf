"""FvNet: loop structure from the whole Fv, retrieved templates and a structural loss.

Each window residue reads its own features (residue, region, CDR, position),
its IMGT slot and the k most identical training loops' angles at that residue
(:mod:`loopfold.model.template_input`); a transformer decoder mixes the window
and cross-attends to every residue of the numbered VH and VL
(:mod:`loopfold.model.context`). Heads give phi, psi and omega (sin/cos) and
the three backbone bond angles, each as a change to the closest template's
values (trans and ideal geometry when there is none), so copying is the easy
path; plus Ramachandran bins and cis/trans (the bins rank templates for
``--samples`` and give the confidence, as in LoopNet).

The loss adds to LoopNet's angle terms the loop's backbone RMSD after
superposition on itself (differentiable Kabsch) and a CA distance-matrix error
over the window, both on coordinates rebuilt by the differentiable NeRF with
the predicted bond angles: under uncertainty they pull toward one central, compact
conformation instead of a blurred angle mean.
"""

from __future__ import annotations

import torch
from torch import nn

from loopfold import constants as K
from loopfold.model.attention import decode_shared, encode
from loopfold.model.config import ATTENTION_HEADS, TrainConfig
from loopfold.model.context import GAP, N_SLOTS, NO_SLOT
from loopfold.model.features import N_FEATURES, Batch
from loopfold.model.losses import training_loss
from loopfold.model.rebuild_torch import rebuild_backbone_torch
from loopfold.model.template_input import N_GEOMETRY, N_TEMPLATE_FEATURES

ANGLE_RANGE = 10.0  # degrees a bond angle may move from the template's (or ideal)
IDEAL_ANGLES = (K.ANGLE_N_CA_C, K.ANGLE_CA_C_N, K.ANGLE_C_N_CA)
RANK_TEMPERATURE = 4.0  # softens the template softmax in training; the argmax (prediction) is unchanged


class FvNet(nn.Module):
    """Window transformer with whole-Fv cross-attention and template input (see the module docstring)."""

    reads_fv = True  # takes templates, context and slots besides the window features

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.use_context, self.use_templates = cfg.use_context, cfg.use_templates
        self.embed = nn.Linear(N_FEATURES + N_TEMPLATE_FEATURES, h)
        self.pos = nn.Parameter(torch.zeros(cfg.max_len, h))
        self.slot = nn.Embedding(N_SLOTS + 1, h)
        self.aa = nn.Embedding(GAP + 1, h)
        ctx_layer = nn.TransformerEncoderLayer(h, ATTENTION_HEADS, 2 * h, cfg.dropout, batch_first=True,
                                               norm_first=True)  # fmt: skip
        self.ctx = nn.TransformerEncoder(ctx_layer, 1, enable_nested_tensor=False)
        self.conv = nn.Conv1d(h, h, 5, padding=2)
        layer = nn.TransformerDecoderLayer(h, ATTENTION_HEADS, 2 * h, cfg.dropout, batch_first=True,
                                           norm_first=True)  # fmt: skip
        self.decoder = nn.TransformerDecoder(layer, 3)
        self.norm = nn.LayerNorm(h)
        self.sincos = nn.Linear(h, 4)
        self.omega = nn.Linear(h, 2)
        self.bond = nn.Linear(h, 3)
        self.bins = nn.Linear(h, cfg.n_bins)
        self.cis = nn.Linear(h, 1)
        self.copy_gate = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("bin_centers", torch.zeros(cfg.n_bins, 2))

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        templates: torch.Tensor,
        context: torch.Tensor,
        slots: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        bsz, length = features.shape[:2]
        pad = torch.arange(length)[None, :] >= lengths[:, None]
        if not self.use_templates:
            templates = torch.zeros_like(templates)
        if not self.use_context:
            context, slots = torch.full_like(context, GAP), torch.full_like(slots, NO_SLOT)
        x = self.embed(torch.cat([features, templates], -1)) + self.pos[:length] + self.slot(slots)
        x = x.masked_fill(pad[..., None], 0.0)
        x = x + torch.relu(self.conv(x.transpose(1, 2)).transpose(1, 2))
        x = x.masked_fill(pad[..., None], 0.0)
        # one antibody's windows share their Fv: encode each distinct context once
        uniq, inverse = torch.unique(context, dim=0, return_inverse=True)
        # slots empty in every context are masked keys everywhere: dropping them changes nothing
        used = (uniq != GAP).any(0)
        used[0] = True  # keep one key per row so attention is defined for empty contexts
        uniq, ids = uniq[:, used], torch.arange(N_SLOTS)[used][None].expand(len(uniq), -1)
        mem_pad = uniq == GAP  # [U, S]
        mem_pad[:, 0] = False
        mem = self.aa(uniq) + self.slot(ids)
        if self.training:
            mem = self.ctx(mem, src_key_padding_mask=mem_pad)
            x = self.decoder(x, mem[inverse], tgt_key_padding_mask=pad, memory_key_padding_mask=mem_pad[inverse])
        else:  # the same layers, each distinct memory's keys and values projected once
            x = decode_shared(self.decoder, x, pad, encode(self.ctx, mem, mem_pad), mem_pad, inverse)
        x = self.norm(x)
        first = templates[..., :N_GEOMETRY]  # the closest template's values (zeros when none)
        present = templates[..., N_GEOMETRY + 1 : N_GEOMETRY + 2]
        sc = self.sincos(x) + self.copy_gate * first[..., :4]
        sc = sc.view(bsz, length, 2, 2)
        sc = (sc / sc.norm(dim=-1, keepdim=True).clamp(min=1e-6)).view(bsz, length, 4)
        trans = torch.tensor([0.0, -1.0])
        om = self.omega(x) + 4.0 * (present * first[..., 4:6] + (1 - present) * trans)
        om = om / om.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        bond = torch.tensor(IDEAL_ANGLES) + 10.0 * first[..., 6:9] + ANGLE_RANGE * torch.tanh(self.bond(x))
        return {
            "sincos": sc,
            "omega_sincos": om,
            "bond_angles": bond,
            "bin_logits": self.bins(x),
            "cis_logit": self.cis(x).squeeze(-1),
            "bin_centers": self.bin_centers,
        }


def rebuild_from_outputs(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B, L, 4, 3]`` window backbones rebuilt from FvNet outputs (predicted torsions and bond angles)."""
    sc, om = out["sincos"], out["omega_sincos"]
    tors = torch.stack([torch.atan2(sc[..., 0], sc[..., 1]), torch.atan2(sc[..., 2], sc[..., 3]),
                        torch.atan2(om[..., 0], om[..., 1])], -1)  # fmt: skip
    return rebuild_backbone_torch(tors, out["bond_angles"])


def kabsch_rmsd(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B]`` RMSD of ``[B, N, 3]`` point sets after optimal superposition over ``mask`` ``[B, N]``."""
    m = mask[..., None]
    count = mask.sum(1).clamp(min=1.0)[:, None, None]
    p = (pred - (pred * m).sum(1, keepdim=True) / count) * m
    t = (true - (true * m).sum(1, keepdim=True) / count) * m
    h = p.transpose(1, 2) @ t
    u, _, vt = torch.linalg.svd(h.double())
    d = torch.sign(torch.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    # the optimal rotation is a stationary point of the RMSD, so holding it fixed gives the same gradient
    # without differentiating the SVD (unstable when singular values nearly coincide)
    rot = (vt.transpose(1, 2) @ fix @ u.transpose(1, 2)).to(pred.dtype).detach()
    diff = ((p @ rot.transpose(1, 2) - t) ** 2).sum(-1) * mask
    return torch.sqrt(diff.sum(1) / mask.sum(1).clamp(min=1.0) + 1e-6)


def structure_losses(out: dict[str, torch.Tensor], batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loop RMSD (loop superposed on itself) and CA distance-matrix error over windows with coordinates."""
    true = batch.coords
    assert true is not None  # fv_loss calls this only for a batch with coordinates
    known = torch.isfinite(true).all(-1).all(-1) & batch.pad_mask  # [B, L]
    rows = known.any(1)
    if not bool(rows.any()):
        zero = out["sincos"].sum() * 0.0
        return zero, zero
    xyz = rebuild_from_outputs(out)[rows]
    true, known, loop = torch.nan_to_num(true[rows]), known[rows], batch.loop_mask[rows]
    atoms = (known & loop)[..., None].expand(-1, -1, 4).reshape(known.shape[0], -1).float()
    rmsd = kabsch_rmsd(xyz.reshape(xyz.shape[0], -1, 3), true.reshape(true.shape[0], -1, 3), atoms)
    ca_p, ca_t = xyz[:, :, 1], true[:, :, 1]
    dp, dt = torch.cdist(ca_p, ca_p), torch.cdist(ca_t, ca_t)
    pair = (known[:, :, None] & known[:, None, :]).float()
    dist = ((dp - dt).abs() * pair).sum((1, 2)) / pair.sum((1, 2)).clamp(min=1.0)
    return rmsd.mean(), dist.mean()


def expected_template_rmsd(out: dict[str, torch.Tensor], batch: Batch, identity_weight: float) -> torch.Tensor:
    """Mean over windows of the expected true loop RMSD of the candidate templates under the softmax of
    the scores prediction uses (bin log probabilities + ``identity_weight`` x identity), at temperature
    ``RANK_TEMPERATURE`` (see :mod:`loopfold.model.template_targets`)."""
    # fv_loss calls this only for a batch with candidates (candidate_targets sets all three)
    assert batch.cand_bins is not None and batch.cand_ident is not None and batch.cand_rmsd is not None
    logp = torch.log_softmax(out["bin_logits"], -1)  # [B, L, K]
    bins = batch.cand_bins[..., : logp.shape[1]]  # [B, C, L]
    picked = torch.gather(logp[:, None].expand(-1, bins.shape[1], -1, -1), 3, bins.clamp(min=0)[..., None])
    score = (picked.squeeze(-1) * (bins >= 0)).sum(-1) + identity_weight * batch.cand_ident  # [B, C]
    known = torch.isfinite(batch.cand_rmsd)
    rows = known.any(1)
    if not bool(rows.any()):
        return logp.sum() * 0.0
    q = torch.softmax((score / RANK_TEMPERATURE).masked_fill(~known, -1e9), -1)
    return (q * torch.nan_to_num(batch.cand_rmsd)).sum(-1)[rows].mean()


def fv_loss(out: dict[str, torch.Tensor], batch: Batch, cfg: TrainConfig) -> torch.Tensor:
    """LoopNet's angle terms and omega, plus ``structure_weight`` x (loop RMSD + distance error) of the
    rebuilt prediction and ``rank_weight`` x the expected RMSD of the template it would choose."""
    loss = training_loss(out, batch, False, cfg.bin_weight, cfg.cis_weight)
    om_true = torch.deg2rad(torch.nan_to_num(batch.angles[..., 2], nan=180.0))
    om_err = ((out["omega_sincos"] - torch.stack([torch.sin(om_true), torch.cos(om_true)], -1)) ** 2).sum(-1)
    loss = loss + 0.1 * (om_err * batch.cis_mask).sum() / batch.cis_mask.sum().clamp(min=1.0)
    if cfg.structure_weight > 0 and batch.coords is not None:
        rmsd, dist = structure_losses(out, batch)
        loss = loss + cfg.structure_weight * (rmsd + 0.5 * dist)
    if cfg.rank_weight > 0 and batch.cand_rmsd is not None:
        loss = loss + cfg.rank_weight * expected_template_rmsd(out, batch, cfg.identity_weight)
    return loss
