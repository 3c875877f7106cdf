"""Tell a nanobody (VHH) from a conventional heavy-chain variable domain by its FR2 hallmarks.

A conventional VH packs against a VL through FR2, whose IMGT positions 42, 49,
50 and 52 carry the hydrophobic V, G, L, W almost always. Camelid VHH domains,
which have no partner, carry hydrophilic or smaller residues there (typically
F/Y42, E/Q49, R/C50, F/G/L52; Muyldermans 2013, Annu Rev Biochem 82:775). A
heavy-chain domain is called a VHH when at least :data:`MIN_HALLMARKS` of the
four positions carry a VHH-type residue (:data:`VHH_RESIDUES`); conventional
variants such as I42, S/R/A49 or P50 do not count. On ``sabdab_extra`` the
rule calls 137 of 145 nanobodies VHH (the other 8 have VH-like V-G-L-W
hallmarks) and none of the 367 Fv heavy chains (``docs/benchmarks.md``).
"""

from __future__ import annotations

from loopfold.numbering.anarci import NumberedDomain

#: The conventional VH residue at each FR2 hallmark position (IMGT).
VH_HALLMARKS = {42: "V", 49: "G", 50: "L", 52: "W"}
#: Residues at each hallmark position that mark a VHH.
VHH_RESIDUES = {42: "FY", 49: "EQKD", 50: "RCH", 52: "FGLAMV"}
#: Hallmark positions that must carry a VHH-type residue for a VHH call.
MIN_HALLMARKS = 2


def hallmarks(sequence: str, domain: NumberedDomain) -> str:
    """The residues at IMGT 42, 49, 50, 52 of a heavy domain (``-`` where a position is absent)."""
    at = {p: sequence[i] for i, (p, ic) in zip(domain.indices, domain.positions, strict=True) if not ic}
    return "".join(at.get(p, "-") for p in VH_HALLMARKS)


def is_vhh(sequence: str, domain: NumberedDomain) -> bool:
    """True for a heavy-chain domain whose FR2 hallmarks are those of a nanobody (see the module docstring)."""
    if domain.chain_type != "H":
        return False
    marks = hallmarks(sequence, domain)
    return sum(m in kinds for m, kinds in zip(marks, VHH_RESIDUES.values(), strict=True)) >= MIN_HALLMARKS
