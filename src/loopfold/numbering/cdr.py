"""Numbered residues -> CDR loop slices (+ stems) under Chothia, IMGT or North definitions."""

from __future__ import annotations

from dataclasses import dataclass

from loopfold.constants import CDR_BOUNDS_CHOTHIA, CDR_BOUNDS_IMGT, CDRS, DEFINITIONS


@dataclass(frozen=True)
class LoopSlice:
    """A CDR located in a chain sequence: ``sequence[start:stop]`` is the loop."""

    cdr: str
    definition: str
    start: int
    stop: int


def cdr_bounds(cdr: str, definition: str, scheme: str) -> tuple[int, int]:
    """First and last numbered position of a CDR, in the numbering ``scheme``.

    >>> cdr_bounds("H3", "north", "imgt")
    (105, 117)
    """
    if cdr not in CDRS:
        raise ValueError(f"unknown CDR {cdr!r}; expected one of {', '.join(CDRS)}")
    if definition not in DEFINITIONS:
        raise ValueError(f"unknown CDR definition {definition!r}; expected {DEFINITIONS}")
    if scheme == "imgt":
        return CDR_BOUNDS_IMGT[definition][cdr]
    if scheme == "chothia" and definition in CDR_BOUNDS_CHOTHIA:
        return CDR_BOUNDS_CHOTHIA[definition][cdr]
    raise ValueError(f"CDR definition {definition!r} is not available in {scheme!r} numbering")


def locate_cdr(
    indices: list[int] | tuple[int, ...],
    numbers: list[int] | tuple[int, ...],
    cdr: str,
    definition: str,
    scheme: str,
) -> LoopSlice | None:
    """Find a CDR from per-residue numbering.

    Args:
        indices: sequence index of each numbered residue, increasing.
        numbers: the residue number (no insertion code) of each numbered residue.

    Returns:
        The slice, or None when the CDR or a flanking framework residue is absent
        or the CDR is not contiguous in the sequence.
    """
    lo, hi = cdr_bounds(cdr, definition, scheme)
    inside = [i for i, n in zip(indices, numbers, strict=True) if lo <= n <= hi]
    if not inside:
        return None
    before = any(n < lo for n in numbers)
    after = any(n > hi for n in numbers)
    start, stop = min(inside), max(inside) + 1
    if not (before and after) or stop - start != len(inside):
        return None
    return LoopSlice(cdr, definition, start, stop)


def why_missing(cdr: str, numbers: list[int], definition: str) -> str:
    """Why a CDR could not be cut from a numbered domain, in words."""
    lo, hi = cdr_bounds(cdr, definition, "imgt")
    if numbers[-1] <= hi:
        return f"the sequence ends at IMGT position {numbers[-1]}, before the end of {cdr} ({hi}) and its anchor"
    if numbers[0] >= lo:
        return f"the sequence starts at IMGT position {numbers[0]}, after the start of {cdr} ({lo}) or its anchor"
    return f"{cdr} is not contiguous in the numbering"
