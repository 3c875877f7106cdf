"""Dataset rows or queries -> the extra tensors FvNet reads (templates, Fv context, slots, true coordinates)."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from loopfold.model.context import GAP, N_SLOTS, NO_SLOT, NumberedChain, WindowContext, frame_context, window_slots
from loopfold.model.features import Batch, Inputs, batch_from_frame
from loopfold.model.template_input import STRICT_CAP, template_features
from loopfold.model.templates import TemplateLibrary
from loopfold.structure.rebuild import ideal_geometry, rebuild_backbone

B = TypeVar("B", bound=Inputs)


def frame_coords(df: pd.DataFrame, max_len: int) -> np.ndarray:
    """``[B, max_len, 4, 3]`` true window backbones (NaN where unknown or missing atoms)."""
    out = np.full((len(df), max_len, 4, 3), np.nan, dtype=np.float32)
    for i, (xyz, missing) in enumerate(zip(df["coords"], df["has_missing_atoms"], strict=True)):
        if xyz is None or bool(missing):
            continue
        arr = np.asarray(xyz, dtype=np.float32).reshape(-1, 4, 3)
        out[i, : len(arr)] = arr
    return out


def with_fv(
    batch: B,
    cdrs: list[str],
    sequences: list[str],
    library: TemplateLibrary | None,
    contexts: list[WindowContext | None],
    exclude: list[set[str]] | None = None,
) -> tuple[B, list[list[str]]]:
    """``batch`` with FvNet's inputs attached (what dataset rows and queries both go through): each
    window's retrieved templates (none in ``exclude``; their names returned) and, from ``contexts``
    (None: no Fv, a loop alone), its Fv context tokens and the IMGT slot of each residue."""
    max_len = batch.features.shape[1]
    widths = batch.lengths.numpy()
    feats, names = template_features(library, cdrs, sequences, widths, max_len, exclude)
    tokens = np.full((len(cdrs), N_SLOTS), GAP, dtype=np.int64)
    slots = np.full((len(cdrs), max_len), NO_SLOT, dtype=np.int64)
    for i, ctx in enumerate(contexts):
        if ctx is not None:
            tokens[i] = ctx.tokens
            slots[i, : widths[i]] = window_slots(ctx.chain, ctx.start, ctx.stem_n, int(widths[i]))
    return replace(batch, templates=torch.from_numpy(feats), context=torch.from_numpy(tokens),
                   slots=torch.from_numpy(slots)), names  # fmt: skip


def frame_batch(
    df: pd.DataFrame,
    max_len: int,
    library: TemplateLibrary | None,
    numbered: dict[str, NumberedChain | None] | None = None,
    coords: bool = False,
) -> tuple[Batch, list[list[str]]]:
    """An FvNet batch for dataset rows (templates from ``library``; a row never sees its own loop)."""
    batch, names = with_fv(batch_from_frame(df, max_len), df["cdr"].tolist(), df["sequence"].tolist(), library,
                           frame_context(df, numbered), [{i} for i in df["loop_id"]])  # fmt: skip
    return (replace(batch, coords=torch.from_numpy(frame_coords(df, max_len))) if coords else batch), names


def strict_templates(df: pd.DataFrame, max_len: int, library: TemplateLibrary) -> np.ndarray:
    """Template features with every template >= 70% identical to the row's loop hidden (training variant)."""
    widths = (df["stem_n"].str.len() + df["sequence"].str.len() + df["stem_c"].str.len()).to_numpy()
    caps = np.full(len(df), STRICT_CAP, dtype=np.float32)
    exclude = [{i} for i in df["loop_id"]]
    return template_features(library, df["cdr"].tolist(), df["sequence"].tolist(), widths, max_len, exclude, caps)[0]


def rebuild_predicted(pred: dict[str, np.ndarray]) -> np.ndarray:
    """``[B, L, 4, 3]`` backbones from FvNet's torsions (``mean``) and bond angles, ideal bond lengths."""
    tors = np.nan_to_num(pred["mean"], nan=180.0)
    bond = pred["bond_angles"].astype(np.float64)
    geom = replace(ideal_geometry(tors.shape[:-1]), n_ca_c=bond[..., 0], ca_c_n=bond[..., 1], c_n_ca=bond[..., 2])
    return rebuild_backbone(tors, geom)
