"""Inference forms of the networks' pre-norm transformer layers: the same weights and results as
``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` in eval mode, computed faster.

Attention runs through ``scaled_dot_product_attention`` with a boolean key mask,
and in :func:`decode_shared` each distinct memory (one antibody's Fv, read by
all of its loop windows) has its keys and values projected once, and its
windows' queries attend to it together. Only valid for layers built with
``norm_first=True`` and no dropout at inference; training uses the modules themselves.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import linear, scaled_dot_product_attention


def _heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """``[N, T, H]`` -> ``[N, heads, T, H / heads]``."""
    return t.view(t.shape[0], t.shape[1], heads, -1).transpose(1, 2)


def _merge(t: torch.Tensor) -> torch.Tensor:
    """``[N, heads, T, D]`` -> ``[N, T, heads * D]``."""
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], -1)


def self_attend(mha: nn.MultiheadAttention, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """``mha(x, x, x, key_padding_mask=pad)[0]`` (batch first; ``pad`` True at padding)."""
    q, k, v = linear(x, mha.in_proj_weight, mha.in_proj_bias).split(x.shape[-1], -1)
    heads = mha.num_heads
    att = scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads),
                                       attn_mask=~pad[:, None, None, :])  # fmt: skip
    return mha.out_proj(_merge(att))


@torch.no_grad()
def encode(encoder: nn.TransformerEncoder, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """``encoder(x, src_key_padding_mask=pad)`` of pre-norm layers in eval mode (padding rows not zeroed)."""
    for layer in encoder.layers:
        x = x + self_attend(layer.self_attn, layer.norm1(x), pad)
        x = x + layer._ff_block(layer.norm2(x))
    return x if encoder.norm is None else encoder.norm(x)


@torch.no_grad()
def decode_shared(
    decoder: nn.TransformerDecoder,
    x: torch.Tensor,
    pad: torch.Tensor,
    mem: torch.Tensor,
    mem_pad: torch.Tensor,
    inverse: torch.Tensor,
) -> torch.Tensor:
    """``decoder(x, mem[inverse], tgt_key_padding_mask=pad, memory_key_padding_mask=mem_pad[inverse])``
    of pre-norm layers in eval mode, without copying a memory per window.

    Args:
        x: ``[B, L, H]`` windows; pad: ``[B, L]`` True at padding.
        mem: ``[U, S, H]`` distinct memories; mem_pad: ``[U, S]`` True at masked keys (not a whole row).
        inverse: ``[B]`` the memory each window reads.
    """
    bsz, length, h = x.shape
    # windows grouped by memory: window i becomes row slot[i] of group inverse[i]
    order = torch.argsort(inverse, stable=True)
    counts = torch.bincount(inverse, minlength=len(mem))
    first = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(inverse)
    slot[order] = torch.arange(bsz) - first[inverse[order]]
    width = int(counts.max())
    keep = ~mem_pad[:, None, None, :]  # [U, 1, 1, S]
    for layer in decoder.layers:
        x = x + self_attend(layer.self_attn, layer.norm1(x), pad)
        mha = layer.multihead_attn
        heads, w, b = mha.num_heads, mha.in_proj_weight, mha.in_proj_bias
        q = x.new_zeros(len(mem), width, length, h)
        q[inverse, slot] = linear(layer.norm2(x), w[:h], b[:h])
        k, v = linear(mem, w[h:], b[h:]).split(h, -1)  # once per distinct memory
        att = scaled_dot_product_attention(_heads(q.view(len(mem), width * length, h), heads), _heads(k, heads),
                                           _heads(v, heads), attn_mask=keep)  # fmt: skip
        x = x + mha.out_proj(_merge(att).view(len(mem), width, length, h)[inverse, slot])
        x = x + layer._ff_block(layer.norm3(x))
    return x if decoder.norm is None else decoder.norm(x)
