"""The loops a model reads: a dataset's usable windows of one split part, with partner chains."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from loopfold.constants import AMINO_ACIDS
from loopfold.data.splits import read_split
from loopfold.data.store import read_dataset
from loopfold.errors import InvalidFile
from loopfold.model.context import with_partners


def usable(df: pd.DataFrame, max_len: int) -> pd.DataFrame:
    """Loops a model can train or be scored on: window <= max_len, standard residues, no break."""
    window = df["stem_n"] + df["sequence"] + df["stem_c"]
    ok = window.str.len().le(max_len) & window.map(lambda s: set(s) <= set(AMINO_ACIDS))
    ok &= ~df["has_chain_break"].astype(bool)
    return df[ok].reset_index(drop=True)


def load_part(data: str | Path, split_dir: str | Path | None, part: str, max_len: int) -> pd.DataFrame:
    """The usable loops of one split part (the whole dataset when ``split_dir`` is None), each with its
    antibody's partner chain (``partner_sequence``, from the whole dataset)."""
    df = with_partners(read_dataset(data))
    if split_dir is not None:
        split = read_split(split_dir)
        ids = set(split.loc[split["part"] == part, "loop_id"])
        if not ids:
            raise InvalidFile(f"{split_dir}: the split has no {part!r} loops")
        df = df[df["loop_id"].isin(ids)]
    return usable(df, max_len)
