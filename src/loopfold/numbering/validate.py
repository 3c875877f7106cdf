"""Check a numbered variable domain against the residues every antibody conserves.

IMGT numbering puts the first-framework cysteine at 23, the second-framework
tryptophan at 41, the cysteine before CDR3 at 104 and the Trp (heavy) or Phe
(light) of the ``W/F-G-x-G`` motif after CDR3 at 118 (Lefranc et al. 2003, Dev
Comp Immunol 27:55). A numbering that slips by a residue or two moves these
residues off their positions, and every CDR cut after the slip is wrong; the
conserved residue then sits one or two positions away. Real antibodies do carry
an unusual residue at one of these positions now and then (camelid ``RGQG``
motifs, engineered disulfide-free domains), so one unusual residue that is not
explained by a shift is tolerated, and position 118 also passes when the
``G-x-G`` of its motif stands at 119 and 121.
"""

from __future__ import annotations

#: Conserved residues per IMGT position (any of the letters passes).
CONSERVED_IMGT = {23: "C", 41: "W", 104: "C", 118: "WF"}
#: How far (in numbered positions) a shifted conserved residue is searched for.
SHIFT_WINDOW = 2


def check_domain(sequence: str, indices: tuple[int, ...], positions: tuple[tuple[int, str], ...]) -> str | None:
    """The problem with one IMGT-numbered domain, or None when it passes.

    Args:
        sequence: the chain sequence the domain was numbered in.
        indices: 0-based sequence index of each numbered residue, increasing.
        positions: ``(number, insertion code)`` of each numbered residue.

    >>> seq = "AACAAWAACAAWGQGAA"
    >>> pos = ((21, ""), (22, ""), (23, ""), (39, ""), (40, ""), (41, ""), (102, ""), (103, ""), (104, ""),
    ...        (105, ""), (117, ""), (118, ""), (119, ""), (120, ""), (121, ""), (122, ""), (123, ""))
    >>> check_domain(seq, tuple(range(len(seq))), pos) is None
    True
    >>> shifted = ((22, ""), (23, ""), (24, "")) + pos[3:]
    >>> check_domain(seq, tuple(range(len(seq))), shifted)
    'conserved C23 found at position 24 (numbering shifted)'
    """
    letter = {p: sequence[i] for i, (p, ic) in zip(indices, positions, strict=True) if not ic}
    index = {p: i for i, (p, ic) in zip(indices, positions, strict=True) if not ic}
    numbers = [p for p, _ in positions]
    unusual = []
    for pos, allowed in CONSERVED_IMGT.items():
        if pos not in letter:
            if numbers and numbers[0] < pos < numbers[-1]:  # a framework position is never a gap
                return f"conserved position {pos} left empty inside the domain (numbering shifted)"
            continue
        if letter[pos] in allowed:
            continue
        if pos == 118 and letter.get(119) == "G" and letter.get(121) == "G":
            continue  # a variant Trp/Phe inside an intact G-x-G motif
        window = range(pos - SHIFT_WINDOW, pos + SHIFT_WINDOW + 1)
        near = [q for q in window if q != pos and letter.get(q, "-") in allowed]
        if near:
            return f"conserved {allowed[0]}{pos} found at position {near[0]} (numbering shifted)"
        unusual.append(f"{letter[pos]}{pos}")
    if len(unusual) > 1:
        return f"unexpected residues at conserved positions {', '.join(unusual)}"
    if 104 in index and 118 in index:
        inside = sum(1 for p in numbers if 104 < p < 118)
        if index[118] - index[104] - 1 != inside:
            return "CDR3 between positions 104 and 118 holds residues the numbering skipped"
    return None
