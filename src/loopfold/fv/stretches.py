"""Stretches of a chain's framework residues: runs to rebuild, their flanks, and how notes name them
(one-letter code and IMGT number)."""

from __future__ import annotations

import numpy as np

from loopfold.numbering.anarci import NumberedDomain


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """First and last index of each run of True values."""
    idx = np.nonzero(mask)[0]
    if not len(idx):
        return []
    cuts = np.nonzero(np.diff(idx) > 1)[0]
    return list(zip(idx[np.r_[0, cuts + 1]].tolist(), idx[np.r_[cuts, len(idx) - 1]].tolist(), strict=True))


def split_run(r0: int, r1: int, seg: np.ndarray) -> list[tuple[int, int]]:
    """A run cut where the residues stop being consecutive in the sequence."""
    cuts = [k for k in range(r0, r1) if seg[k + 1] != seg[k]]
    starts, ends = [r0, *(k + 1 for k in cuts)], [*cuts, r1]
    return list(zip(starts, ends, strict=True))


def flank(lacks: np.ndarray, start: int, step: int, size: int = 3) -> list[int]:
    """Up to ``size`` consecutive residues the template gives, from ``start`` away from a run (chain order)."""
    out: list[int]
    out, k = [], start
    while 0 <= k < len(lacks) and not lacks[k] and len(out) < size:
        out.append(k)
        k += step
    return sorted(out)


def why_rebuilt(bent: np.ndarray, template: str) -> str:
    """Why a stretch is not the chosen template's: absent from it, or a peptide bond there non-planar
    for the query (cis or twisted where the query has no proline)."""
    if bent.all():
        return f"its peptide bond in {template} is cis or twisted for this sequence"
    return f"absent from {template}" + (", a peptide bond there cis or twisted" if bent.any() else "")


def residue_label(domain: NumberedDomain, seq: str, index: int) -> str:
    """A residue as text: one-letter code and IMGT number (``C23``, ``G111A``); the 1-based sequence
    index with ``#`` when the residue is outside the numbered domain."""
    try:
        num, icode = domain.positions[domain.indices.index(index)]
    except ValueError:
        return f"{seq[index]}#{index + 1}"
    return f"{seq[index]}{num}{str(icode).strip()}"


def span_text(seq: str, run: np.ndarray, dom: NumberedDomain | None = None) -> str:
    """Residues of a run, as text: one-letter code and IMGT number (:func:`_label`; the 1-based index in
    the chain sequence without a domain)."""
    def name(i: int) -> str:
        return residue_label(dom, seq, int(i)) if dom is not None else f"{seq[i]}{i + 1}"

    return f"residue {name(run[0])}" if len(run) == 1 else f"residues {name(run[0])}-{name(run[-1])}"


def in_framework(dom: NumberedDomain, index: int, fw: np.ndarray) -> bool:
    """Whether an inserted residue sits between two framework positions (not inside a CDR)."""
    k = dom.indices.index(index)
    num = dom.positions[k][0]
    return 1 <= num <= len(fw) and bool(fw[num - 1]) and (num + 1 > len(fw) or bool(fw[num]))
