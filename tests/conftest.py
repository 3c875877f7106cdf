"""Shared fixtures: small structures and files made here, and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from loopfold.constants import BACKBONE_ATOMS
from loopfold.io.model_file import ModelChain, pdb_text
from loopfold.structure.backbone import Backbone
from loopfold.structure.rebuild import rebuild_backbone

#: Trastuzumab variable domains (PDB 1N8Z), used as numbering fixtures.
TRASTUZUMAB_VH = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLR"
    "AEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS"
)
TRASTUZUMAB_VL = (
    "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"
)
#: Human IgG1 CH1 and kappa constant domain starts, to make Fab-length chains.
IGG1_CH1 = "ASTKGPSVFPLAPSSKSTSGGTAALGCLVKDYFPEPVTVSWNSGALTSGVHTFPAVLQSSGLYSLSSVVTVPSSSLGTQTYICNVNHKPSNTKVDKKVEPKSC"
KAPPA_CL = "RTVAAPSVFIFPPSDEQLKSGTASVVCLLNNFYPREAKVQWKVDNALQSGNSQESVTEQDSKDSTYSLSSTLTLSKADYEKHKVYACEVTHQGLSSPVTKSFNRGEC"
LYSOZYME = (  # noqa: E501
    "KVFGRCELAAAMKRHGLDNYRGYSLGNWVCAAKFESNFNTQATNRNTDGSTDYGILQINSRWWCNDGRTPGSRNLCNISCSALLSSDITASVNCAKKIVSDGNGMNAWVAWRNRCKGTDVQAWIRGCRL"
)

SHARED_DATA = Path(
    os.environ.get("LOOPFOLD_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
)


def make_backbone(sequence: str, chain_id: str = "A", ids: list[str] | None = None, seed: int = 0) -> Backbone:
    """A chain with realistic-looking torsions (beta/alpha mix) and ideal geometry."""
    rng = np.random.default_rng(seed)
    n = len(sequence)
    tors = np.where(rng.random((n, 1)) < 0.5, [-120.0, 130.0, 180.0], [-63.0, -42.0, 180.0])
    tors = tors + rng.normal(0, 10, size=(n, 3)) * [1, 1, 0.3]
    coords = rebuild_backbone(tors)
    coords[-1, 3] = coords[-1, 2] + [1.2, 0.0, 0.3]  # give the last O a place
    return Backbone(sequence, coords, tuple(ids or [str(i + 1) for i in range(n)]), chain_id)


def write_pdb(path: Path, chains: list[Backbone]) -> Path:
    path.write_text(backbones_to_pdb(chains))
    return path


@pytest.fixture
def fab_pdb(tmp_path: Path) -> Path:
    """A two-chain Fab-like file with sequential numbering and chain ids A/B."""
    heavy = make_backbone(TRASTUZUMAB_VH + IGG1_CH1[:30], "A", seed=1)
    light = make_backbone(TRASTUZUMAB_VL + KAPPA_CL[:30], "B", seed=2)
    return write_pdb(tmp_path / "fab.pdb", [heavy, light])


@pytest.fixture
def shared_data() -> Path:
    """The shared real data folder; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def backbones_to_pdb(chains: list[Backbone], remarks: list[str] | None = None) -> str:
    """PDB text of test backbones (N, CA, C, O; NaN atoms left out) through loopfold's model writer."""
    return pdb_text([ModelChain(bb.chain_id or "A", bb.sequence, tuple(bb.residue_ids), bb.coords, BACKBONE_ATOMS)
                     for bb in chains], remarks)  # fmt: skip
