"""Cut dataset loops again under another CDR definition, so loops are compared like with like.

A North H1 holds the IMGT H1 and more: identities between loops cut under two
definitions understate how alike they are. Loops whose whole chain sequence is
known are re-numbered (the validated path of :mod:`loopfold.numbering.anarci`)
and cut under the other definition; for loops without one,
:func:`containment_identity` compares the shorter loop with the longer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from loopfold.numbering.anarci import number_sequences
from loopfold.numbering.cdr import locate_cdr


def recut_sequences(df: pd.DataFrame, definition: str) -> list[str | None]:
    """Each row's loop cut under ``definition`` from its ``chain_sequence`` (None where it cannot be)."""
    out: list[str | None] = [None] * len(df)
    if "chain_sequence" not in df:
        return out
    chains = sorted({s for s in df["chain_sequence"] if isinstance(s, str) and s})
    numbered = dict(zip(chains, number_sequences([(f"chain {i}", s) for i, s in enumerate(chains)]), strict=True))
    for i, row in enumerate(df[["chain_sequence", "loop_start", "cdr"]].itertuples(index=False)):
        doms = numbered.get(row.chain_sequence) if isinstance(row.chain_sequence, str) else None
        if doms is None or isinstance(doms, Exception) or row.loop_start is None or row.loop_start != row.loop_start:
            continue
        start = int(row.loop_start)
        for dom in doms:
            if dom.chain_type == row.cdr[0] and dom.indices[0] <= start <= dom.indices[-1]:
                sl = locate_cdr(dom.indices, [p for p, _ in dom.positions], row.cdr, definition, dom.scheme)
                if sl is not None:
                    out[i] = row.chain_sequence[sl.start : sl.stop]
                break
    return out


def containment_identity(queries: list[str], references: list[str]) -> np.ndarray:
    """For each query, its highest identity to a reference, counted over the shorter of the two:
    ``1 - (d - |len difference|) / min(len)`` with ``d`` the Levenshtein distance, so a loop
    that holds the other plus extra end residues is 100% identical to it.

    >>> float(containment_identity(["GFNIKDTYIH"], ["NIKDTY"])[0])
    1.0
    """
    if not queries or not references:
        return np.zeros(len(queries), dtype=np.float32)
    d = process.cdist(queries, references, scorer=Levenshtein.distance, dtype=np.int32, workers=-1)
    lq = np.array([len(q) for q in queries])[:, None]
    lr = np.array([len(r) for r in references])[None, :]
    short = np.maximum(np.minimum(lq, lr), 1)
    return (1 - (d - np.abs(lq - lr)) / short).max(1).astype(np.float32)
