"""Sequence identity between loops (rapidfuzz), and single-linkage clusters.

Identity of two sequences is ``1 - d / max(len_a, len_b)`` with ``d`` their
Levenshtein distance: the fraction of aligned identical residues in the best
gapped alignment, counting gaps as mismatches over the longer sequence.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein


def identity_matrix(a: list[str], b: list[str], workers: int = -1) -> np.ndarray:
    """``[len(a), len(b)]`` float32 identities.

    >>> float(identity_matrix(["ACDEFG"], ["ACDEFH"])[0, 0])
    0.8333333134651184
    """
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return process.cdist(a, b, scorer=Levenshtein.normalized_similarity, dtype=np.float32, workers=workers)


def max_identity(queries: list[str], references: list[str], workers: int = -1) -> np.ndarray:
    """For each query, its highest identity to any reference (0 when there are none)."""
    if not queries or not references:
        return np.zeros(len(queries), dtype=np.float32)
    out = np.empty(len(queries), dtype=np.float32)
    step = 4096
    for i in range(0, len(queries), step):
        out[i : i + step] = identity_matrix(queries[i : i + step], references, workers).max(axis=1)
    return out


def single_linkage_clusters(seqs: list[str], threshold: float, workers: int = -1) -> np.ndarray:
    """Cluster label per sequence: connected components of identity >= threshold.

    Any two sequences in different clusters are < threshold identical, so
    keeping clusters whole keeps every cross-split pair below the threshold.
    """
    uniq, inverse = np.unique(np.asarray(seqs, dtype=object), return_inverse=True)
    uniq_list = [str(s) for s in uniq]
    m = len(uniq_list)
    uparent = np.arange(m)

    def ufind(i: int) -> int:
        while uparent[i] != i:
            uparent[i] = uparent[uparent[i]]
            i = uparent[i]
        return i

    step = 2048
    for i in range(0, m, step):
        sim = identity_matrix(uniq_list[i : i + step], uniq_list, workers)
        rows, cols = np.nonzero(sim >= threshold)
        for r, c in zip(rows + i, cols, strict=True):
            ra, rb = ufind(int(r)), ufind(int(c))
            if ra != rb:
                uparent[max(ra, rb)] = min(ra, rb)
    roots = np.array([ufind(i) for i in range(m)])
    _, labels = np.unique(roots, return_inverse=True)
    return labels[inverse]


def reference_identity(refs: dict[str, list[str]], cdrs: list[str], sequences: list[str]) -> list[float | None]:
    """Each loop's highest identity to the reference loops of its CDR (None: no references for it)."""
    out: list[float | None] = [None] * len(cdrs)
    for cdr in set(cdrs):
        idx = [i for i, c in enumerate(cdrs) if c == cdr]
        if refs.get(cdr):
            for i, v in zip(idx, max_identity([sequences[i] for i in idx], refs[cdr]), strict=True):
                out[i] = float(v)
    return out
