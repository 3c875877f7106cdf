"""The geometry check of a modelled Fv (:mod:`loopfold.structure.validate`) and what follows from it:
the JSON ``fv.geometry`` entry, notes that never call a broken stretch closed, and the predicted error
of the residues beside a chain gap raised to at least half the gap's excess over a peptide bond
(one of the two is at least that far from where it should be)."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from loopfold.constants import BOND_C_N
from loopfold.fv.assemble import FvModel
from loopfold.structure.validate import ChainAtoms, GeometryCheck, RamaTable, check


def model_chains(model: FvModel) -> list[ChainAtoms]:
    """The model's chains as the check reads them (consecutive sequence residues are bonded)."""
    return [ChainAtoms(ch.chain_id, ch.sequence, ch.residue_ids, ch.coords, ch.cb, np.diff(ch.index) == 1)
            for ch in model.chains]


def checked(model: FvModel, rama: RamaTable | None = None) -> FvModel:
    """The model with its geometry check, notes saying where it is broken, and the predicted error of
    the residues beside a chain gap at least half the gap's excess over a peptide bond."""
    geo = check(model_chains(model), rama)
    broken = _broken(geo)
    notes = [_recheck(n, model, broken) for n in model.notes]
    notes += [f"chain {_gap(g)[0]}: chain break {g.split(' ', 1)[1]}, not closed" for g in geo.gaps]
    floor = _gap_floor(geo)
    chains = []
    for ch in model.chains:
        low = np.array([floor.get(f"{ch.chain_id} {a}{r}", 0.0) for a, r in zip(ch.sequence, ch.residue_ids,
                                                                               strict=True)])  # fmt: skip
        chains.append(replace(ch, error_frame=np.round(np.maximum(ch.error_frame, low), 2)) if low.any() else ch)
    return replace(model, chains=tuple(chains), notes=tuple(notes), geometry=geo)


def _broken(geo: GeometryCheck) -> set[str]:
    """Residues (``"H S22"``) at a chain gap, a peptide bond of wrong length or angle, or a clash."""
    out: set[str] = set()
    for g in geo.gaps:
        chain, pair, _ = _gap(g)
        out |= {f"{chain} {r}" for r in pair}
    out |= {b.removesuffix(" C-N") for b in (*geo.bond_outliers, *geo.angle_outliers) if b.endswith(" C-N")}
    for clash in geo.clashes:
        out |= set(clash.split("/"))
    return out


def _recheck(note: str, model: FvModel, broken: set[str]) -> str:
    """A note that calls a rebuilt stretch closed, corrected when the check finds the stretch (or the
    residue either side) broken."""
    m = _SPAN.match(note)
    if m is None or ", closed" not in note:
        return note
    ch = next((c for c in model.chains if c.chain_id == m["chain"]), None)
    names = [] if ch is None else [f"{a}{r}" for a, r in zip(ch.sequence, ch.residue_ids, strict=True)]
    if m["first"] not in names or (m["last"] or m["first"]) not in names:
        return note
    lo, hi = names.index(m["first"]), names.index(m["last"] or m["first"])
    bad = [n for n in names[max(lo - 1, 0) : hi + 2] if f"{m['chain']} {n}" in broken]
    if not bad:
        return note
    return note.replace(", closed", f", NOT closed (geometry check: {', '.join(bad)} broken or clashing)")


_SPAN = re.compile(r"chain (?P<chain>\w+): residues? (?P<first>[A-Z]\d+[A-Z]?)(?:-(?P<last>[A-Z]\d+[A-Z]?))? ")


def _gap_floor(geo: GeometryCheck) -> dict[str, float]:
    """Residue (``"H S22"``) -> the least error a chain gap beside it implies (Å)."""
    out: dict[str, float] = {}
    for g in geo.gaps:
        chain, pair, dist = _gap(g)
        for res in pair:
            key = f"{chain} {res}"
            out[key] = max(out.get(key, 0.0), (dist - BOND_C_N) / 2.0)
    return out


def _gap(name: str) -> tuple[str, list[str], float]:
    """A gap's chain, its two residues and the C-N distance, from its name (``H S22-C23 10.8 A``)."""
    chain, pair, dist = name.split()[:3]
    return chain, pair.split("-"), float(dist)

