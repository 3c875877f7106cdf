"""The geometry check (chirality, peptide bonds, gaps, clashes, Ramachandran) and the peptide-bond
correction, on backbones built with known defects."""

import numpy as np
import pytest

from loopfold.structure.geometry import backbone_torsions
from loopfold.structure.planar import planarize
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.relieve import ideal_cb
from loopfold.structure.validate import ChainAtoms, RamaTable, check, chiral_volumes, peptide_omegas

LETTERS = "ACDEFGHIKLMNQRSTVWYA"


def strand(n: int = 20, omega: dict[int, float] | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.tile([-120.0, 130.0, 180.0], (n, 1))
    t[:, :2] += rng.normal(0, 8, (n, 2))
    for k, v in (omega or {}).items():
        t[k, 2] = v
    return rebuild_backbone(t)


def chain(x: np.ndarray, letters: str = LETTERS, cb: np.ndarray | None = None) -> ChainAtoms:
    n = len(x)
    cb = ideal_cb(x, np.array([a == "G" for a in letters[:n]])) if cb is None else cb
    return ChainAtoms("H", letters[:n], tuple(str(i + 1) for i in range(n)), x, cb, np.ones(n - 1, dtype=bool))


def test_an_ideal_strand_passes_and_each_defect_is_named():
    ok = check([chain(strand())])
    assert ok.passed and ok.problems() == [] and ok.residues == 20 and ok.closest_pair > 2.2
    cis = check([chain(strand(omega={5: 0.0}))])  # bond 6 -> 7: residue 7 is H, not a proline
    assert cis.cis_nonpro == ("H H7",) and not cis.passed and "cis peptide" in cis.problems()[0]
    pro = check([chain(strand(omega={5: 0.0}), LETTERS[:6] + "P" + LETTERS[7:])])
    assert pro.cis_pro == ("H P7",) and pro.cis_nonpro == () and pro.passed
    tw = check([chain(strand(omega={9: -120.0}))])
    assert tw.twisted == ("H M11",) and not tw.passed
    x = strand()
    x[10:] += np.array([5.0, 0.0, 0.0])  # a chain break between residues 10 and 11
    gap = check([chain(x)])
    assert len(gap.gaps) == 1 and gap.gaps[0].startswith("H L10-M11") and not gap.passed


def test_a_d_residue_is_found_from_its_cb():
    x = strand()
    cb = ideal_cb(x)
    ca = x[:, 1]
    cb[4] = 2 * ca[4] - cb[4]  # CB through CA: the other hand
    assert chiral_volumes(x, ideal_cb(x))[~np.isnan(ideal_cb(x)[:, 0])].min() > 2.0  # L: about +2.5
    res = check([chain(x, cb=cb)])
    assert res.d_residues == ("H F5",) and not res.passed


def test_clashes_are_counted_across_the_whole_model_framework_included():
    a, b = strand(), strand(seed=1)
    b = b - b[3, 1] + a[7, 1] + np.array([0.0, 0.0, 1.0])  # CA 1 Å apart: pairs under 2.2 Å
    res = check([chain(a), ChainAtoms("L", LETTERS, tuple(str(i + 1) for i in range(20)), b, ideal_cb(b),
                                      np.ones(19, dtype=bool))])  # fmt: skip
    assert res.clashes and all("/" in p for p in res.clashes) and res.closest_pair < 2.2 and not res.passed


def test_ramachandran_outliers_come_from_the_reference_table():
    rng = np.random.default_rng(0)
    ref = np.concatenate([rng.normal([-120, 130], 10, (5000, 2)), rng.normal([-65, -40], 10, (5000, 2))])
    table = RamaTable.fit(ref, np.array(["A"] * len(ref)))
    flags = table.outliers(np.array([[-120.0, 130.0], [60.0, -120.0], [np.nan, 10.0]]), np.array(["A", "A", "A"]))
    assert flags.tolist() == [False, True, False]
    res = check([chain(strand())], table)
    assert res.rama_outliers == () and "ramachandran_outliers" in res.json()


@pytest.mark.parametrize(("bond", "omega"), [(5, 0.0), (8, -120.0), (1, 10.0), (17, 40.0), (0, 0.0)])
def test_planarize_makes_every_bond_trans_and_keeps_the_chain_closed(bond, omega):
    x = strand(omega={bond: omega}, seed=bond)
    y, fixed = planarize(x, LETTERS)
    assert fixed == [bond]
    om = np.abs(peptide_omegas(y))
    assert om.min() >= 150.0
    cn = np.linalg.norm(y[1:, 0] - y[:-1, 2], axis=-1)
    assert np.abs(cn - 1.329).max() < 0.1  # no bond opened
    assert check([chain(y)]).passed
    moved = np.sqrt(((y - x) ** 2).sum(-1).mean(-1))
    assert moved[[0, -1]].min() < 1e-6  # at least one end stays where it was


def test_planarize_keeps_a_cis_proline_and_corrects_a_twisted_one():
    x = strand(omega={5: 5.0})
    pro = LETTERS[:6] + "P" + LETTERS[7:]
    y, fixed = planarize(x, pro)
    assert fixed == [] and np.allclose(x, y)
    x = strand(omega={5: 60.0})
    y, fixed = planarize(x, pro)
    assert fixed == [5] and abs(backbone_torsions(y)[5, 2]) < 30.0  # twisted cis-like: made cis


def test_only_keeps_the_defects_of_the_residues_asked_for():
    x = strand()
    x[10:] += np.array([5.0, 0.0, 0.0])  # a gap between residues 10 and 11
    cb = ideal_cb(x)
    cb[4] = 2 * x[4, 1] - cb[4]  # a D-residue at 5
    full = check([chain(x, cb=cb)])
    assert full.gaps and full.d_residues == ("H F5",)
    near_gap = full.only({("H", "11")})
    assert near_gap.gaps == full.gaps and near_gap.d_residues == () and not near_gap.passed
    at_five = full.only({("H", "5")})
    assert at_five.d_residues == ("H F5",) and at_five.gaps == ()
    assert full.only({("H", "18")}).passed
    blank = check([ChainAtoms("", LETTERS, tuple(str(i + 1) for i in range(20)), x, cb, np.ones(19, dtype=bool))])
    assert blank.only({("", "5")}).d_residues == (" F5",)  # a blank chain id is a chain too
