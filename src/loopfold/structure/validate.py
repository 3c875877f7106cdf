"""One geometry check of a whole model: chirality, peptide bonds, bond geometry, gaps, clashes, Ramachandran.

Every written model (framework included) is checked the same way, from its atoms:

* **chirality**: the CA chiral volume ``(N - CA) . ((C - CA) x (CB - CA))`` is about +2.5 Å³
  for an L-amino acid; a residue with a CB and a negative volume is a D-residue;
* **omega** of every peptide bond (CA-C-N-CA): cis (|omega| < 30°) is expected only before a
  proline, anything between 30° and 150° is twisted;
* **bond lengths and angles** of the backbone against Engh & Huber, and **chain gaps** (a C-N of
  consecutive residues over ``CHAIN_BREAK_DISTANCE``);
* **clashes**: heavy-atom pairs closer than ``CLASH_DISTANCE`` anywhere (not in the same or
  neighbouring residues of a chain; a disulfide's SG-SG is bonded);
* **Ramachandran outliers**: phi/psi in the rarest 0.05% of a reference table
  (:class:`RamaTable`, fitted on crystal backbones: the framework library).

The tolerances are the issue's or gross-error levels; ``bench/model_geometry.py`` measures crystal
structures and written models against them (``docs/benchmarks.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from loopfold.constants import (
    ANGLE_C_N_CA,
    ANGLE_CA_C_N,
    ANGLE_CA_C_O,
    ANGLE_N_CA_C,
    BOND_C_N,
    BOND_C_O,
    BOND_CA_C,
    BOND_N_CA,
    CHAIN_BREAK_DISTANCE,
)
from loopfold.structure.geometry import angle, dihedral

#: |omega| below this is a cis peptide bond, at or above ``TRANS_MIN`` trans; between them twisted.
CIS_MAX = 30.0
TRANS_MIN = 150.0
#: Heavy atoms closer than this (Å) that are not bonded neighbours clash.
CLASH_DISTANCE = 2.2
#: The closest non-bonded pair is looked for among pairs closer than this (Å).
NEAR = 3.0
#: A bond length this far (Å) from ideal, or an angle this far (degrees), is an outlier.
BOND_TOLERANCE = 0.1
ANGLE_TOLERANCE = 20.0
#: Ramachandran bins (degrees) and the share of reference residues the outlier bins may hold.
RAMA_BIN = 10
RAMA_OUTLIER_SHARE = 0.0005
#: Names listed per kind of problem in the JSON (counts are always complete).
MAX_LISTED = 10


@dataclass(frozen=True)
class ChainAtoms:
    """The atoms of one chain to check.

    Attributes:
        chain_id: the chain's id in the file.
        letters: one-letter code per residue.
        labels: residue number (with insertion code) per residue, as written in the file.
        backbone: ``[N, 4, 3]`` N, CA, C, O (NaN where missing).
        cb: ``[N, 3]`` CB (NaN for glycine or where missing).
        bonded: ``[N - 1]`` residue k and k + 1 should be joined by a peptide bond.
        extra: ``[M, 3]`` other heavy atoms (side chains), ``extra_residue`` ``[M]`` their residue
            and ``extra_sg`` ``[M]`` whether each is a cysteine SG.
    """

    chain_id: str
    letters: str
    labels: tuple[str, ...]
    backbone: np.ndarray
    cb: np.ndarray
    bonded: np.ndarray
    extra: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    extra_residue: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    extra_sg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def name(self, k: int | np.integer) -> str:
        """Residue ``k`` as text: chain, one-letter code and number (``H F104``)."""
        return f"{self.chain_id} {self.letters[k]}{self.labels[k]}"


@dataclass(frozen=True)
class RamaTable:
    """Ramachandran outlier bins (``[3, B, B]`` bool: general, glycine, proline) from reference phi/psi."""

    outlier: np.ndarray

    @classmethod
    def fit(cls, phi_psi: np.ndarray, letters: np.ndarray) -> RamaTable:
        """Outlier bins from reference residues (``[N, 2]`` degrees, ``[N]`` one-letter codes): per class,
        the least populated bins that together hold at most ``RAMA_OUTLIER_SHARE`` of its residues
        (counts smoothed over the 8 neighbouring bins)."""
        nb = 360 // RAMA_BIN
        out = np.zeros((3, nb, nb), dtype=bool)
        ok = np.isfinite(phi_psi).all(1)
        for c, mask in enumerate(_classes(letters)):
            sel = phi_psi[ok & mask]
            if not len(sel):  # no reference residue of the class: nothing called an outlier
                continue
            counts = np.zeros((nb, nb))
            np.add.at(counts, tuple(_bins(sel).T), 1.0)
            smooth = sum(np.roll(np.roll(counts, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9.0
            order = np.argsort(smooth, axis=None, kind="stable")
            share = np.cumsum(counts.reshape(-1)[order]) / max(len(sel), 1)
            out[c].reshape(-1)[order[share <= RAMA_OUTLIER_SHARE]] = True
        return cls(out)

    def outliers(self, phi_psi: np.ndarray, letters: np.ndarray) -> np.ndarray:
        """``[N]`` whether each residue's phi/psi is an outlier (False where undefined)."""
        out = np.zeros(len(phi_psi), dtype=bool)
        ok = np.isfinite(phi_psi).all(1)
        b = _bins(np.where(ok[:, None], phi_psi, 0.0))
        for c, mask in enumerate(_classes(letters)):
            out |= ok & mask & self.outlier[c, b[:, 0], b[:, 1]]
        return out


def _classes(letters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    letters = np.asarray(letters)
    gly, pro = letters == "G", letters == "P"
    return ~(gly | pro), gly, pro


def _bins(phi_psi: np.ndarray) -> np.ndarray:
    return (np.floor((np.asarray(phi_psi) + 180.0) / RAMA_BIN).astype(np.int64)) % (360 // RAMA_BIN)


@dataclass(frozen=True)
class GeometryCheck:
    """What the check found in one model (residues named as in the file)."""

    residues: int
    d_residues: tuple[str, ...]
    cis_pro: tuple[str, ...]
    cis_nonpro: tuple[str, ...]
    twisted: tuple[str, ...]
    gaps: tuple[str, ...]
    bond_outliers: tuple[str, ...]
    angle_outliers: tuple[str, ...]
    clashes: tuple[str, ...]
    closest_pair: float
    rama_outliers: tuple[str, ...] | None = None

    def problems(self) -> list[str]:
        """Each kind of defect found, as text (empty when the model passes)."""
        out = []
        for what, names in (("D-residue", self.d_residues), ("cis peptide before a non-proline", self.cis_nonpro),
                            ("twisted peptide bond", self.twisted), ("chain gap", self.gaps),
                            ("heavy-atom pair under 2.2 A", self.clashes), ("bond length outlier", self.bond_outliers),
                            ("bond angle outlier", self.angle_outliers)):  # fmt: skip
            if names:
                where = list(dict.fromkeys(names))  # residue pairs once however many atom pairs
                shown = ", ".join(where[:3]) + (", ..." if len(where) > 3 else "")
                plural = what.replace("pair ", "pairs ") if "pair " in what else what + "s"
                out.append(f"{len(names)} {what if len(names) == 1 else plural} ({shown})")
        return out

    def only(self, residues: set[tuple[str, str]]) -> GeometryCheck:
        """The defects that involve one of ``residues`` (chain, residue number with insertion code)."""

        def hit(name: str) -> bool:
            return any(r in residues for r in _residues_named(name))

        keep = {k: tuple(n for n in getattr(self, k) if hit(n)) for k in (
            "d_residues", "cis_pro", "cis_nonpro", "twisted", "gaps", "bond_outliers", "angle_outliers", "clashes")}
        rama = None if self.rama_outliers is None else tuple(n for n in self.rama_outliers if hit(n))
        # the closest pair is the whole model's: not said of a part (``new_loop_contacts`` gives the loops')
        return GeometryCheck(len(residues), **keep, closest_pair=float("inf"), rama_outliers=rama)

    @property
    def passed(self) -> bool:
        """No D-residue, misplaced cis or twisted bond, gap, clash, bond or angle outlier."""
        return not self.problems()

    def json(self) -> dict:
        """The JSON ``geometry`` entry: counts, the first names of each kind, and whether it passed."""
        out: dict = {"passed": self.passed, "residues": self.residues}
        for key, names in (("d_residues", self.d_residues), ("cis_nonpro", self.cis_nonpro),
                           ("twisted_omega", self.twisted), ("chain_gaps", self.gaps), ("clashes", self.clashes),
                           ("bond_outliers", self.bond_outliers), ("angle_outliers", self.angle_outliers),
                           ("cis_pro", self.cis_pro), ("ramachandran_outliers", self.rama_outliers)):  # fmt: skip
            if names is None:
                continue
            out[key] = len(names)
            if names:
                out[f"{key}_at"] = list(dict.fromkeys(names))[:MAX_LISTED]
        out["closest_pair"] = round(self.closest_pair, 2) if self.closest_pair < NEAR else None  # none that near
        out["problems"] = self.problems()
        return out


def _residues_named(name: str) -> list[tuple[str, str]]:
    """(chain, number) of every residue a defect's name mentions: ``H F104``, ``H S22-C23 10.8 A``,
    ``H S83/L Y36``, ``H G83G C-N``."""
    out = []
    for part in name.split("/"):
        chain, _, rest = part.partition(" ")  # a blank chain id leaves the name starting with a space
        token = rest.split(" ", 1)[0]
        out += [(chain, num) for num in re.findall(r"[A-Z](-?\d+[A-Z]?)", token)]
    return out


def peptide_omegas(backbone: np.ndarray) -> np.ndarray:
    """``[N - 1]`` omega (CA-C-N-CA, degrees) of each bond k -> k + 1."""
    x = backbone
    return dihedral(x[:-1, 1], x[:-1, 2], x[1:, 0], x[1:, 1])


def phi_psi(backbone: np.ndarray, bonded: np.ndarray) -> np.ndarray:
    """``[N, 2]`` phi and psi (degrees), NaN where the neighbour is not bonded."""
    x = backbone
    out = np.full((len(x), 2), np.nan)
    if len(x) > 1:
        out[1:, 0] = np.where(bonded, dihedral(x[:-1, 2], x[1:, 0], x[1:, 1], x[1:, 2]), np.nan)
        out[:-1, 1] = np.where(bonded, dihedral(x[:-1, 0], x[:-1, 1], x[:-1, 2], x[1:, 0]), np.nan)
    return out


def chiral_volumes(backbone: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """``[N]`` CA chiral volume (Å³; positive for L), NaN without a CB."""
    n, ca, c = backbone[:, 0], backbone[:, 1], backbone[:, 2]
    return np.einsum("ij,ij->i", n - ca, np.cross(c - ca, cb - ca))


def check(chains: list[ChainAtoms], rama: RamaTable | None = None) -> GeometryCheck:
    """Check a whole model (see the module docstring)."""
    d_res, cis_pro, cis_non, twisted, gaps, bonds, angles, rama_out = cast(Iterator[list[str]], ([] for _ in range(8)))
    with np.errstate(invalid="ignore"):
        for ch in chains:
            x, bonded = ch.backbone, np.asarray(ch.bonded, dtype=bool)
            vol = chiral_volumes(x, ch.cb)
            d_res += [ch.name(k) for k in np.nonzero(vol < 0)[0]]
            for (i, j), ideal in zip(((0, 1), (1, 2), (2, 3)), (BOND_N_CA, BOND_CA_C, BOND_C_O), strict=True):
                dev = np.abs(np.linalg.norm(x[:, i] - x[:, j], axis=-1) - ideal)
                bonds += [ch.name(k) for k in np.nonzero(dev > BOND_TOLERANCE)[0]]
            tau = np.abs(angle(x[:, 0], x[:, 1], x[:, 2]) - ANGLE_N_CA_C)
            tau = np.maximum(tau, np.abs(angle(x[:, 1], x[:, 2], x[:, 3]) - ANGLE_CA_C_O))
            angles += [ch.name(k) for k in np.nonzero(tau > ANGLE_TOLERANCE)[0]]
            if len(x) < 2:
                continue
            cn = np.linalg.norm(x[1:, 0] - x[:-1, 2], axis=-1)
            for k in np.nonzero(bonded & (cn > CHAIN_BREAK_DISTANCE))[0]:
                gaps.append(f"{ch.name(k)}-{ch.letters[k + 1]}{ch.labels[k + 1]} {cn[k]:.1f} A")
            peptide = bonded & (cn <= CHAIN_BREAK_DISTANCE)
            bonds += [f"{ch.name(k)} C-N" for k in np.nonzero(peptide & (np.abs(cn - BOND_C_N) > BOND_TOLERANCE))[0]]
            a1 = np.abs(angle(x[:-1, 1], x[:-1, 2], x[1:, 0]) - ANGLE_CA_C_N)
            a2 = np.abs(angle(x[:-1, 2], x[1:, 0], x[1:, 1]) - ANGLE_C_N_CA)
            angles += [f"{ch.name(k)} C-N" for k in np.nonzero(peptide & (np.maximum(a1, a2) > ANGLE_TOLERANCE))[0]]
            om = np.abs(peptide_omegas(x))
            pro = np.array([a == "P" for a in ch.letters[1:]], dtype=bool)
            nxt = [f"{ch.letters[k + 1]}{ch.labels[k + 1]}" for k in range(len(x) - 1)]
            for k in np.nonzero(peptide & (om < CIS_MAX))[0]:
                (cis_pro if pro[k] else cis_non).append(f"{ch.chain_id} {nxt[k]}")
            twisted += [f"{ch.chain_id} {nxt[k]}" for k in np.nonzero(peptide & (om >= CIS_MAX) & (om < TRANS_MIN))[0]]
            if rama is not None:
                pp = phi_psi(x, peptide)
                flag = rama.outliers(pp, np.array(list(ch.letters)))
                rama_out += [ch.name(k) for k in np.nonzero(flag)[0]]
    pairs, closest = _clashes(chains)
    return GeometryCheck(sum(len(ch.letters) for ch in chains), tuple(d_res), tuple(cis_pro), tuple(cis_non),
                         tuple(twisted), tuple(gaps), tuple(bonds), tuple(angles), tuple(pairs), closest,
                         tuple(rama_out) if rama is not None else None)  # fmt: skip


def _clashes(chains: list[ChainAtoms]) -> tuple[list[str], float]:
    """Heavy-atom pairs under ``CLASH_DISTANCE`` (named) and the closest non-bonded distance (among
    pairs under ``NEAR`` Å; ``NEAR`` when there is none). Distances are compared first and only the
    few close pairs checked for bonded neighbours."""
    xyz, res, chain, sg = [], [], [], []
    for c, ch in enumerate(chains):
        n = len(ch.letters)
        atoms = np.concatenate([ch.backbone, ch.cb[:, None]], 1).reshape(-1, 3)
        xyz += [atoms, ch.extra]
        res += [np.repeat(np.arange(n), 5), ch.extra_residue]
        chain.append(np.full(5 * n + len(ch.extra), c))
        sg += [np.zeros(5 * n, dtype=bool), ch.extra_sg]
    x, r, cc, s = (np.concatenate(v) for v in (xyz, res, chain, sg))
    ok = np.isfinite(x).all(1)
    x, r, cc, s = x[ok].astype(np.float32), r[ok], cc[ok], s[ok]  # float32: 0.001 Å at these distances
    sq = (x**2).sum(1)
    names, closest = [], NEAR
    for start in range(0, len(x), 2048):  # blocks of rows keep the distance matrix small
        rows = np.arange(start, min(start + 2048, len(x)))
        d2 = sq[rows, None] + sq[None] - 2.0 * x[rows] @ x.T
        i, j = np.nonzero(d2 < NEAR**2)
        i = rows[i]
        keep = (i < j) & ~((cc[i] == cc[j]) & (np.abs(r[i] - r[j]) <= 1)) & ~(s[i] & s[j])  # each pair once
        i, j = i[keep], j[keep]
        if not len(i):
            continue
        d = np.sqrt(np.maximum(d2[i - start, j], 0.0))
        closest = min(closest, float(d.min()))
        for a, b in zip(i[d < CLASH_DISTANCE], j[d < CLASH_DISTANCE], strict=True):
            names.append(f"{chains[cc[a]].name(r[a])}/{chains[cc[b]].name(r[b])}")
    return names, closest
