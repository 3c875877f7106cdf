"""Batch prediction: antibodies streamed in chunks, each record's result or error in input order.

With a framework builder, each antibody's loops are also grafted into a whole Fv
(:mod:`loopfold.fv`): its framework from templates, every loop of the chunk
placed on its stems and closed in one batch, and the loop coordinates and
torsions in the JSON are then those of the written Fv.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

from loopfold.errors import LoopfoldError
from loopfold.fv.assemble import Frame, FrameworkBuilder, FvModel
from loopfold.fv.build import LoopWindow, close_all, frame_ca, framework_placed, relieve_clashes
from loopfold.fv.checks import checked
from loopfold.fv.ranking import Ranker, first_loop_atoms, others_of, ranked_window
from loopfold.fv.template_frames import TemplateFrames
from loopfold.io.fasta import AntibodyInput, antibody_chains, clean_sequence
from loopfold.numbering.anarci import NumberedDomain
from loopfold.numbering.cache import ChainNumberer
from loopfold.numbering.vhh import hallmarks, is_vhh
from loopfold.pipeline.predictor import LoopQuery, Predictor
from loopfold.pipeline.results import LoopResult, Sample, loops_json, rounded
from loopfold.structure.closure import close_windows
from loopfold.structure.geometry import backbone_torsions
from loopfold.structure.planar import planarize
from loopfold.structure.superpose import superposed_rmsd

#: A loop whose shape closing it in the Fv changed by more than this (superposed RMSD, Å) says so.
SHAPE_WARNING = 1.0


@dataclass(frozen=True)
class AntibodyResult:
    """One input record's outcome: the JSON-ready result, the error (None when it worked; the
    exception itself, e.g. :class:`~loopfold.errors.NumberingError`) and the modelled Fv (None when
    not asked for or when the record failed)."""

    result: dict
    error: LoopfoldError | None = None
    fv: FvModel | None = None
    #: the typed loops (values before rounding) in the record's ``loops`` order: those of the Fv when built
    loops: tuple[LoopResult, ...] = ()


def predict_antibodies(
    predictor: Predictor,
    antibodies: Iterable[AntibodyInput],
    samples: int = 0,
    chunk: int = 512,
    workers: int | None = None,
    fv: FrameworkBuilder | None = None,
    numberer: ChainNumberer | None = None,
    nanobody: bool | None = None,
    first_chunk: int | None = None,
    top_k: int | None = None,
) -> Iterator[AntibodyResult]:
    """Yield one :class:`AntibodyResult` per antibody, in input order; errors are yielded, not raised:
    a failed antibody's result is ``{"id": name, "error": message}`` and its ``error`` the exception.

    Antibodies are taken ``chunk`` at a time: their chains are numbered together
    (anarcism, ``workers`` threads) and their loops go through the network in one
    call, so memory stays flat however many antibodies stream through. With ``first_chunk``
    the chunks start that small and grow 4-fold up to ``chunk``: the first results come within
    seconds, and the batches soon reach the efficient size. With ``fv``
    each antibody also gets a whole Fv; when one cannot be built (a CDR that could not be cut, a
    framework position no template has) the record keeps its loops and says why in ``fv_error``.
    Chains are numbered by ``numberer`` (a fresh :class:`ChainNumberer` when not given), so a chain
    seen earlier in the stream is not numbered again. Each result says which ``mode`` ran
    (:func:`record_mode`): a heavy chain alone is a nanobody when its FR2 hallmarks say so, or as
    ``nanobody`` (True/False) overrides, and then takes its framework from nanobody entries. With an
    Fv, each loop keeps its ``top_k`` best templates (default: as many as the run's ranker reads).
    """
    numberer = numberer if numberer is not None else ChainNumberer()
    keep_k = top_k if top_k is not None else predictor.ranker.k if predictor.ranker is not None else 0
    rank_cdrs = set(predictor.ranker.coef) if top_k is None and predictor.ranker is not None else None
    it = iter(antibodies)
    size = chunk if first_chunk is None else min(first_chunk, chunk)
    while batch := list(itertools.islice(it, size)):
        size = min(4 * size, chunk)
        errors: dict[int, LoopfoldError] = {}
        missing: dict[int, list[dict]] = {}
        items = []
        for k, ab in enumerate(batch):
            if ab.error is not None:
                errors[k] = ab.error
                continue
            try:
                chains = [
                    (f"{ab.name} {label}", clean_sequence(seq, f"{ab.name} {label}"))
                    for label, seq in antibody_chains(ab)
                ]
            except LoopfoldError as exc:
                errors[k] = exc
                continue
            items += chains
        numbered = iter(numberer.number(items, workers=workers or os.cpu_count())) if items else iter(())
        queries, owners, domains = [], [], {}
        modes: dict[int, tuple[str, str | None]] = {}
        for k, ab in enumerate(batch):
            if k in errors:
                continue
            doms = {label: next(numbered) for label, _ in antibody_chains(ab)}
            missing[k] = []
            try:
                qs, domains[k], modes[k] = record_queries(predictor, ab, doms, missing[k], nanobody)
            except LoopfoldError as exc:
                errors[k] = exc
                continue
            queries += qs
            owners += [k] * len(qs)
        windows: dict[int, np.ndarray] = {}

        def keep(i: int, q: LoopQuery, xyz: np.ndarray, windows: dict = windows) -> tuple[np.ndarray, None]:
            windows[i] = xyz
            return xyz, None

        sample_windows: dict[int, list[np.ndarray]] = {}
        placing = fv is not None and bool(queries)
        loops = predictor.predict_queries(queries, samples, place=keep if placing else None,
                                          sample_windows=sample_windows if placing else None,
                                          top_k=keep_k if placing else 0, top_k_cdrs=rank_cdrs)  # fmt: skip
        grouped: dict[int, list[int]] = {}
        for i, k in enumerate(owners):
            grouped.setdefault(k, []).append(i)
        fv_errors: dict[int, str] = {}
        models = _fv_models(fv, batch, domains, grouped, queries, loops, windows, fv_errors,
                            modes, sample_windows, *((predictor.template_frames, predictor.ranker)
                            if predictor.writes_templates else (None, None))) if fv is not None else {}  # fmt: skip
        entries = loops_json(loops)  # rounded once for the chunk
        for k, ab in enumerate(batch):
            if k in errors:
                yield AntibodyResult({"id": ab.name, "error": str(errors[k])}, errors[k])
                continue
            mine = grouped.get(k, [])
            res: dict[str, Any] = {"id": ab.name, "mode": modes[k][0], "loops": [entries[i] for i in mine]}
            if modes[k][1] is not None:
                res["vhh_hallmarks"] = modes[k][1]
            if missing.get(k):
                res["missing"] = missing[k]
            model = models.get(k)
            if model is not None:
                res["fv"] = fv_json(model)
            elif k in fv_errors:
                res["fv_error"] = fv_errors[k]
            yield AntibodyResult(res, None, model, tuple(loops[i] for i in mine))


def record_queries(
    predictor: Predictor, ab: AntibodyInput, doms: dict, missing: list[dict], nanobody: bool | None = None,
    read: bool = False,
) -> tuple[list[LoopQuery], dict[str, tuple[str, NumberedDomain]], tuple[str, str | None]]:
    """One record's loop queries with their Fv context (its chains numbered as ``doms``: label ->
    domains), its typed domains and its mode: what every input (sequences or a structure's chains)
    goes through, so the same chains give the same queries.

    Raises:
        LoopfoldError: the record cannot be predicted (its chains, a loop too long).
    """
    qs = predictor.antibody_queries(ab, doms, missing, read)
    domains = _typed_domains(ab, doms, read)
    mode = record_mode(domains, nanobody)
    if mode[0] == "nanobody":
        qs = [replace(q, nanobody=True) for q in qs]
    return qs, domains, mode


#: What a record is predicted as: VH + VL, a nanobody (VHH), a conventional VH alone, a VL alone.
MODES = ("paired", "nanobody", "heavy", "light")


def record_mode(domains: dict[str, tuple[str, NumberedDomain]], nanobody: bool | None = None) -> tuple[str, str | None]:
    """The record's mode (one of :data:`MODES`) and, for a heavy chain alone, its FR2 hallmark residues
    (IMGT 42, 49, 50, 52). ``nanobody`` overrides the hallmark call for a heavy chain alone."""
    if set(domains) != {"H"}:
        return ("paired" if "H" in domains else "light"), None
    seq, dom = domains["H"]
    vhh = is_vhh(seq, dom) if nanobody is None else nanobody
    return ("nanobody" if vhh else "heavy"), hallmarks(seq, dom)


def _typed_domains(ab: AntibodyInput, doms: dict, read: bool = False) -> dict[str, tuple[str, NumberedDomain]]:
    """Chain type -> (sequence, first domain of that type), as the loops were cut."""
    out: dict[str, tuple[str, NumberedDomain]] = {}
    for label, seq in antibody_chains(ab):
        want = {"heavy": "H", "light": "L"}.get(label)
        for d in doms[label]:
            if want in (None, d.chain_type):
                out.setdefault(d.chain_type, (seq if read else clean_sequence(seq, label), d))
    return out


def _fv_models(fv: FrameworkBuilder, batch: list[AntibodyInput], domains: dict, grouped: dict[int, list[int]],
               queries: list[LoopQuery], loops: list[LoopResult], windows: dict[int, np.ndarray],
               errors: dict[int, str], modes: dict[int, tuple[str, str | None]],
               sample_windows: dict[int, list[np.ndarray]], placing: TemplateFrames | None = None,
               ranker: Ranker | None = None) -> dict[int, FvModel]:  # fmt: skip
    """Frames for the chunk's antibodies, all loops closed at once, the Fv models; each loop in
    ``loops`` replaced by its closed coordinates and torsions, and its samples placed and closed on the
    same stems of the model (:func:`_place_samples`). With ``placing``, loops of its CDRs whose
    template has a frame are first placed by that framework (:func:`~loopfold.fv.build.framework_placed`);
    with ``ranker``, a loop of its CDRs is the candidate it predicts closest (:func:`_ranked`).
    Antibodies whose Fv cannot be built get the reason in ``errors``."""
    frames: dict[int, Frame] = {}
    lws: dict[int, list[LoopWindow]] = {}
    for k in domains:
        try:
            vhh = {"nanobody": True, "heavy": False}.get(modes[k][0])  # None: a paired or light record
            frames[k] = fv.frame(batch[k].name, domains[k], nanobody=vhh)
        except LoopfoldError as exc:
            errors[k] = f"no Fv built: {exc}"
            continue
        lws[k] = [LoopWindow(queries[i].cdr, queries[i].chain, cast(int, queries[i].start), len(queries[i].stem_n),
                             len(queries[i].sequence), len(queries[i].stem_c), windows[i],
                             _written_error(loops[i]))
                  for i in grouped.get(k, [])]  # fmt: skip
        if placing is not None:
            ca = {c: frame_ca(frames[k], c) for c in frames[k].coords}
            lws[k] = [framework_placed(lw, placing.get(loops[i].template), ca[lw.chain], placing.radius)[0]
                      if lw.cdr in placing.cdrs else lw for i, lw in zip(grouped.get(k, []), lws[k], strict=True)]
        if ranker is not None and modes[k][0] in ranker.modes:  # each loop among the others as first placed
            first = first_loop_atoms(frames[k], list(lws[k]))
            for m, i in enumerate(grouped.get(k, [])):
                lws[k][m] = _ranked(frames[k], lws[k][m], i, queries[i], loops, placing, ranker, others_of(first, m))
        if ranker is not None:  # the candidates' windows are not kept past the choice
            for i in grouped.get(k, []):
                loops[i] = replace(loops[i], candidates=None)
    keys = list(lws)
    try:
        closed = close_all([frames[k] for k in keys], [lws[k] for k in keys], [batch[k].name for k in keys])
    except LoopfoldError:  # one antibody's stems: find it, one at a time
        closed = []
        for k in list(keys):
            try:
                closed += close_all([frames[k]], [lws[k]], [batch[k].name])
            except LoopfoldError as exc:
                errors[k] = f"no Fv built: {exc}"
                keys.remove(k)
    models = {}
    placed: list[tuple[int, LoopWindow, np.ndarray]] = []  # (loop, its window, the model's closed window)
    for k, cl in zip(keys, closed, strict=True):
        try:
            model, cl = relieve_clashes(frames[k], lws[k], cl, batch[k].name, fv.error_coef)
            models[k] = checked(model, fv.rama)
        except LoopfoldError as exc:
            errors[k] = f"no Fv built: {exc}"
            continue
        for i, lw, res in zip(grouped.get(k, []), lws[k], cl, strict=True):
            a, n = lw.n_stem, lw.n_loop
            ang = backbone_torsions(res.coords)[a : a + n]
            values = replace(loops[i].values, coords=res.coords[a : a + n].copy(), angles=ang)
            shape = superposed_rmsd(lw.window[a : a + n], res.coords[a : a + n])
            notes = loops[i].warnings + ((f"closing the loop in the Fv changed its shape by {shape:.2f} A "
                                          f"(over {SHAPE_WARNING} A)",) if shape > SHAPE_WARNING else ())  # fmt: skip
            loops[i] = replace(loops[i], values=values, closure_rmsd=res.anchor_rmsd, placement=lw.placement,
                               closure_shape_rmsd=shape, warnings=notes)  # fmt: skip
            placed.append((i, lw, res.coords))
    _place_samples(placed, loops, sample_windows)
    return models


def _ranked(frame: Frame, lw: LoopWindow, i: int, q: LoopQuery, loops: list[LoopResult],
            placing: TemplateFrames | None, ranker: Ranker, others: np.ndarray) -> LoopWindow:  # fmt: skip
    """A loop's window as the ranker chooses among its candidates (``loops[i]`` then names the template
    chosen and gets the ranker's predicted RMSD as ``rmsd_frame_predicted``)."""
    cand = loops[i].candidates
    new, j, predicted = ranked_window(frame, lw, cand, placing, ranker, others)
    if predicted is None or cand is None:
        return lw
    if j:  # another template: its cis bonds before residues that are not prolines made planar
        new = replace(new, window=planarize(new.window, q.stem_n + q.sequence + q.stem_c)[0])
    loops[i] = replace(loops[i], template=cand.ids[j], rank_chosen=j, rmsd_frame_predicted=predicted)
    return new


def _place_samples(placed: list[tuple[int, LoopWindow, np.ndarray]], loops: list[LoopResult],
                   sample_windows: dict[int, list[np.ndarray]]) -> None:  # fmt: skip
    """Each sample of a loop in a built Fv placed and closed like the loop: onto the stems the written
    loop has in the model, all samples of the chunk in one batch; their coordinates and torsions
    become the placed ones, with their ``closure_rmsd``."""
    jobs = [(i, s, win, lw) for i, lw, _ in placed for s, win in enumerate(sample_windows.get(i, []))]
    if not jobs:
        return
    model = {i: xyz for i, _, xyz in placed}
    closed = close_windows([win for _, _, win, _ in jobs], [model[i][: lw.n_stem] for i, _, _, lw in jobs],
                           [model[i][lw.n_stem + lw.n_loop :] for i, _, _, lw in jobs])  # fmt: skip
    new: dict[int, list[Sample]] = {}
    for (i, s, _, lw), res in zip(jobs, closed, strict=True):
        a, n = lw.n_stem, lw.n_loop
        old = new.setdefault(i, list(loops[i].samples or ()))
        old[s] = replace(old[s], angles=backbone_torsions(res.coords)[a : a + n], coords=res.coords[a : a + n].copy(),
                         closure_rmsd=res.anchor_rmsd)  # fmt: skip
    for i, done in new.items():
        loops[i] = replace(loops[i], samples=tuple(done))


def _written_error(loop: LoopResult) -> np.ndarray | None:
    """A loop's predicted error per residue as the JSON writes it (0.01 Å): what the Fv's B-factors
    and ``error_frame`` are made from, so they agree with the record."""
    return None if loop.values.error is None else np.round(loop.values.error, 2)


def fv_json(model: FvModel) -> dict:
    """The JSON ``fv`` entry: templates, identities, clashes (pairs with a loop atom), the whole model's
    geometry check, notes and every residue's predicted error."""
    return {
        "templates": model.templates,
        "framework_identity": model.identity,
        "clashes": model.clashes,
        **({"geometry": model.geometry.json()} if model.geometry is not None else {}),
        "chains": [{"chain": ch.chain_id, "residue_ids": list(ch.residue_ids), "sequence": ch.sequence,
                    "error_frame": rounded(ch.error_frame, 2)} for ch in model.chains],  # fmt: skip
        **({"notes": list(model.notes)} if model.notes else {}),
    }
