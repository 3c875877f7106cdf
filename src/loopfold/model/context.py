"""Whole-Fv context: the numbered VH and VL as IMGT-position tokens, and each window residue's position.

The network reads every residue of both variable domains at its IMGT position
(VH slots 0-127, VL slots 128-255; insertions share their position's slot, the
first residue kept as the token), so residues that pack against a loop (the H3
base, the VH-VL interface) sit at the same slot in every antibody. A window
residue's own slot tells the network where it is; windows with no numbered
chain (``--loop`` queries, a chain that cannot be numbered) get the empty
context and the ``NO_SLOT`` index, which the network also sees in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from loopfold.constants import AA_INDEX
from loopfold.numbering.anarci import NumberedDomain, number_sequences

IMGT_POSITIONS = 128
N_SLOTS = 2 * IMGT_POSITIONS
NO_SLOT = N_SLOTS  # a window residue outside any numbered domain
GAP = 20  # context token of an empty slot
OFFSET = {"H": 0, "L": IMGT_POSITIONS}


@dataclass(frozen=True)
class NumberedChain:
    """A chain sequence with its IMGT slot per residue (``NO_SLOT`` where unnumbered)."""

    chain_type: str
    sequence: str
    slots: np.ndarray  # [len(sequence)] int64
    base: np.ndarray  # [len(sequence)] bool: numbered without an insertion code


def numbered_chain(sequence: str, domain: NumberedDomain) -> NumberedChain:
    """The slot of every residue of ``sequence`` under one numbered domain."""
    slots = np.full(len(sequence), NO_SLOT, dtype=np.int64)
    base = np.zeros(len(sequence), dtype=bool)
    off = OFFSET[domain.chain_type]
    for idx, (num, ins) in zip(domain.indices, domain.positions, strict=True):
        slots[idx] = off + min(max(int(num), 1), IMGT_POSITIONS) - 1
        base[idx] = not ins
    return NumberedChain(domain.chain_type, sequence, slots, base)


def context_tokens(chains: list[NumberedChain]) -> np.ndarray:
    """``[N_SLOTS]`` residue index per slot (``GAP`` where no residue): the residue at the position
    itself, not an insertion (IMGT 112A, 112B share slot 112 with 112)."""
    tokens = np.full(N_SLOTS, GAP, dtype=np.int64)
    for ch in chains:
        for aa, slot, base in zip(ch.sequence, ch.slots, ch.base, strict=True):
            if slot != NO_SLOT and aa in AA_INDEX and (base or tokens[slot] == GAP):
                tokens[slot] = AA_INDEX[aa]
    return tokens


def window_slots(chain: NumberedChain | None, start: int | None, n_before: int, width: int) -> np.ndarray:
    """``[width]`` slots of a window that starts ``n_before`` residues before ``start`` in ``chain``."""
    out = np.full(width, NO_SLOT, dtype=np.int64)
    if chain is None or start is None:
        return out
    lo = start - n_before
    for k in range(width):
        if 0 <= lo + k < len(chain.slots):
            out[k] = chain.slots[lo + k]
    return out


def number_chains(sequences: list[str]) -> dict[str, NumberedChain | None]:
    """Number distinct chain sequences (validated); None for chains that cannot be numbered."""
    uniq = sorted({s for s in sequences if isinstance(s, str) and s})
    found = number_sequences([(f"chain{i}", s) for i, s in enumerate(uniq)])
    out: dict[str, NumberedChain | None] = {}
    for seq, doms in zip(uniq, found, strict=True):
        out[seq] = None if isinstance(doms, Exception) or not doms else numbered_chain(seq, doms[0])
    return out


def with_partners(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``partner_sequence`` column: the first chain of the other type with the same PDB
    id (the partner in a Fab; None for a nanobody). Call it on a whole dataset before taking split
    parts, whose rows of one antibody may fall in different parts."""
    by_pdb: dict[tuple[str, str], str] = {}
    for pdb, _chain, ctype, seq in sorted(zip(df["pdb_id"].fillna(""), df["chain"].fillna(""),
                                              df["chain_type"], df["chain_sequence"], strict=True)):  # fmt: skip
        if isinstance(seq, str) and pdb:
            by_pdb.setdefault((pdb, ctype), seq)
    out = df.copy()
    out["partner_sequence"] = [by_pdb.get((p, "L" if t == "H" else "H")) if p else None
                               for p, t in zip(df["pdb_id"].fillna(""), df["chain_type"], strict=True)]  # fmt: skip
    return out


@dataclass(frozen=True)
class WindowContext:
    """A window's Fv: the Fv's context ``tokens`` ``[N_SLOTS]``, the window's own numbered ``chain``,
    the loop's ``start`` in it (None: unknown) and the window's N-stem length."""

    tokens: np.ndarray
    chain: NumberedChain
    start: int | None
    stem_n: int


def frame_context(
    df: pd.DataFrame, numbered: dict[str, NumberedChain | None] | None = None
) -> list[WindowContext | None]:
    """Each dataset row's :class:`WindowContext` (None where its chain has no numbering).

    A row's Fv is its own chain plus its ``partner_sequence`` (:func:`with_partners`, added
    here from ``df`` itself when the column is absent).
    """
    if "partner_sequence" not in df:
        df = with_partners(df)
    seqs = df["chain_sequence"].tolist()
    if numbered is None:
        numbered = number_chains(seqs + [s for s in df["partner_sequence"] if isinstance(s, str)])
    out: list[WindowContext | None] = []
    for partner_seq, seq, start, sn in zip(df["partner_sequence"], seqs, df["loop_start"], df["stem_n"], strict=True):
        own = numbered.get(seq) if isinstance(seq, str) else None
        partner = numbered.get(partner_seq) if isinstance(partner_seq, str) else None
        out.append(None if own is None else WindowContext(
            context_tokens([c for c in (own, partner) if c is not None]), own,
            None if pd.isna(start) else int(start), len(sn)))  # fmt: skip
    return out
