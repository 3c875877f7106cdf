"""The networks. Each maps features ``[B, L, F]`` and lengths ``[B]`` to a dict of outputs:

* ``sincos`` ``[B, L, 4]``: (sin phi, cos phi, sin psi, cos psi) in -1..1;
* ``bin_logits`` ``[B, L, K]`` (LoopNet): scores of K Ramachandran (phi, psi) bins;
* ``cis_logit`` ``[B, L]`` (LoopNet): the peptide bond after each residue is cis.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from loopfold.constants import AMINO_ACIDS
from loopfold.model.attention import encode
from loopfold.model.config import ATTENTION_HEADS, TrainConfig
from loopfold.model.features import N_FEATURES


class SeedLSTM(nn.Module):
    """The seed network: 3 stacked bidirectional LSTMs (256, 128, 64) over one-hot residues.

    With ``bottleneck`` (the seed's design) only the last step of each direction
    feeds one dense layer that emits every position's four values at once;
    with ``backward_at_last`` the backward direction is read at the last
    residue, where it has seen one residue only. Both off: a per-residue head.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.max_len = cfg.max_len
        self.bottleneck = cfg.seed_bottleneck
        self.backward_at_last = cfg.seed_backward_at_last
        sizes = (256, 128, 64)
        ins = (len(AMINO_ACIDS), 2 * sizes[0], 2 * sizes[1])
        pairs = zip(ins, sizes, strict=True)
        self.lstms = nn.ModuleList(nn.LSTM(i, h, batch_first=True, bidirectional=True) for i, h in pairs)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * sizes[-1], 4 * cfg.max_len if self.bottleneck else 4)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        x = features[..., : len(AMINO_ACIDS)]  # the seed saw residues only
        bsz, length, _ = x.shape
        for lstm in self.lstms:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=length)
            x = self.drop(x)  # [B, L, 2H]
        if not self.bottleneck:
            return {"sincos": torch.tanh(self.head(x))}
        hidden = x.shape[-1] // 2
        last = (lengths - 1).clamp(min=0)
        rows = torch.arange(bsz)
        fwd = x[rows, last, :hidden]
        bwd = x[rows, last, hidden:] if self.backward_at_last else x[:, 0, hidden:]
        out = torch.tanh(self.head(torch.cat([fwd, bwd], dim=-1)))  # [B, 4 * max_len]
        return {"sincos": out.view(bsz, self.max_len, 4)[:, :length]}


class LoopNet(nn.Module):
    """loopfold's model: convolutions plus a small transformer, per-residue outputs.

    Sees the residue, its region (stem or loop), the CDR type and the loop
    length; predicts sin/cos of phi and psi, a distribution over Ramachandran
    bins (so the most likely mode, not the mean of two modes, can be rebuilt),
    and whether each peptide bond is cis.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.embed = nn.Linear(N_FEATURES, h)
        self.pos = nn.Parameter(torch.zeros(cfg.max_len, h))
        self.convs = nn.ModuleList(nn.Conv1d(h, h, 5, padding=2) for _ in range(2))
        layer = nn.TransformerEncoderLayer(h, ATTENTION_HEADS, 2 * h, cfg.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(h)
        self.sincos = nn.Linear(h, 4)
        self.bins = nn.Linear(h, cfg.n_bins)
        self.cis = nn.Linear(h, 1)
        self.register_buffer("bin_centers", torch.zeros(cfg.n_bins, 2))  # degrees (phi, psi)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        length = features.shape[1]
        pad = torch.arange(length)[None, :] >= lengths[:, None]  # [B, L] True at padding
        x = self.embed(features) + self.pos[:length]
        x = x.masked_fill(pad[..., None], 0.0)
        for conv in self.convs:
            x = x + torch.relu(conv(x.transpose(1, 2)).transpose(1, 2))
            x = x.masked_fill(pad[..., None], 0.0)
        x = self.norm(self.encoder(x, src_key_padding_mask=pad) if self.training else encode(self.encoder, x, pad))
        return {
            "sincos": torch.tanh(self.sincos(x)),
            "bin_logits": self.bins(x),
            "cis_logit": self.cis(x).squeeze(-1),
            "bin_centers": self.bin_centers,
        }


def build_network(cfg: TrainConfig) -> nn.Module:
    """The network named by ``cfg.model``."""
    if cfg.model == "loopnet":
        return LoopNet(cfg)
    if cfg.model == "fvnet":
        from loopfold.model.fvnet import FvNet

        return FvNet(cfg)
    if cfg.model == "bilstm":
        from dataclasses import replace

        return SeedLSTM(replace(cfg, seed_bottleneck=False, seed_backward_at_last=False))
    if cfg.model == "seed-lstm":
        return SeedLSTM(cfg)
    raise ValueError(f"unknown model {cfg.model!r}")
