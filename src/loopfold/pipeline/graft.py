"""Predicted loops grafted into a structure, onto its own stems (``--structure``).

Each predicted window is placed on all its stem residues (both sides) and
closed onto them (:mod:`loopfold.structure.closure`); every atom outside the
loops is written as read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from loopfold import __version__
from loopfold.constants import STRUCTURE_B_REMARKS
from loopfold.errors import BadStructure, NumberingError
from loopfold.io.fasta import AntibodyInput
from loopfold.io.model_check import new_atom_contacts, read_model, structure_chains
from loopfold.numbering.anarci import NumberedDomain
from loopfold.numbering.cache import ChainNumberer
from loopfold.pipeline.predictor import LoopQuery, Predictor
from loopfold.pipeline.results import LoopResult, StructureSite, loops_json
from loopfold.structure.backbone import Backbone
from loopfold.structure.closure import close_windows
from loopfold.structure.relieve import ideal_cb
from loopfold.structure.superpose import rmsd
from loopfold.structure.validate import check

#: the farthest apart (Å) the CA centroids of a VH and a VL domain may be to be one Fv (about 25 in an Fv)
PAIR_DISTANCE = 40.0



def error_b_factor(error: float) -> float:
    """The isotropic B-factor (Å²) of an atom whose expected displacement is ``error`` Å RMS:
    ``B = 8 pi^2 <u^2>`` with ``<u^2> = error^2 / 3`` per axis."""
    return 8.0 * np.pi**2 / 3.0 * error**2


def structure_records(sf, numbered: list) -> list[tuple[AntibodyInput, dict, dict[str, Backbone]]]:  # noqa: ANN001
    """The antibodies of a structure's numbered chains, as records the sequence path takes: one heavy
    and one light chain are one Fv; with more, each heavy chain goes with the light chain whose
    variable domain is nearest (CA centroids within :data:`PAIR_DISTANCE`); a chain holding both
    (an scFv) is one on its own, the rest are alone. Each comes with its numbering (label ->
    domains) and the chain of each chain type."""
    heavy: list[tuple[Backbone, list[NumberedDomain]]]
    light: list[tuple[Backbone, list[NumberedDomain]]]
    heavy, light, out = [], [], []
    for bb, doms in zip(sf.chains, numbered, strict=True):
        if isinstance(doms, NumberingError):
            continue
        types = {d.chain_type for d in doms}
        if types == {"H", "L"}:
            out.append((AntibodyInput(bb.chain_id, None, None, bb.sequence), {"sequence": doms}, {"H": bb, "L": bb}))
        elif types:
            (heavy if "H" in types else light).append((bb, doms))
    centre = {id(bb): np.nanmean(bb.coords[[i for d in doms for i in d.indices], 1], 0) for bb, doms in heavy + light}
    pairs = sorted((float(np.linalg.norm(centre[id(h)] - centre[id(lc)])), i, j)
                   for i, (h, _) in enumerate(heavy) for j, (lc, _) in enumerate(light))  # fmt: skip
    partner: dict[int, int] = {}
    one_fv = len(heavy) == len(light) == 1
    for dist, i, j in pairs:
        if (one_fv or dist <= PAIR_DISTANCE) and i not in partner and j not in partner.values():
            partner[i] = j
    for i, (h, hd) in enumerate(heavy):
        if i in partner:
            lc, ld = light[partner[i]]
            out.append((AntibodyInput(f"{h.chain_id}{lc.chain_id}", h.sequence, lc.sequence),
                        {"heavy": hd, "light": ld}, {"H": h, "L": lc}))  # fmt: skip
        else:
            out.append((AntibodyInput(h.chain_id, h.sequence, None), {"heavy": hd}, {"H": h}))
    for j, (lc, ld) in enumerate(light):
        if j not in partner.values():
            out.append((AntibodyInput(lc.chain_id, None, lc.sequence), {"light": ld}, {"L": lc}))
    return out


def predict_structure(
    predictor: Predictor, path: str | Path, loops: list[str] | None = None, numberer: ChainNumberer | None = None,
    nanobody: bool | None = None,
) -> tuple[dict, str, list[LoopResult]]:
    """Replace CDR loops of a structure with predictions closed onto its stems.

    The chains are numbered (``numberer``: the run's cache and species) and grouped into antibodies
    (:func:`structure_records`); each antibody's loops are cut with its Fv context exactly as from
    its sequences (:func:`loopfold.pipeline.batch.record_queries`), so a crystal's own chains get the loops,
    templates and confidences ``--heavy/--light`` give them; every loop goes through the network in
    one call, and each chosen window is placed on all its stem residues and closed onto them.
    Framework atoms are written as read; predicted residues carry their predicted error as B-factor.

    Returns:
        (the result dict with loop coordinates in the structure's frame, the PDB text, the typed
        loops in the result's order).

    Raises:
        LoopfoldError: unreadable structure, no antibody chain, a requested loop
            absent, or stems with missing atoms or breaks.
    """
    from loopfold.io.pdb import read_structure, structure_with_backbones
    from loopfold.pipeline.batch import record_queries

    wanted = None if loops is None else set(loops)
    sf = read_structure(path)
    numberer = numberer if numberer is not None else ChainNumberer()
    numbered = numberer.number([(f"{path}:{bb.chain_id}", bb.sequence) for bb in sf.chains])
    replacements: dict[str, dict[str, np.ndarray]] = {}
    errors: dict[str, dict[str, float]] = {}  # predicted error (Å) per replaced residue: the B-factor
    found: set[str] = set()
    missing: list[dict] = []
    chain_types = {d.chain_type for doms in numbered if not isinstance(doms, NumberingError) for d in doms}
    queries: list[LoopQuery] = []
    owners: list[Backbone] = []
    antibodies: list[dict[str, Any]] = []  # each Fv of the file: its chains and what it was predicted as
    for ab, doms, chains in structure_records(sf, numbered):
        uncut: list[dict] = []
        qs, _, (mode, hallmarks) = record_queries(predictor, ab, doms, uncut, nanobody, read=True)
        antibodies.append({"chains": [chains[t].chain_id for t in ("H", "L") if t in chains], "mode": mode}
                          | ({"vhh_hallmarks": hallmarks} if hallmarks is not None else {}))  # fmt: skip
        missing += [m | {"chain_id": chains[m["cdr"][0]].chain_id} for m in uncut
                    if wanted is not None and m["cdr"] in wanted and m["cdr"][0] in chains]  # fmt: skip
        for q in (q for q in qs if wanted is None or q.cdr in wanted):
            bb = chains[q.chain]
            why = _unusable_window(bb, q)
            if why is not None:  # a disordered loop or stem residue: never closed over as a shorter loop
                found.add(q.cdr)
                missing.append({"cdr": q.cdr, "chain_id": bb.chain_id, "reason": why})
                continue
            assert q.start is not None  # a loop cut from a chain (antibody_queries) has its start
            lo = q.start - len(q.stem_n)
            hi = q.start + len(q.sequence) + len(q.stem_c)
            if not q.stem_n or not q.stem_c:
                raise BadStructure(f"{path}: {q.cdr} of chain {bb.chain_id} has no stem residue on one side")
            window = bb.coords[lo:hi]
            stem_idx = list(range(len(q.stem_n))) + list(range(len(q.stem_n) + len(q.sequence), len(window)))
            if np.isnan(window[stem_idx, :3]).any():
                raise BadStructure(f"{path}: {q.cdr} of chain {bb.chain_id}: stem residues lack backbone atoms")
            queries.append(q)
            owners.append(bb)
    position = {id(c): k for k, c in enumerate(sf.chains)}
    order = sorted(range(len(queries)), key=lambda i: position[id(owners[i])])  # the file's chain order
    queries, owners = [queries[i] for i in order], [owners[i] for i in order]

    def place(i: int, q: LoopQuery, xyz: np.ndarray) -> tuple[np.ndarray, float]:
        bb = owners[i]
        assert q.start is not None  # one of queries: cut from a chain
        lo = q.start - len(q.stem_n)
        a, n = len(q.stem_n), len(q.sequence)
        true = bb.coords[lo : lo + len(xyz)]
        (closed,) = close_windows([xyz], [true[:a]], [true[a + n :]])
        return closed.coords.copy(), closed.anchor_rmsd  # the stems keep their own atoms

    placed = predictor.predict_queries(queries, place=place)  # one network call for every chain
    for i, (q, lp, bb) in enumerate(zip(queries, placed, owners, strict=True)):
        found.add(q.cdr)
        assert q.start is not None  # cut from a chain
        end = q.start + len(q.sequence)
        ids = bb.residue_ids[q.start : end]
        xyz = lp.values.coords
        placed[i] = lp = replace(lp, site=StructureSite(
            bb.chain_id, tuple(ids), (bb.residue_ids[q.start - 1], bb.residue_ids[end]),
            c_n_gap=float(np.linalg.norm(xyz[-1, 2] - bb.coords[end, 0])),
            rmsd_to_input=rmsd(xyz, bb.coords[q.start : end])))  # fmt: skip
        if lp.values.error is not None:  # B-factors from the error as the JSON gives it (0.01 Å)
            shown = np.round(lp.values.error, 2).tolist()
            errors.setdefault(bb.chain_id, {}).update(
                (rid, round(error_b_factor(e), 2)) for rid, e in zip(ids, shown, strict=True))
        xyz = np.round(xyz, 3)  # the file's loop atoms are the JSON's
        cb = ideal_cb(xyz, np.array([a == "G" for a in q.sequence]))
        replacements.setdefault(bb.chain_id, {}).update(
            {rid: np.concatenate([xyz[j], cb[j][None]]) for j, rid in enumerate(ids)})
    results = loops_json(placed)
    absent = sorted((wanted or set()) - found)
    if absent:
        kinds = sorted({m["cdr"][0] for m in missing} | {r["cdr"][0] for r in results} | chain_types)
        raise BadStructure(f"{path}: requested loops not found: {', '.join(absent)} (antibody chain types in "
                           f"the file: {', '.join(kinds) or 'none'})")  # fmt: skip
    if not results and not missing:
        raise NumberingError(f"{path}: no antibody CDR loops found")
    names = " ".join(f"{r['chain_id']}:{r['cdr']}" for r in results)
    remarks = [f"loopfold {__version__} model {predictor.name}",
               f"CDR loops {names} predicted, placed on their stems and closed",
               *(STRUCTURE_B_REMARKS if errors else ())]
    result: dict[str, Any] = {"id": Path(path).name, "antibodies": antibodies, "loops": results}
    if missing:
        result["missing"] = missing
    renamed: dict[str, str] = {}
    text = structure_with_backbones(path, replacements, remarks, errors, renamed)
    if renamed:  # the file's chain ids that PDB cannot hold, and what they became there
        result["pdb_chain_ids"] = renamed
    return result, text, placed


def structure_output(result: dict, text: str, name: str, refine: bool = False) -> tuple[str, list[str]]:
    """The ``--structure`` file's final text and warnings: refined (``refine``; only the new loops and
    the residue either side move, a refinement that damages them undone), then checked: the new
    loops' contacts with every kept atom (ligands too: ``new_loop_contacts``) and the geometry check
    of the new loops and their flanking residues (``geometry``), both added to ``result``.

    Raises:
        LoopfoldError: the refinement cannot run.
    """
    from loopfold.fv.refine import merge_refined, refine_checked

    warnings = []
    moved = remodelled(result, around=True)
    if refine:
        ref = refine_checked(text, name, movable=moved)
        text = merge_refined(text, ref.text, moved) if ref.refined else ref.text
        if ref.reason:
            warnings.append(ref.reason)
    st = read_model(text)
    result["new_loop_contacts"] = new_atom_contacts(st, remodelled(result))
    geo = check(structure_chains(st)).only(moved)
    result["geometry"] = geo.json()
    if not geo.passed:
        warnings.append(f"the new loops fail the geometry check: {'; '.join(geo.problems())}")
    return text, warnings


def remodelled(result: dict, around: bool = False) -> set[tuple[str, str]]:
    """(chain as written, residue number with insertion code) of every residue a ``--structure`` result
    replaced, with ``around`` the residue either side too (the stems a refinement may move)."""
    written = result.get("pdb_chain_ids", {})  # the file's chain ids that PDB cannot hold, as written
    out: set[tuple[str, str]] = set()
    for lp in result["loops"]:
        chain = written.get(lp["chain_id"], lp["chain_id"])
        out |= {(chain, rid) for rid in lp["file_residue_ids"] + (lp["file_flank_ids"] if around else [])}
    return out


def _unusable_window(bb: Backbone, q: LoopQuery) -> str | None:
    """Why a loop window of a structure cannot be replaced (a non-standard residue, a chain break or
    missing backbone atoms in the loop or its stems), or None."""
    assert q.start is not None  # a loop cut from the structure's chain (antibody_queries)
    lo, hi = q.start - len(q.stem_n), q.start + len(q.sequence) + len(q.stem_c)
    window = bb.slice(lo, hi)
    odd = [i for i, aa in enumerate(window.sequence) if aa == "X"]
    if odd:
        return (f"non-standard residue at {window.residue_ids[odd[0]]} in the loop window: the loop is left "
                f"as it is")  # fmt: skip
    gaps = np.nonzero(window.breaks())[0]
    if len(gaps):
        i = int(gaps[0])
        return (f"chain break between residues {window.residue_ids[i]} and {window.residue_ids[i + 1]} "
                f"(residues or atoms missing from the structure): the loop is left as it is")  # fmt: skip
    return None
