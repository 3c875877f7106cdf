"""A modelled Fv as the chains of a model file (:mod:`loopfold.io.model_file`): chains H and L, IMGT
numbering, N, CA, C, O and an ideal CB per residue, the framework-superposed predicted error (Å) as B."""

from __future__ import annotations

import numpy as np

from loopfold.constants import BACKBONE_ATOMS
from loopfold.fv.assemble import FvModel
from loopfold.io.model_file import ModelChain, model_text


def fv_chains(model: FvModel) -> list[ModelChain]:
    """The Fv's chains to write."""
    return [ModelChain(ch.chain_id, ch.sequence, tuple(ch.residue_ids), np.concatenate([ch.coords, ch.cb[:, None]], 1),
                       (*BACKBONE_ATOMS, "CB"), ch.error_frame) for ch in model.chains]  # fmt: skip


def fv_text(model: FvModel, fmt: str = "pdb", remarks: list[str] | None = None, name: str = "loopfold") -> str:
    """PDB (``REMARK 250`` lines first) or mmCIF text of the Fv."""
    return model_text(fv_chains(model), fmt, remarks, name)
