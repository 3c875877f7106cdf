"""A whole Fv from numbered chains and predicted loops: framework templates, VH-VL orientation, grafting.

Template choice (the approach of ABodyBuilder's first version and RosettaAntibody):

* each chain's framework comes from the library entry with the highest sequence
  identity over the query's framework positions, less 0.02 for each of those
  positions the entry lacks (disordered in its crystal: filled from the next
  entry, below), among entries with no position the query lacks inside the
  query's span (it would leave a gap in the chain); resolution breaks ties;
* the VH-VL orientation comes from the entries with the highest summed VH and
  VL framework identity that have both chains: the best one that leaves the two
  chosen frameworks apart places the VH template, and the VL template is
  placed by the mean of the ten best entries' orientations (each entry's VH
  superposed on the placed VH, the VL template on that entry's VL, the copies
  averaged and the template fitted to the mean) unless that mean brings the
  frameworks together;
* a run of query framework positions that the chosen template lacks is taken
  from the next-best entry that has it with three flanking residues each side
  (and no position the query lacks among them), closed onto the chosen
  template's flanks like a loop; at a chain end it is built as a beta strand
  with ideal geometry instead. Either is noted.

The predicted loop windows are then placed on their stems and closed
(:mod:`loopfold.structure.closure`), CB atoms are built from N, CA, C with ideal
geometry, and every residue gets a predicted error in Å (:mod:`loopfold.fv.build`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from loopfold.errors import BadStructure
from loopfold.fv.library import (
    CHAINS,
    FRAME_ERROR,
    FrameworkLibrary,
    domain_positions,
    framework_positions,
    rama_reference,
)
from loopfold.fv.stretches import flank, in_framework, residue_label, span_text, split_run, true_runs, why_rebuilt
from loopfold.numbering.anarci import NumberedDomain
from loopfold.structure.closure import close_windows
from loopfold.structure.extend import extend_after, extend_before
from loopfold.structure.geometry import dihedral
from loopfold.structure.planar import omega_targets, planarize
from loopfold.structure.relieve import contacts, ideal_cb, relieve
from loopfold.structure.superpose import kabsch
from loopfold.structure.validate import GeometryCheck, peptide_omegas


@dataclass(frozen=True)
class FvChain:
    """One chain of a modelled Fv (its numbered variable domain only).

    Attributes:
        chain_id: ``H`` or ``L``.
        sequence: one-letter codes of the residues written.
        residue_ids: IMGT number with insertion code per residue (``"111A"``).
        coords: ``[N, 4, 3]`` N, CA, C, O (Å).
        cb: ``[N, 3]`` CB (NaN for glycine).
        error_frame: ``[N]`` predicted backbone error (Å) once the Fv's framework is superposed (the
            B-factors; a loop's own ``error`` is for the loop superposed on itself, a smaller number).
        region: per residue ``FR`` or the CDR it belongs to.
        index: ``[N]`` each residue's 0-based index in the input chain sequence.
        same: ``[N]`` the residue is its framework template's residue (False in loops and built stretches).
    """

    chain_id: str
    sequence: str
    residue_ids: tuple[str, ...]
    coords: np.ndarray
    cb: np.ndarray
    error_frame: np.ndarray
    region: tuple[str, ...]
    index: np.ndarray
    same: np.ndarray


@dataclass(frozen=True)
class FvModel:
    """A modelled Fv: its chains, the framework templates used, clashes and notes."""

    chains: tuple[FvChain, ...]
    templates: dict[str, str]
    identity: dict[str, float]
    clashes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: the whole model's geometry check (:mod:`loopfold.fv.checks`), once made
    geometry: GeometryCheck | None = None


@dataclass(frozen=True)
class Frame:
    """The framework of one antibody: per chain type the ``[len(sequence), 4, 3]`` coordinates of
    its framework residues (NaN elsewhere), whether each residue equals its template's, the template
    ids and identities, and notes."""

    coords: dict[str, np.ndarray]
    same: dict[str, np.ndarray]
    domains: dict[str, NumberedDomain]
    sequences: dict[str, str]
    templates: dict[str, str]
    identity: dict[str, float]
    notes: tuple[str, ...]


#: Identity given up for each query framework position a template lacks (filled from another entry).
MISS_PENALTY = 0.02
#: Orientation entries tried (best first) until the VH and VL frameworks do not overlap.
ORIENT_TRIALS = 8
CONTACT = 2.3  # Å: the closest VH-VL heavy-atom pair an orientation may leave
#: The VL is placed by the mean orientation of this many best entries, chosen on 106 validation
#: structures with their related entries left out (Fv framework RMSD 0.932 Å with 1, 0.893 with 3,
#: 0.867 with 5, 0.855 with 10, 0.851 with 20: 10 and 20 are a tie within 0.004 Å, no spread was
#: measured; 10 kept; ``bench/tune_orientation.py --n 150``).
ORIENT_AVERAGE = 10


class FrameworkBuilder:
    """Chooses and places framework templates from a library."""

    def __init__(self, library: FrameworkLibrary, orient_average: int = ORIENT_AVERAGE) -> None:
        self.library = library
        self.orient_average = orient_average
        self.present = library.present()  # [T, 2, 128]
        self.fw = np.stack([framework_positions(c) for c in CHAINS])  # [2, 128]
        res = library.resolution
        self.res_penalty = np.where(np.isfinite(res), res, 9.0) * 1e-4
        self.error_coef = tuple(map(float, library.error_coef)) if library.error_coef is not None else FRAME_ERROR
        self.rama = rama_reference(library)  # Ramachandran outliers of the geometry check

    def _scores(self, c: int, at: np.ndarray, letters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per entry: the ranking score and the framework identity of chain ``c`` to the query."""
        want = self.fw[c] & (at >= 0)
        lo, hi = np.nonzero(want)[0][[0, -1]]
        inside = np.zeros_like(want)
        inside[lo : hi + 1] = True
        have = self.present[:, c]
        miss = (want & ~have).sum(1)
        extra = (inside & self.fw[c] & ~want & have).sum(1)
        ident = ((self.library.residues[:, c] == letters) & want).sum(1) / max(int(want.sum()), 1)
        score = ident - MISS_PENALTY * miss - 1000.0 * extra - self.res_penalty
        return np.where(have.sum(1) >= want.sum() // 2, score, -np.inf), ident  # entries with the chain

    def frame(self, name: str, chains: dict[str, tuple[str, NumberedDomain]], exclude: frozenset[str] = frozenset(),
              nanobody: bool | None = None) -> Frame:  # fmt: skip
        """Framework coordinates for an antibody's chains (``chain type -> (sequence, domain)``);
        entries named in ``exclude`` are not used (benchmarks leave a structure's own entry out).
        ``nanobody`` (a VH alone): take the VH from the library's nanobody entries (True) or from
        the others (False), when the library marks them and has such an entry.

        Raises:
            BadStructure: no library entry covers a chain's domain.
        """
        lib, scores, ats, idents, inserts = self.library, {}, {}, {}, {}
        kind = None
        if nanobody is not None and lib.nanobody is not None and set(chains) == {"H"}:
            kind = lib.nanobody == nanobody
        for ct, (seq, dom) in chains.items():
            c = CHAINS.index(ct)
            at, inserted = domain_positions(dom)
            inserts[ct] = [int(i) for i in inserted if in_framework(dom, i, self.fw[c])]
            letters = np.zeros(len(at), dtype=np.uint8)
            letters[at >= 0] = np.frombuffer("".join(seq[i] for i in at[at >= 0]).encode("ascii"), dtype=np.uint8)
            scores[ct], idents[ct] = self._scores(c, at, letters)
            if exclude:
                scores[ct] = np.where(np.isin(lib.ids, list(exclude)), -np.inf, scores[ct])
            if kind is not None and np.isfinite(scores[ct][kind]).any():
                scores[ct] = np.where(kind, scores[ct], -np.inf)
            if not np.isfinite(scores[ct]).any():
                raise BadStructure(f"{name} chain {ct}: no framework template covers this domain")
            ats[ct] = at
        bases: dict[str, np.ndarray] = {}
        if len(chains) == 2:
            both = self.present[:, 0].any(1) & self.present[:, 1].any(1) & np.isfinite(scores["H"])
            both &= np.isfinite(scores["L"])
            rank = np.argsort(-np.where(both, idents["H"] + idents["L"] - self.res_penalty, -np.inf), kind="stable")
            chosen = {ct: int(np.argmax(scores[ct])) for ct in chains}
            # the first of the best-scoring entries whose VH-VL orientation leaves the two chosen
            # frameworks apart (templates from three structures can overlap at the interface)
            orient = next((int(t) for t in rank[:ORIENT_TRIALS] if self._interface_ok(chosen, int(t))), int(rank[0]))
            if self.orient_average > 1:  # the VL placed by the mean of the best entries' orientations
                pool = [int(t) for t in rank[: self.orient_average] if np.isfinite(both[t]) and both[t]]
                vl = self._average_vl(chosen, orient, pool)
                if vl is not None:
                    bases["L"] = vl
        else:
            orient = int(np.argmax(next(iter(scores.values()))))
        notes: list[str]
        coords, same, templates, identity, notes = {}, {}, {"orientation": str(lib.ids[orient])}, {}, []
        domains = {ct: d for ct, (_, d) in chains.items()}
        for ct, (seq, _) in chains.items():
            order = np.argsort(-scores[ct], kind="stable")
            order = order[np.isfinite(scores[ct][order])]
            best = int(order[0])
            templates[ct], identity[ct] = str(lib.ids[best]), round(float(idents[ct][best]), 3)
            coords[ct], same[ct] = self._chain(name, ct, seq, ats[ct], inserts[ct], order, orient, notes,
                                               bases.get(ct), domains[ct])  # fmt: skip
            before = coords[ct]
            coords[ct], fixed = planarize(before, seq)  # a template's cis bond where the query has no Pro
            if fixed:  # every residue the correction moved is no longer its template's
                same[ct][np.nan_to_num(np.abs(coords[ct] - before), nan=0.0).max((1, 2)) > 1e-6] = False
                where = ", ".join(residue_label(domains[ct], seq, b + 1) for b in fixed)
                notes.append(f"chain {ct}: peptide bond{'s' if len(fixed) > 1 else ''} before {where} made planar")
        return Frame(coords, same, domains, {ct: s for ct, (s, _) in chains.items()}, templates, identity,
                     tuple(notes))  # fmt: skip

    def _chain(self, name: str, ct: str, seq: str, at: np.ndarray, inserts: list[int], order: np.ndarray,
               orient: int, notes: list[str], base: np.ndarray | None = None, dom: NumberedDomain | None = None
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """One chain's framework coordinates (``[len(seq), 4, 3]``) and whether each residue equals its
        template's; stretches the chosen template cannot give are filled (see the module docstring)."""
        lib, c, best = self.library, CHAINS.index(ct), int(order[0])
        base = self._placed(best, orient, c) if base is None else base
        need = np.nonzero(self.fw[c] & (at >= 0))[0]
        pos = np.concatenate([need, np.full(len(inserts), -1)])
        idx = np.concatenate([at[need], np.array(inserts, dtype=np.int64)])
        sort = np.argsort(idx, kind="stable")
        pos, idx = pos[sort], idx[sort]  # the chain's framework residues in sequence order
        lacks = (pos < 0) | ~self.present[best, c, np.maximum(pos, 0)]
        # a template's cis or twisted bond where the query has no proline: taken from another template
        bent = self._bad_bonds(base, pos, idx, seq, self.present[best, c]) & ~lacks
        lacks |= bent
        for k in range(len(pos) - 1):  # a position the template has and the query lacks: rebuild both sides
            p, q = pos[k], pos[k + 1]
            if p >= 0 and q > p + 1 and (self.fw[c, p + 1 : q] & self.present[best, c, p + 1 : q]).any():
                lacks[k] = lacks[k + 1] = True
        out = np.full((len(seq), 4, 3), np.nan)
        out[idx[~lacks]] = base[pos[~lacks]]
        same = np.zeros(len(seq), dtype=bool)
        same[idx[~lacks]] = lib.residues[best, c, pos[~lacks]] == np.frombuffer(
            "".join(seq[i] for i in idx[~lacks]).encode("ascii"), dtype=np.uint8)  # fmt: skip
        if lacks.all():
            raise BadStructure(f"{name} chain {ct}: no framework template covers this domain")
        seg = np.cumsum(np.r_[0, np.diff(idx) != 1])  # stretches of consecutive residues (CDRs between)
        runs = [(int(k0), int(k1)) for r0, r1 in true_runs(lacks) for k0, k1 in split_run(r0, r1, seg)]
        for r0, r1 in runs:
            run = idx[r0 : r1 + 1]
            lo, hi = np.nonzero(seg == seg[r0])[0][[0, -1]]
            if r0 == lo and r1 == hi:
                raise BadStructure(f"{name} chain {ct}: no framework template has {span_text(seq, run, dom)}")
            if r0 == lo or r1 == hi:  # the end of a stretch: extended as a strand, ideal geometry
                out[run] = extend_before(out[idx[r1 + 1]], len(run)) if r0 == lo else extend_after(
                    out[idx[r0 - 1]], len(run))  # fmt: skip
                why = why_rebuilt(bent[r0 : r1 + 1], str(lib.ids[best]))
                notes.append(f"chain {ct}: {span_text(seq, run, dom)} built as a strand ({why})")
                continue
            res = None
            for widen in range(4):  # a stretch that does not close gets a residue more each side to move
                b0, b1 = max(r0 - widen, lo + 1), min(r1 + widen, hi - 1)
                gn = [k for k in flank(lacks, b0 - 1, -1) if k >= lo]
                gc = [k for k in flank(lacks, b1 + 1, 1) if k <= hi]
                if not gn or not gc:  # a neighbouring stretch is being rebuilt too: stop widening
                    break
                a0, a1, fn, fc = b0, b1, gn, gc
                window, source = self._bridge_template(c, order, pos, fn, fc, a0, a1, best,
                                                       "".join(seq[i] for i in idx[fn[0] : fc[-1] + 1]))
                if window is None:  # nothing to copy: a strand from the N-side flank, closed onto the C-side
                    window = np.concatenate([out[idx[fn]], extend_after(out[idx[fn[-1]]], a1 - a0 + 1 + len(fc))])
                    source = "built as a strand"
                (res,) = close_windows([window], [out[idx[fn]]], [out[idx[fc]]])
                if res.anchor_rmsd < 0.1:
                    break
            if res is None:
                raise BadStructure(f"{name} chain {ct}: {span_text(seq, run, dom)} has no template residue beside "
                                   f"it to build it from")  # fmt: skip
            span = np.arange(idx[fn[0]], idx[fc[-1]] + 1)
            gly = np.array([seq[i] == "G" for i in idx[a0 : a1 + 1]])
            others = np.delete(out, span, axis=0)
            obstacles = np.concatenate([others, ideal_cb(others)[:, None]], 1).reshape(-1, 3)
            obstacles = obstacles[np.isfinite(obstacles).all(1)]
            if contacts(res.coords, len(fn), a1 - a0 + 1, obstacles, gly, within=CONTACT):  # kept off the rest
                moved, _ = relieve(res.coords, len(fn), a1 - a0 + 1, obstacles, gly)
                (again,) = close_windows([moved], [moved[: len(fn)]], [moved[len(fn) + a1 - a0 + 1 :]])
                if again.anchor_rmsd <= max(res.anchor_rmsd, 0.05):  # never unclosed by the relief
                    res = again
            lacks[a0 : a1 + 1] = True
            out[idx[a0 : a1 + 1]] = res.coords[len(fn) : len(fn) + a1 - a0 + 1]
            same[idx[a0 : a1 + 1]] = False
            closed = "closed" if res.anchor_rmsd < 0.1 else f"NOT closed (anchor RMSD {res.anchor_rmsd:.2f} A)"
            notes.append(f"chain {ct}: {span_text(seq, idx[a0 : a1 + 1], dom)} {source}, {closed} "
                         f"({why_rebuilt(bent[r0 : r1 + 1], lib.ids[best])})")
        return out, same

    @staticmethod
    def _bad_bonds(xyz: np.ndarray, pos: np.ndarray, idx: np.ndarray, seq: str, have: np.ndarray) -> np.ndarray:
        """``[len(pos)]`` residues on either side of a peptide bond the template ``xyz`` ([128, 4, 3]; ``have``
        its residues) would give non-planar for the query: cis or twisted where the query's next residue
        is not a proline, twisted before one (:func:`loopfold.structure.planar.omega_targets`). A bond
        joins residues next to each other in the query and in the template (IMGT positions between
        them absent from both)."""
        out = np.zeros(len(pos), dtype=bool)
        between = np.array([0 <= p < q and not have[p + 1 : q].any()
                            for p, q in zip(pos[:-1], pos[1:], strict=True)], dtype=bool)  # fmt: skip
        pair = (pos[:-1] >= 0) & (pos[1:] > pos[:-1]) & between & (idx[1:] == idx[:-1] + 1)
        k = np.nonzero(pair)[0]
        if not len(k):
            return out
        a, b = xyz[pos[k]], xyz[pos[k + 1]]
        with np.errstate(invalid="ignore"):
            om = dihedral(a[:, 1], a[:, 2], b[:, 0], b[:, 1])
        bad = np.isfinite(omega_targets(om, "".join(seq[i] for i in idx[k + 1])))
        out[k[bad]] = out[k[bad] + 1] = True
        return out

    def _bridge_template(self, c: int, order: np.ndarray, pos: np.ndarray, fn: list[int], fc: list[int], r0: int,
                         r1: int, best: int, letters: str = "") -> tuple[np.ndarray | None, str]:  # fmt: skip
        """The next entry's window (flanks and run) for an inner run with known positions, or None."""
        span = pos[fn[0] : fc[-1] + 1]
        if (span < 0).any() or fn[-1] + 1 != r0 or fc[0] != r1 + 1:
            return None, ""
        inside = np.zeros(self.fw.shape[1], dtype=bool)
        inside[span[0] : span[-1] + 1] = True
        gap = inside & ~np.isin(np.arange(len(inside)), span)  # positions the query lacks there
        for t in order[:200]:
            if t != best and self.present[t, c, span].all() and not self.present[t, c, gap].any():
                xyz = self.library.coords[t, c, span].astype(np.float64)
                if letters and np.isfinite(omega_targets(peptide_omegas(xyz), letters[1:])).any():
                    continue  # its own peptide bonds would be wrong for the query
                return xyz, f"from {self.library.ids[t]}"
        return None, ""

    def _interface_ok(self, chosen: dict[str, int], orient: int) -> bool:
        """Whether the chosen VH and VL templates, placed by ``orient``, keep every heavy atom pair
        across the interface (N, CA, C, O, ideal CB) at least ``CONTACT`` apart."""
        h, lt = chosen["H"], chosen["L"]
        vh = self._placed(h, orient, 0)[self.present[h, 0]]
        return self._apart(vh, self._placed(lt, orient, 1)[self.present[lt, 1]], h, lt)

    def _average_vl(self, chosen: dict[str, int], orient: int, pool: list[int]) -> np.ndarray | None:
        """The chosen VL template placed by the mean of the VH-VL orientations of ``pool`` (each entry's
        VH superposed on the placed VH template, the VL template on that entry's VL, the copies
        averaged and the template fitted rigidly to the mean), or None when it would overlap the VH."""
        lib, h, lt = self.library, chosen["H"], chosen["L"]
        vh = self._placed(h, orient, 0)
        vl = lib.coords[lt, 1].astype(np.float64)
        copies = []
        for t in pool:
            common = self.present[t, 0] & self.present[h, 0] & self.fw[0]
            rot, tr = kabsch(lib.coords[t, 0][common].reshape(-1, 3).astype(np.float64), vh[common].reshape(-1, 3))
            target = lib.coords[t, 1].astype(np.float64) @ rot.T + tr
            shared = self.present[t, 1] & self.present[lt, 1] & self.fw[1]
            rot, tr = kabsch(vl[shared].reshape(-1, 3), target[shared].reshape(-1, 3))
            copies.append(vl @ rot.T + tr)
        if not copies:
            return None
        mean = np.mean(copies, axis=0)
        have = self.present[lt, 1]
        rot, tr = kabsch(vl[have].reshape(-1, 3), mean[have].reshape(-1, 3))
        placed = vl @ rot.T + tr
        return placed if self._apart(vh[self.present[h, 0]], placed[have], h, lt) else None

    def _apart(self, vh: np.ndarray, vl: np.ndarray, h: int, lt: int) -> bool:
        """Whether placed VH and VL backbones (with ideal CB) keep every cross pair ``CONTACT`` apart."""
        atoms = []
        for xyz, t, c in ((vh, h, 0), (vl, lt, 1)):
            cb = ideal_cb(xyz, self.library.residues[t, c, self.present[t, c]] == ord("G"))
            a = np.concatenate([xyz, cb[:, None]], 1).reshape(-1, 3)
            atoms.append(a[np.isfinite(a).all(1)])
        x, y = atoms
        d2 = (x**2).sum(1)[:, None] + (y**2).sum(1)[None] - 2.0 * x @ y.T
        return bool(d2.min() >= CONTACT**2)

    def _placed(self, t: int, orient: int, c: int) -> np.ndarray:
        """Entry ``t``'s chain ``c`` superposed on the orientation entry's chain ``c`` ([128, 4, 3])."""
        xyz = self.library.coords[t, c].astype(np.float64)
        if t == orient:
            return xyz
        ref = self.library.coords[orient, c].astype(np.float64)
        common = self.present[t, c] & self.present[orient, c] & self.fw[c]
        rot, tr = kabsch(xyz[common].reshape(-1, 3), ref[common].reshape(-1, 3))
        return xyz @ rot.T + tr
