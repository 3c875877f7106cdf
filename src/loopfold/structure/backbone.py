"""The ``Backbone`` record: one chain's residues with N, CA, C, O coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopfold.constants import CHAIN_BREAK_DISTANCE
from loopfold.errors import BadStructure


@dataclass(frozen=True)
class Backbone:
    """Backbone atoms of one chain.

    Attributes:
        sequence: one-letter codes, length L.
        coords: ``[L, 4, 3]`` float64 coordinates of N, CA, C, O in Å; NaN where
            an atom is missing.
        residue_ids: L strings, the author numbering with insertion code
            (``"100A"``); empty strings when unknown.
        chain_id: the chain's identifier in its file.
    """

    sequence: str
    coords: np.ndarray  # [L, 4, 3]
    residue_ids: tuple[str, ...]
    chain_id: str = ""

    def __post_init__(self) -> None:
        c = np.asarray(self.coords, dtype=np.float64)
        if c.ndim != 3 or c.shape[1:] != (4, 3):
            raise BadStructure(f"backbone coords must be [L, 4, 3], got {c.shape}")
        if c.shape[0] != len(self.sequence) or len(self.residue_ids) != len(self.sequence):
            raise BadStructure(
                f"backbone chain {self.chain_id!r}: {len(self.sequence)} residues but "
                f"{c.shape[0]} coordinate rows and {len(self.residue_ids)} ids"
            )
        object.__setattr__(self, "coords", c)

    def __len__(self) -> int:
        return len(self.sequence)

    def missing_atoms(self) -> np.ndarray:
        """``[L]`` bool: residues with any of N, CA, C, O missing."""
        return np.isnan(self.coords).any(axis=(1, 2))

    def breaks(self) -> np.ndarray:
        """``[L-1]`` bool: True where C(i)-N(i+1) exceeds the break distance or is unknown."""
        d = peptide_distances(self.coords)
        return ~(d <= CHAIN_BREAK_DISTANCE)

    def slice(self, start: int, stop: int) -> Backbone:
        """The residues ``start:stop`` as a new Backbone."""
        return Backbone(
            self.sequence[start:stop],
            self.coords[start:stop],
            self.residue_ids[start:stop],
            self.chain_id,
        )


def peptide_distances(coords: np.ndarray) -> np.ndarray:
    """C(i)-N(i+1) distances ``[..., L-1]`` for coords ``[..., L, 4, 3]`` (NaN if missing)."""
    return np.linalg.norm(coords[..., 1:, 0, :] - coords[..., :-1, 2, :], axis=-1)
