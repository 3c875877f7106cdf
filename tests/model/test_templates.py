import numpy as np
import pandas as pd

from loopfold.data.records import LoopRecord
from loopfold.model.templates import TemplateLibrary, choose_conformations
from loopfold.structure.geometry import backbone_torsions
from loopfold.structure.superpose import superposed_rmsd
from tests.conftest import make_backbone


def library_frame(n=5, length=10):
    rows = []
    for i in range(n):
        bb = make_backbone("ACDEFGHIKL"[:length], seed=10 + i)
        t = backbone_torsions(bb.coords)
        rows.append(LoopRecord(f"t{i}", "t", None, "H", "H", "H3", "north", bb.sequence[3:-3], bb.sequence[:3],
                               bb.sequence[-3:], t[:, 0].tolist(), t[:, 1].tolist(), t[:, 2].tolist(),
                               coords=bb.coords).to_row())  # fmt: skip
    df = pd.DataFrame(rows)
    df["coords"] = [np.asarray(c).reshape(-1, 4, 3) for c in df["coords"]]
    return df


def test_library_rebuild_is_faithful_and_round_trips(tmp_path):
    df = library_frame()
    lib = TemplateLibrary.from_frame(df)
    g = lib.groups[("H3", 10)]
    tors, xyz, ids = g.torsions, g.coords, g.ids
    assert ids == [f"t{i}" for i in range(5)] and xyz.shape == (5, 10, 4, 3)
    for k in range(5):  # ideal bond lengths, own angles: the same loop within a few hundredths of an Å
        assert superposed_rmsd(xyz[k], df["coords"][k]) < 0.05
    lib.save(tmp_path / "t.safetensors")
    back = TemplateLibrary.load(tmp_path / "t.safetensors")
    np.testing.assert_allclose(back.groups[("H3", 10)].torsions, tors, atol=1e-4)
    assert back.groups[("H3", 10)].ids == ids


def test_model_probabilities_pick_the_matching_template():
    df = library_frame()
    lib = TemplateLibrary.from_frame(df)
    tors = lib.groups[("H3", 10)].torsions
    centers = np.stack(np.meshgrid(np.arange(-165, 180, 30.0), np.arange(-165, 180, 30.0)), -1).reshape(-1, 2)
    target = tors[3]
    d = ((target[:, None, :2] - centers[None] + 180) % 360 - 180) ** 2
    probs = np.full((1, 10, len(centers)), 1e-3)
    probs[0, np.arange(10), np.nan_to_num(d.sum(-1), nan=0).argmin(-1)] = 1.0
    probs /= probs.sum(-1, keepdims=True)
    pred = {"mode": np.zeros((1, 10, 3)), "bin_probs": probs, "bin_centers": centers}
    angles, coords, sources = choose_conformations(pred, ["H3"], [df["sequence"][0]], np.array([10]), lib, 0.0)
    assert sources == ["t3"] and coords[0] is not None
    ranked = lib.rank("H3", df["sequence"][0], np.log(probs[0]), centers, None, 0.0, k=3)
    assert [r[2] for r in ranked][0] == "t3" and len(ranked) == 3
    assert ranked[0][3] >= ranked[1][3] >= ranked[2][3]
    # no template of that length: fall back to the per-residue mode
    _, coords2, sources2 = choose_conformations(pred, ["L3"], ["X"], np.array([10]), lib, 0.0)
    assert sources2 == [None] and coords2 == [None]


def _favouring(lib, k, strength, centers):
    """Bin probabilities that favour template k (``strength``: probability of its bins)."""
    tors = lib.groups[("H3", 10)].torsions
    d = ((tors[k][:, None, :2] - centers[None] + 180) % 360 - 180) ** 2
    probs = np.full((1, 10, len(centers)), (1 - strength) / (len(centers) - 1))
    probs[0, np.arange(10), np.nan_to_num(d.sum(-1), nan=0).argmin(-1)] = strength
    return {"mode": np.zeros((1, 10, 3)), "bin_probs": probs, "bin_centers": centers}


def test_an_ensemble_chooses_by_the_members_mean_score():
    df = library_frame()
    lib = TemplateLibrary.from_frame(df)
    centers = np.stack(np.meshgrid(np.arange(-165, 180, 30.0), np.arange(-165, 180, 30.0)), -1).reshape(-1, 2)
    weak, strong = _favouring(lib, 1, 0.3, centers), _favouring(lib, 3, 0.9, centers)
    seq, n = [df["sequence"][0]], np.array([10])
    assert choose_conformations(weak, ["H3"], seq, n, lib)[2] == ["t1"]
    assert choose_conformations([weak, strong], ["H3"], seq, n, lib)[2] == ["t3"]  # the surer member wins
    assert choose_conformations([weak, weak], ["H3"], seq, n, lib)[2] == ["t1"]
    w = np.array([[1.0, 0.0]])  # per-window member weights: the second member switched off
    assert choose_conformations([weak, strong], ["H3"], seq, n, lib, 0.0, w)[2] == ["t1"]


def test_ensemble_weights_are_checked():
    import pytest

    from loopfold.errors import CheckpointError
    from loopfold.model.ensemble import check_weights, member_weights

    table = {"H3": [0.0, 1.0]}
    check_weights(table, 2, "run")
    assert member_weights(table, ["H1", "H3"], 2).tolist() == [[1.0, 1.0], [0.0, 1.0]]
    for bad in ({"H3": [0.0, 0.0]}, {"H3": [1.0]}, {"H9": [1.0, 1.0]}, {"H3": [-1.0, 2.0]}, [1, 2]):
        with pytest.raises(CheckpointError, match="ensemble_weights"):
            check_weights(bad, 2, "run")


def test_nanobody_windows_choose_among_the_nanobody_templates():
    from loopfold.model.templates import nanobody_choice

    df = library_frame()
    lib = TemplateLibrary.from_frame(df)
    centers = np.stack(np.meshgrid(np.arange(-165, 180, 30.0), np.arange(-165, 180, 30.0)), -1).reshape(-1, 2)
    fav = _favouring(lib, 3, 0.9, centers)  # the network prefers t3, not a nanobody template
    pred = {k: (np.concatenate([v, v]) if k != "bin_centers" else v) for k, v in fav.items()}
    nb = lib.subset({"t0", "t2"})
    assert nb.groups[("H3", 10)].ids == ["t0", "t2"] and lib.subset(set()).groups == {}
    seqs, n = [df["sequence"][0]] * 2, np.array([10, 10])
    alt = nanobody_choice(nb, {"H3"}, ["H3", "H3"], np.array([True, False]))
    _, coords, sources = choose_conformations(pred, ["H3", "H3"], seqs, n, lib, 0.0, None, alt)
    assert sources[0] in {"t0", "t2"} and sources[1] == "t3"  # only the marked window is restricted
    np.testing.assert_allclose(coords[0], nb.groups[("H3", 10)].coords[["t0", "t2"].index(sources[0])])
    assert nanobody_choice(nb, {"H1"}, ["H3", "H3"], np.array([True, True])) is None  # CDR not tuned for it
    assert nanobody_choice(None, {"H3"}, ["H3"], np.array([True])) is None


def test_templates_with_a_cis_bond_before_a_non_proline_are_marked():
    from loopfold.model.templates import _cis_before_non_proline

    tors = np.tile([-70.0, 140.0, 180.0], (3, 9, 1))  # 3 templates, window 3 + 3 + 3
    tors[1, 3, 2] = 0.0  # template 1: bond 3 -> 4 cis, into the second loop residue
    tors[2, 0, 2] = 0.0  # template 2: a cis bond inside the N-stem: the same for every query
    got = _cis_before_non_proline(tors, ["GPA", "GSA"])
    assert got.tolist() == [[False, False, False], [False, True, False]]  # "GPA": that residue is a proline


def test_a_loop_predicted_as_if_new_never_gets_itself_or_a_relative():
    """``exclude_identity``: templates at least that identical to the query loop are neither chosen nor
    among its candidates (the ranker's training rows); less identical ones are; with every template
    left out, the loop is rebuilt from the network's mode."""
    from loopfold.data.identity import identity_matrix
    from loopfold.model.templates import Candidates

    loops = ["AAAA", "DEFA", "DEAA", "DEFG", "DAFG"]  # the query is t3's loop; t1, t4 are 75% identical
    df = library_frame()
    df["sequence"] = loops
    lib = TemplateLibrary.from_frame(df)
    centers = np.stack(np.meshgrid(np.arange(-165, 180, 30.0), np.arange(-165, 180, 30.0)), -1).reshape(-1, 2)
    pred = _favouring(lib, 3, 0.9, centers)
    n = np.array([10])
    assert choose_conformations(pred, ["H3"], ["DEFG"], n, lib)[2] == ["t3"]
    found: list[Candidates | None] = []
    _, coords, sources = choose_conformations(pred, ["H3"], ["DEFG"], n, lib, top_k=5, candidates=found,
                                              exclude_identity=0.7)  # fmt: skip
    ident = identity_matrix(["DEFG"], loops)[0]
    assert ident[1] >= 0.7 and ident[4] >= 0.7 and ident[2] < 0.7
    assert sources[0] in {"t0", "t2"} and coords[0] is not None
    assert found[0] is not None and sorted(found[0].ids) == ["t0", "t2"]
    assert found[0].ids[0] == sources[0] and (found[0].identity < 0.7).all() and found[0].windows.shape[0] == 2
    assert np.all(np.diff(found[0].scores) <= 0)  # best first
    _, coords, sources = choose_conformations(pred, ["H3"], ["DEFG"], n, lib, exclude_identity=0.0)
    assert sources == [None] and coords == [None]
