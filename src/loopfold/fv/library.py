"""The framework library: VH and VL backbones of known Fv structures, at their IMGT positions.

Each entry is one crystal structure's variable domains in that structure's own
frame, so an entry keeps its VH-VL orientation. Per chain and IMGT position
(1-128) the library holds the residue and its N, CA, C, O; positions inside a
CDR (North definition, the loops loopfold predicts) are not stored: only
frameworks and loop stems come from here (each entry's CDR-H3 sequence is kept
to tell which antibody it is). Built by ``loopfold data frameworks`` from the
Rosetta antibody database and ``sabdab_extra``, without the benchmark structures and without any
structure whose CDR-H3 is >= 70% identical to a benchmark H3 (the same or a
related antibody) or cannot be found.

Stored as a compressed ``.npz``: coordinates as float32 (Fv centred at the
origin; rounding them to 0.01 Å would move bond lengths by up to 0.02 Å),
residues as ASCII codes (0: no residue).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loopfold.constants import BOND_C_N, BOND_C_O, BOND_CA_C, BOND_N_CA, CDR_BOUNDS_IMGT, CDRS, CHAIN_BREAK_DISTANCE
from loopfold.errors import CheckpointError
from loopfold.numbering.anarci import NumberedDomain
from loopfold.structure.validate import RamaTable, phi_psi

N_POS = 128  # IMGT positions 1-128
CHAINS = ("H", "L")
LIBRARY_FILE = "frameworks.npz"
#: Per-residue predicted error in an Fv (Å: the residue's backbone deviation once the whole Fv
#: framework is superposed): framework residues a + b * (1 - chain framework identity) + c * (residue
#: differs from its template's); loop residues p + q * (the loop error model's error, which is for the
#: loop superposed on itself). The library file carries the fitted values (``bench/fv.py --fit-error
#: N --apply`` fits them on validation structures, their related entries left out); a library built
#: without them (``loopfold data frameworks``) uses these, the values fitted for the shipped library.
FRAME_ERROR = (0.65, 0.37, 0.19, 0.11, 1.52)
#: A library may carry a (p, q) pair per CDR after the five (in ``CDRS`` order, 17 values in all):
#: loop residues of that CDR then get p_cdr + q_cdr * error (fitted per CDR on validation loops).


def framework_positions(chain_type: str, definition: str = "north") -> np.ndarray:
    """``[128]`` bool: IMGT positions (index = position - 1) outside the chain's CDRs."""
    keep = np.ones(N_POS, dtype=bool)
    for cdr, (lo, hi) in CDR_BOUNDS_IMGT[definition].items():
        if cdr[0] == chain_type:
            keep[lo - 1 : hi] = False
    return keep


@dataclass(frozen=True)
class FrameworkLibrary:
    """Framework templates.

    Attributes:
        ids: ``[T]`` entry names (``pdb_id``).
        residues: ``[T, 2, 128]`` uint8 ASCII one-letter code per chain (H, L) and IMGT position; 0 = none.
        coords: ``[T, 2, 128, 4, 3]`` float32 N, CA, C, O; NaN where no residue or atom.
        resolution: ``[T]`` Å (NaN when unknown).
    """

    ids: np.ndarray
    residues: np.ndarray
    coords: np.ndarray
    resolution: np.ndarray
    #: predicted-error coefficients fitted on validation structures (see :mod:`loopfold.fv.build`)
    error_coef: np.ndarray | None = None
    #: ``[T]`` each entry's CDR-H3 sequence (North): which antibody it is (leakage checks)
    h3: np.ndarray | None = None
    #: ``[T]`` bool: the entry is a nanobody (a VH alone with VHH hallmarks, :mod:`loopfold.numbering.vhh`)
    nanobody: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def present(self) -> np.ndarray:
        """``[T, 2, 128]`` bool: the residue and all four backbone atoms are there."""
        return (self.residues > 0) & np.isfinite(self.coords).all(axis=(-1, -2))

    def save(self, path: str | Path) -> None:
        """Write the library as compressed ``.npz`` (see the module docstring)."""
        extra: dict[str, Any]  # arrays; Any: savez_compressed's allow_pickle keyword is a bool
        extra = {} if self.error_coef is None else {"error_coef": np.asarray(self.error_coef, dtype=np.float64)}
        if self.h3 is not None:
            extra["h3"] = self.h3.astype(str)
        if self.nanobody is not None:
            extra["nanobody"] = self.nanobody.astype(bool)
        from loopfold.io.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a handle: numpy would add ".npz" to a bare name
            np.savez_compressed(fh, ids=self.ids.astype(str), residues=self.residues,
                                coords=self.coords.astype(np.float32), resolution=self.resolution.astype(np.float32),
                                **extra)  # fmt: skip


def load_library(path: str | Path) -> FrameworkLibrary:
    """Read a library written by :meth:`FrameworkLibrary.save`.

    Raises:
        CheckpointError: the file is missing, not a library, or its arrays disagree.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, res, q, resol = z["ids"], z["residues"], z["coords"], z["resolution"]
            coef = z["error_coef"] if "error_coef" in z.files else None
            h3 = z["h3"] if "h3" in z.files else None
            nb = z["nanobody"] if "nanobody" in z.files else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path}: not a loopfold framework library ({exc})") from None
    t = len(ids)
    bad_coef = coef is not None and (coef.shape not in ((5,), (5 + 2 * len(CDRS),)) or not np.isfinite(coef).all())
    bad_coef |= h3 is not None and h3.shape != (t,)
    bad_coef |= nb is not None and (nb.shape != (t,) or nb.dtype != bool)
    if res.shape != (t, 2, N_POS) or q.shape != (t, 2, N_POS, 4, 3) or resol.shape != (t,) or t == 0 or bad_coef:
        raise CheckpointError(f"{path}: framework library arrays have inconsistent shapes "
                              f"(ids {ids.shape}, residues {res.shape}, coords {q.shape}, error_coef "
                              f"{None if coef is None else coef.shape})")  # fmt: skip
    return FrameworkLibrary(ids, res.astype(np.uint8), q.astype(np.float32), resol.astype(np.float32), coef, h3, nb)


def domain_positions(domain: NumberedDomain) -> tuple[np.ndarray, np.ndarray]:
    """Sequence index per IMGT position of a domain (``[128]`` int, -1 where absent) and the
    sequence indices numbered with an insertion code (which no template position holds)."""
    at = np.full(N_POS, -1, dtype=np.int64)
    inserted = []
    for idx, (num, ins) in zip(domain.indices, domain.positions, strict=True):
        if ins or not 1 <= num <= N_POS:
            inserted.append(idx)
        else:
            at[num - 1] = idx
    return at, np.array(inserted, dtype=np.int64)


def entry_from_chains(
    chains: dict[str, tuple[str, np.ndarray, NumberedDomain]]
) -> tuple[np.ndarray, np.ndarray]:
    """One library entry from numbered chains: ``chain type -> (sequence, [L, 4, 3] coords, domain)``.

    Returns ``[2, 128]`` residue codes and ``[2, 128, 4, 3]`` coordinates (framework positions only).
    """
    residues = np.zeros((2, N_POS), dtype=np.uint8)
    coords = np.full((2, N_POS, 4, 3), np.nan, dtype=np.float32)
    for c, chain_type in enumerate(CHAINS):
        if chain_type not in chains:
            continue
        seq, xyz, dom = chains[chain_type]
        at, _ = domain_positions(dom)
        keep = framework_positions(chain_type) & (at >= 0)
        pos = np.nonzero(keep)[0]
        residues[c, pos] = np.frombuffer("".join(seq[i] for i in at[pos]).encode(), dtype=np.uint8)
        coords[c, pos] = xyz[at[pos]]
    return residues, coords


IDEAL = ((0, 1, BOND_N_CA), (1, 2, BOND_CA_C), (2, 3, BOND_C_O))  # atom pairs of the residue and ideal length (Å)


def clean_entry(coords: np.ndarray, chain_type: str) -> tuple[np.ndarray, float]:
    """An entry chain's ``[128, 4, 3]`` coordinates with every residue after a chain break inside a
    framework stretch removed (missing residues, or an insertion the library does not store: its
    neighbours are not bonded), and the largest backbone bond-length deviation from ideal left."""
    xyz = coords.copy()
    fw = framework_positions(chain_type)
    present = np.isfinite(xyz).all((1, 2))
    pos = np.nonzero(present)[0]
    for p, q in zip(pos[:-1], pos[1:], strict=True):
        if fw[p : q + 1].all() and np.linalg.norm(xyz[q, 0] - xyz[p, 2]) > CHAIN_BREAK_DISTANCE:
            xyz[q] = np.nan
    present = np.isfinite(xyz).all((1, 2))
    dev = 0.0
    for i, j, ideal in IDEAL:
        d = np.abs(np.linalg.norm(xyz[present, i] - xyz[present, j], axis=-1) - ideal)
        dev = max(dev, float(d.max(initial=0.0)))
    pos = np.nonzero(present)[0]
    for p, q in zip(pos[:-1], pos[1:], strict=True):
        cn = float(np.linalg.norm(xyz[q, 0] - xyz[p, 2]))
        if cn <= CHAIN_BREAK_DISTANCE:
            dev = max(dev, abs(cn - BOND_C_N))
    return xyz, dev


def closest_contact(residues: np.ndarray, coords: np.ndarray) -> float:
    """Closest pair of heavy atoms (N, CA, C, O and an ideal CB; not glycine) of an entry
    (``[2, 128]`` residues, ``[2, 128, 4, 3]`` coordinates) that are not in the same or adjacent
    residues of a chain: a template that has a pair under 2.2 Å passes it to every model."""
    from loopfold.structure.contacts import model_atoms, nonbonded_d2
    from loopfold.structure.relieve import ideal_cb

    chains = []
    for c in range(2):
        ok = np.isfinite(coords[c]).all((1, 2))  # rank along the chain: IMGT gaps are bonded
        xyz = coords[c, ok].astype(np.float64)
        chains.append((xyz, ideal_cb(xyz, residues[c, ok] == ord("G"))))
    x, r, ch, _ = model_atoms(chains)
    return float(np.sqrt(nonbonded_d2(x, r, ch).min(initial=np.inf)))


def rama_reference(library: FrameworkLibrary) -> RamaTable:
    """Ramachandran outlier bins from the framework library's crystal backbones (every stored residue
    with both neighbours bonded)."""
    pp, letters = [], []
    for c in range(2):
        xyz = library.coords[:, c].astype(np.float64)  # [T, 128, 4, 3]
        have = library.present()[:, c]
        for t in range(len(library)):
            idx = np.nonzero(have[t])[0]
            if len(idx) < 3:
                continue
            x = xyz[t, idx]
            bonded = np.linalg.norm(x[1:, 0] - x[:-1, 2], axis=-1) < 2.0
            pp.append(phi_psi(x, bonded))
            letters.append(library.residues[t, c, idx].view("S1").astype(str))
    return RamaTable.fit(np.concatenate(pp), np.concatenate(letters))
