"""Typed loop results, and the one place they become JSON (rounded).

The predictor returns :class:`LoopResult` objects holding the values before
rounding (:class:`LoopArrays`); placement and the Fv closure replace those
values; :func:`loops_json` turns the finished results into the JSON-ready
entries every output (JSON, JSON lines, Parquet, the API's ``record``) holds.
The API's :class:`~loopfold.api.Loop` is built from the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopfold.model.templates import Candidates


@dataclass(frozen=True)
class LoopArrays:
    """One loop's residues (stems excluded) as written: backbone ``coords`` ``[n, 4, 3]`` N, CA, C, O
    (Å), ``angles`` ``[n, 3]`` phi, psi, omega (degrees; NaN where undefined), ``confidence`` ``[n]``
    and ``error`` ``[n]``, the predicted error of each residue with the loop superposed on itself (Å;
    None without an error model)."""

    coords: np.ndarray
    angles: np.ndarray
    confidence: np.ndarray
    error: np.ndarray | None


@dataclass(frozen=True)
class Sample:
    """One alternative conformation of a loop (``--samples``): its probability among the loop's samples,
    template (None for a draw from the bins), loop residues' ``angles`` ``[n, 3]`` and ``coords``
    ``[n, 4, 3]``, and, once placed in an Fv, its ``closure_rmsd`` (Å)."""

    probability: float
    template: str | None
    angles: np.ndarray
    coords: np.ndarray
    closure_rmsd: float | None = None


@dataclass(frozen=True)
class StructureSite:
    """Where a ``--structure`` loop went: the file's chain, its loop and flanking residue ids, the gap
    from the loop's last C to the next residue's N (Å) and the RMSD to the loop it replaced (Å)."""

    chain_id: str
    file_residue_ids: tuple[str, ...]
    file_flank_ids: tuple[str, str]
    c_n_gap: float
    rmsd_to_input: float


@dataclass(frozen=True)
class LoopResult:
    """One predicted loop: the query it answers, the values written (:class:`LoopArrays`), the
    template, identity to the training loops, the predicted RMSD, notes on its stems, its samples,
    and, once placed on stems (an Fv's or a structure's), the closure's anchor RMSD."""

    cdr: str
    chain: str
    definition: str
    sequence: str
    stem_n: str
    stem_c: str
    start: int | None
    residue_ids: tuple[str, ...] | None
    values: LoopArrays
    seen_in_training: bool
    max_training_identity: float | None
    template: str | None
    rmsd_predicted: float | None = None
    warnings: tuple[str, ...] = ()
    samples: tuple[Sample, ...] | None = None
    closure_rmsd: float | None = None
    site: StructureSite | None = field(default=None, repr=False)
    #: once closed in a built Fv: how the window was placed (``stems`` or ``framework``) and how much
    #: closing it changed the loop's own shape (superposed RMSD of its residues before and after, Å)
    placement: str | None = None
    closure_shape_rmsd: float | None = None
    #: the loop's best templates in the network's ranking (when the predictor keeps them: ``top_k``)
    candidates: Candidates | None = field(default=None, repr=False, compare=False)
    #: once a ranker chose among them in the Fv: the chosen one's place in the network's ranking
    #: (0: its first choice) and its predicted framework-superposed RMSD (Å)
    rank_chosen: int | None = None
    rmsd_frame_predicted: float | None = None


def rounded(values: np.ndarray, ndigits: int = 2) -> list[float | None]:
    """Rounded values as a list, None where a value is NaN (undefined)."""
    return _nan_as_none(np.round(values, ndigits).tolist())


def _nan_as_none(values: list) -> list:
    """A list with None where a value is NaN (JSON has no NaN: undefined values are null)."""
    return [None if v != v else v for v in values]


class _Rounded:
    """Many arrays of the same trailing shape rounded and turned into lists with one NumPy call: part
    ``k`` of :meth:`columns` or :meth:`items` is what rounding ``arrays[k]`` alone gives."""

    def __init__(self, arrays: list[np.ndarray], ndigits: int, trailing: tuple[int, ...]) -> None:
        self.start = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(int).tolist()
        flat = np.concatenate(arrays).astype(np.float64, copy=False) if arrays else np.zeros((0, *trailing))
        self.flat = np.round(flat, ndigits)

    def columns(self, axes: tuple[int, ...]) -> list:
        """The rounded values with ``axes`` moved first, as nested lists (cut per array by :meth:`part`)."""
        return self.flat.transpose(axes).tolist()

    def part(self, values: list, k: int) -> list:
        """Array k's slice of a list over all rows."""
        return values[self.start[k] : self.start[k + 1]]


def _none_for_nan(out: dict[str, list]) -> dict[str, list]:
    if any(x != x for v in out.values() for x in v):  # NaN: undefined, written as None
        return {k: _nan_as_none(v) for k, v in out.items()}
    return out


def loops_json(results: list[LoopResult]) -> list[dict[str, Any]]:
    """The JSON-ready entries of many loops (key order and rounding as loopfold has written them since
    0.3: angles 0.1 degree, coordinates 0.001 Å, confidence 0.001, errors 0.01 Å), rounded in one
    NumPy call per kind of value for all of them and their samples."""
    vals = [r.values for r in results]
    samples = [s for r in results for s in (r.samples or ())]
    ang = _Rounded([v.angles for v in vals] + [s.angles for s in samples], 1, (3,))
    xyz = _Rounded([v.coords for v in vals] + [s.coords for s in samples], 3, (4, 3))
    conf = _Rounded([v.confidence for v in vals], 3, ())
    angles, coords, confidence = ang.columns((1, 0)), xyz.columns((1, 0, 2)), conf.columns((0,))
    with_error = [(i, v.error) for i, v in enumerate(vals) if v.error is not None]
    err = _Rounded([e for _, e in with_error], 2, ())
    err_list = _nan_as_none(err.columns((0,)))
    errors = {i: err.part(err_list, k) for k, (i, _) in enumerate(with_error)}

    def values(k: int, conf_k: int | None) -> dict[str, Any]:
        out = {name: ang.part(angles[j], k) for j, name in enumerate(("phi", "psi", "omega"))}
        if conf_k is not None:
            out["confidence"] = conf.part(confidence, conf_k)
        at = dict(zip(("N", "CA", "C", "O"), (xyz.part(c, k) for c in coords), strict=True))
        return {**_none_for_nan(out), "coords": at}

    entries, s_k = [], len(vals)
    for i, r in enumerate(results):
        v = values(i, i)
        lp: dict[str, Any] = {
            "cdr": r.cdr, "chain": r.chain, "definition": r.definition, "sequence": r.sequence,
            "stem_n": r.stem_n, "stem_c": r.stem_c, "start": r.start,
            **({"residue_ids": list(r.residue_ids)} if r.residue_ids else {}),
            **v, "seen_in_training": r.seen_in_training,
            "max_training_identity": None if r.max_training_identity is None else round(r.max_training_identity, 3),
            "template": r.template,
            **({"warnings": list(r.warnings)} if r.warnings else {}),
        }  # fmt: skip
        if r.site is not None:  # placed on a structure's own stems
            lp.update(closure_rmsd=_r3(r.closure_rmsd), c_n_gap=round(r.site.c_n_gap, 3),
                      rmsd_to_input=round(r.site.rmsd_to_input, 3))  # fmt: skip
        if i in errors:
            lp["error"] = errors[i]
            lp["rmsd_predicted"] = None if r.rmsd_predicted is None else round(r.rmsd_predicted, 2)
        if r.samples is not None:
            lp["samples"] = []
            for s in r.samples:
                sv = values(s_k, None)
                s_k += 1
                lp["samples"].append({"probability": round(float(s.probability), 3), "template": s.template, **sv,
                                      **({"closure_rmsd": _r3(s.closure_rmsd)} if s.closure_rmsd is not None else {})})
        if r.site is None and r.closure_rmsd is not None:  # closed in a built Fv
            lp["closure_rmsd"] = _r3(r.closure_rmsd)
            if r.placement is not None:
                lp.update(placement=r.placement, closure_shape_rmsd=_r3(r.closure_shape_rmsd))
            if r.rank_chosen is not None:
                lp.update(network_rank=r.rank_chosen, rmsd_frame_predicted=_r3(r.rmsd_frame_predicted))
        if r.site is not None:
            lp.update(chain_id=r.site.chain_id, file_residue_ids=list(r.site.file_residue_ids),
                      file_flank_ids=list(r.site.file_flank_ids))  # fmt: skip
        entries.append(lp)
    return entries


def _r3(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)
