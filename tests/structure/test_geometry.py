import numpy as np
import pytest

from loopfold.structure.backbone import Backbone
from loopfold.structure.geometry import backbone_torsions, dihedral, internal_geometry
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.superpose import rmsd, superposed_rmsd
from tests.conftest import make_backbone


def test_dihedral_known_values():
    a, b, c = np.array([1.0, 0, 0]), np.zeros(3), np.array([0, 0, 1.0])
    assert dihedral(a, b, c, np.array([1.0, 0, 1])) == pytest.approx(0.0)
    assert dihedral(a, b, c, np.array([-1.0, 0, 1])) == pytest.approx(180.0)
    assert dihedral(a, b, c, np.array([0, -1.0, 1])) == pytest.approx(-90.0)


def test_rebuild_reproduces_requested_torsions():
    tors = np.array([[np.nan, 140, 180], [-70, -40, 178], [-120, 130, -175], [60, 30, 5], [-90, 0, np.nan]])
    xyz = rebuild_backbone(tors)
    got = backbone_torsions(xyz)
    assert np.isnan(got[0, 0]) and np.isnan(got[-1, 1]) and np.isnan(got[-1, 2])
    np.testing.assert_allclose(got[1:, 0], tors[1:, 0], atol=1e-6)
    np.testing.assert_allclose(got[:-1, 1:], tors[:-1, 1:], atol=1e-6)


def test_ideal_bond_lengths():
    xyz = rebuild_backbone(np.tile([-60.0, -45.0, 180.0], (6, 1)))
    geo = internal_geometry(xyz)
    assert np.allclose(geo.n_ca, 1.458) and np.allclose(geo.ca_c, 1.525)
    assert np.allclose(geo.c_n[:-1], 1.329) and np.isnan(geo.c_n[-1])
    assert np.allclose(geo.c_o[:-1], 1.231)


def test_round_trip_own_geometry_is_exact():
    bb = make_backbone("ACDEFGHIKLMNPQ", seed=3)
    # perturb bond lengths so ideal and own geometry differ
    coords = bb.coords + np.random.default_rng(0).normal(0, 0.02, bb.coords.shape)
    tors = backbone_torsions(coords)
    own = rebuild_backbone(tors, internal_geometry(coords), first_residue=coords[0, :3])
    assert rmsd(own, coords) < 1e-6
    ideal = rebuild_backbone(tors)
    assert 1e-3 < superposed_rmsd(ideal, coords) < 0.5


def test_batched_rebuild_matches_single():
    tors = np.random.default_rng(1).uniform(-180, 180, size=(3, 7, 3))
    batch = rebuild_backbone(tors)
    for i in range(3):
        np.testing.assert_allclose(batch[i], rebuild_backbone(tors[i]), atol=1e-9)


def test_torsions_nan_across_break_and_missing_atoms():
    bb = make_backbone("ACDEFGHIK", seed=4)
    coords = bb.coords.copy()
    coords[5:] += [5.0, 0, 0]  # break between residues 4 and 5
    coords[2, 1] = np.nan  # missing CA at residue 2
    t = backbone_torsions(coords)
    assert np.isnan(t[4, 1]) and np.isnan(t[4, 2]) and np.isnan(t[5, 0])
    assert np.isnan(t[2]).all()
    assert np.isfinite(t[6, 0]) and np.isfinite(t[0, 1])
    b = Backbone(bb.sequence, coords, bb.residue_ids)
    assert b.breaks()[4] and b.missing_atoms()[2] and not b.breaks()[6]


def test_superposed_rmsd_invariant_to_rotation():
    x = np.random.default_rng(2).normal(size=(20, 3))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    assert superposed_rmsd(x @ rot.T + [1, 2, 3], x) < 1e-9
    y = x.copy()
    y[0] += [3.0, 0, 0]
    assert superposed_rmsd(y, x) > 0.1


def test_backbone_shape_checked():
    from loopfold.errors import BadStructure

    with pytest.raises(BadStructure, match="L, 4, 3"):
        Backbone("AC", np.zeros((2, 3, 3)), ("1", "2"))
    with pytest.raises(BadStructure, match="2 residues"):
        Backbone("AC", np.zeros((3, 4, 3)), ("1", "2"))
