"""A whole Fv from numbered chains and predicted loops: framework templates, VH-VL orientation, grafting.

Template choice (the approach of ABodyBuilder's first version and RosettaAntibody):

* each chain's framework comes from the library entry whose framework positions
  match the query's best: first every query framework position present with all
  backbone atoms and no extra position inside the query's span (so the chain is
  continuous), then the highest sequence identity over the framework positions,
  then the better resolution;
* the VH-VL orientation comes from the entry with the highest summed VH and VL
  framework identity that has both chains; each chain's template is superposed
  on that entry's chain (backbone of the framework positions both share);
* a query framework position that the chosen template lacks is taken from the
  next-best entry that has it (superposed the same way) and noted.

The predicted loop windows are then placed on their stems and closed
(:mod:`loopfold.structure.closure`), CB atoms are built from N, CA, C with ideal
geometry, and every residue gets a predicted error in Å (:mod:`loopfold.fv.frame_error`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from loopfold.errors import BadStructure
from loopfold.fv.library import CHAINS, FrameworkLibrary, domain_positions, framework_positions
from loopfold.numbering.anarci import NumberedDomain
from loopfold.structure.superpose import kabsch


@dataclass(frozen=True)
class FvChain:
    """One chain of a modelled Fv (its numbered variable domain only).

    Attributes:
        chain_id: ``H`` or ``L``.
        sequence: one-letter codes of the residues written.
        residue_ids: IMGT number with insertion code per residue (``"111A"``).
        coords: ``[N, 4, 3]`` N, CA, C, O (Å).
        cb: ``[N, 3]`` CB (NaN for glycine).
        error: ``[N]`` predicted backbone error (Å).
        region: per residue ``FR`` or the CDR it belongs to.
        index: ``[N]`` each residue's 0-based index in the input chain sequence.
    """

    chain_id: str
    sequence: str
    residue_ids: tuple[str, ...]
    coords: np.ndarray
    cb: np.ndarray
    error: np.ndarray
    region: tuple[str, ...]
    index: np.ndarray


@dataclass(frozen=True)
class FvModel:
    """A modelled Fv: its chains, the framework templates used, clashes and notes."""

    chains: tuple[FvChain, ...]
    templates: dict[str, str]
    identity: dict[str, float]
    clashes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


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


class FrameworkBuilder:
    """Chooses and places framework templates from a library."""

    def __init__(self, library: FrameworkLibrary) -> None:
        self.library = library
        self.present = library.present()  # [T, 2, 128]
        self.fw = np.stack([framework_positions(c) for c in CHAINS])  # [2, 128]
        res = library.resolution
        self.res_penalty = np.where(np.isfinite(res), res, 9.0) * 1e-4

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
        return ident - 1000.0 * (miss + extra) - self.res_penalty, ident

    def frame(self, name: str, chains: dict[str, tuple[str, NumberedDomain]], exclude: frozenset[str] = frozenset()
              ) -> Frame:  # fmt: skip
        """Framework coordinates for an antibody's chains (``chain type -> (sequence, domain)``);
        entries named in ``exclude`` are not used (benchmarks leave a structure's own entry out).

        Raises:
            BadStructure: a framework residue numbered with an insertion code (no template holds
                it), or a framework position no library entry has.
        """
        lib, scores, ats, idents = self.library, {}, {}, {}
        for ct, (seq, dom) in chains.items():
            c = CHAINS.index(ct)
            at, inserted = domain_positions(dom)
            fw_ins = [i for i in inserted if _in_framework(dom, i, self.fw[c])]
            if fw_ins:
                num = dict(zip(dom.indices, dom.positions, strict=True))[fw_ins[0]]
                raise BadStructure(f"{name} chain {ct}: framework residue {seq[fw_ins[0]]} numbered IMGT "
                                   f"{num[0]}{num[1]} (an insertion): no framework template holds it")  # fmt: skip
            letters = np.zeros(len(at), dtype=np.uint8)
            letters[at >= 0] = np.frombuffer("".join(seq[i] for i in at[at >= 0]).encode("ascii"), dtype=np.uint8)
            scores[ct], idents[ct] = self._scores(c, at, letters)
            if exclude:
                scores[ct] = np.where(np.isin(lib.ids, list(exclude)), -np.inf, scores[ct])
            ats[ct] = at
        if len(chains) == 2:
            both = self.present[:, 0].any(1) & self.present[:, 1].any(1)
            both &= np.isfinite(scores["H"])
            orient = int(np.argmax(np.where(both, idents["H"] + idents["L"] - self.res_penalty, -np.inf)))
        else:
            orient = int(np.argmax(next(iter(scores.values()))))
        coords, same, templates, identity, notes = {}, {}, {"orientation": str(lib.ids[orient])}, {}, []
        for ct, (seq, _) in chains.items():
            c = CHAINS.index(ct)
            order = np.argsort(-scores[ct], kind="stable")
            best = int(order[0])
            templates[ct], identity[ct] = str(lib.ids[best]), round(float(idents[ct][best]), 3)
            at = ats[ct]
            need = np.nonzero(self.fw[c] & (at >= 0))[0]
            out = np.full((len(seq), 4, 3), np.nan)
            same[ct] = np.zeros(len(seq), dtype=bool)
            placed: dict[int, np.ndarray] = {}
            for pos in need:
                t = best if self.present[best, c, pos] else next(
                    (int(t) for t in order if self.present[t, c, pos] and np.isfinite(scores[ct][t])), None)
                if t is None:
                    raise BadStructure(f"{name} chain {ct}: no framework template has IMGT position {pos + 1}")
                if t not in placed:
                    placed[t] = self._placed(t, orient, c)
                    if t != best:
                        notes.append(f"chain {ct}: IMGT {pos + 1} from {lib.ids[t]} (absent from {lib.ids[best]})")
                out[at[pos]] = placed[t][pos]
                same[ct][at[pos]] = lib.residues[t, c, pos] == ord(seq[at[pos]])
            coords[ct] = out
        return Frame(coords, same, {ct: d for ct, (_, d) in chains.items()}, {ct: s for ct, (s, _) in chains.items()},
                     templates, identity, tuple(notes))  # fmt: skip

    def _placed(self, t: int, orient: int, c: int) -> np.ndarray:
        """Entry ``t``'s chain ``c`` superposed on the orientation entry's chain ``c`` ([128, 4, 3])."""
        xyz = self.library.coords[t, c].astype(np.float64)
        if t == orient:
            return xyz
        ref = self.library.coords[orient, c].astype(np.float64)
        common = self.present[t, c] & self.present[orient, c] & self.fw[c]
        rot, tr = kabsch(xyz[common].reshape(-1, 3), ref[common].reshape(-1, 3))
        return xyz @ rot.T + tr


def _in_framework(dom: NumberedDomain, index: int, fw: np.ndarray) -> bool:
    """Whether an inserted residue sits between two framework positions (not inside a CDR)."""
    k = dom.indices.index(index)
    num = dom.positions[k][0]
    return 1 <= num <= len(fw) and bool(fw[num - 1]) and (num + 1 > len(fw) or bool(fw[num]))


def ideal_cb(coords: np.ndarray) -> np.ndarray:
    """``[..., 3]`` CB from N, CA, C (``[..., 4, 3]``) with ideal geometry (as in trRosetta/AlphaFold)."""
    n, ca, c = coords[..., 0, :], coords[..., 1, :], coords[..., 2, :]
    b, cc = ca - n, c - ca
    a = np.cross(b, cc)
    return -0.58273431 * a + 0.56802827 * b - 0.54067466 * cc + ca
