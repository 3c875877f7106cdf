"""The geometry check of a modelled Fv (:mod:`loopfold.structure.validate`) and what follows from it:
the JSON ``fv.geometry`` entry, notes that never call a broken stretch closed, and the predicted error
of the residues beside a chain gap raised to at least half the gap's excess over a peptide bond
(one of the two is at least that far from where it should be)."""

from __future__ import annotations

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
    notes = list(model.notes)
    if geo.gaps:
        notes = [n.replace(", closed", ", closure checked below") for n in notes]
        notes += [f"chain {g.split()[0]}: chain break {g.split(' ', 1)[1]} (IMGT numbers; not closed)"
                  for g in geo.gaps]  # fmt: skip
    floor = _gap_floor(geo)
    chains = []
    for ch in model.chains:
        low = np.array([floor.get(f"{ch.chain_id} {a}{r}", 0.0) for a, r in zip(ch.sequence, ch.residue_ids,
                                                                               strict=True)])  # fmt: skip
        chains.append(replace(ch, error=np.round(np.maximum(ch.error, low), 2)) if low.any() else ch)
    return replace(model, chains=tuple(chains), notes=tuple(notes), geometry=geo)


def _gap_floor(geo: GeometryCheck) -> dict[str, float]:
    """Residue (``"H S22"``) -> the least error a chain gap beside it implies (Å)."""
    out: dict[str, float] = {}
    for g in geo.gaps:
        chain, pair, dist = g.split()[:3]
        for res in pair.split("-"):
            key = f"{chain} {res}"
            out[key] = max(out.get(key, 0.0), (float(dist) - BOND_C_N) / 2.0)
    return out

