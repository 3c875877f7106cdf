"""Ensembles: extra networks in a run folder's ``members/`` whose template scores are averaged.

Each member scores every candidate template with its own Ramachandran bins
(members may differ in architecture, seed and bin centres); the written
template maximises the members' weighted mean log probability plus
``identity_weight`` x sequence identity, a product of experts. Weights may
differ per CDR (``info.ensemble_weights``, tuned on validation loops by
``bench/tune_ensemble.py``); confidence is the same weighted mean of the
members' probabilities of the written bins. The sin/cos head and the network
outputs in ``pred`` are the run's own network's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from torch import nn

from loopfold.errors import CheckpointError, InvalidFile
from loopfold.model.checkpoint import load_model
from loopfold.model.config import TrainConfig
from loopfold.model.run_info import RunInfo

MEMBERS = "members"


@dataclass(frozen=True)
class Member:
    """One extra network of an ensemble."""

    name: str
    model: nn.Module
    cfg: TrainConfig
    temperature: float


def load_members(run_dir: Path, cfg: TrainConfig, info: RunInfo) -> list[Member]:
    """The networks under ``run_dir/members/`` (none when the folder is absent).

    Raises:
        CheckpointError: a member that cannot be loaded, has no Ramachandran bins, or reads
            windows differently (CDR definition, stems, window limit) from the run.
    """
    folder = run_dir / MEMBERS
    if not folder.is_dir():
        return []
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        model, mcfg, raw = load_model(sub)
        try:
            minfo = RunInfo.parse(raw, mcfg, str(sub / "config.json"))
        except InvalidFile as exc:
            raise CheckpointError(f"ensemble member: {exc}") from None
        for key in ("definition", "stems"):
            if getattr(minfo, key) != getattr(info, key):
                raise CheckpointError(f"{sub}: ensemble member {key} {getattr(minfo, key)!r} differs from the "
                                      f"run's {getattr(info, key)!r}")  # fmt: skip
        if mcfg.max_len != cfg.max_len or not hasattr(model, "bin_centers"):
            raise CheckpointError(f"{sub}: ensemble member must have Ramachandran bins and window limit {cfg.max_len}")
        out.append(Member(sub.name, model, mcfg, minfo.bin_temperature))
    check_weights(info.ensemble_weights, 1 + len(out), str(run_dir / "config.json"))
    if out and info.output == "structure":
        raise CheckpointError(f"{run_dir}: ensemble members need a run that writes templates, but its "
                              "info.output is structure")  # fmt: skip
    return out


def member_weights(table: object, cdrs: list[str], n_members: int) -> np.ndarray:
    """``[B, n_members]`` weights per window: ``table[cdr]`` (``info.ensemble_weights``, checked by
    :func:`check_weights`: the run's own network first, then ``members/`` in name order; tuned on
    validation loops), equal where not given."""
    table = cast(dict, table or {})
    out = np.ones((len(cdrs), n_members))
    for i, cdr in enumerate(cdrs):
        if cdr in table:
            out[i] = table[cdr]
    return out


def check_weights(table: object, n_members: int, where: str) -> None:
    """Raises CheckpointError unless ``table`` (``info.ensemble_weights``; None: none given) maps CDRs
    to ``n_members`` non-negative numbers with a positive sum."""
    from loopfold.constants import CDRS

    if table is None:
        return
    if not isinstance(table, dict):
        raise CheckpointError(f"{where}: ensemble_weights must be a JSON object of CDR -> weights")
    for cdr, ws in table.items():
        ok = cdr in CDRS and isinstance(ws, list) and len(ws) == n_members
        ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in ws) and sum(ws) > 0
        if not ok:
            raise CheckpointError(f"{where}: ensemble_weights {cdr!r}: expected {n_members} non-negative numbers "
                                  "with a positive sum (the run's network, then each member)")  # fmt: skip
