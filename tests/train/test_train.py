import json

import numpy as np
import pandas as pd
import pytest
import torch

from loopfold.evaluate.baselines import IdentityTemplateBaseline, ResidueMeanBaseline
from loopfold.evaluate.metrics import evaluate_angles
from loopfold.model.checkpoint import load_model
from loopfold.model.config import TrainConfig
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.superpose import superposed_rmsd
from loopfold.train.loop import train_model
from tests.model.test_model import frame


def test_metrics_hand_computed_over_loop_and_window():
    df = frame(n=2, length=9)
    df = df[df["phi"].map(len) == 9].reset_index(drop=True)
    true = np.stack([np.stack([r.phi, r.psi, r.omega], 1) for r in df.itertuples()])
    pred = np.nan_to_num(true, nan=180.0).copy()
    pred[..., 0] += 10.0  # phi off by 10 degrees everywhere
    pred[:, :2, 1] += 40.0  # psi off by 40 degrees on the two N-stem residues only
    res = evaluate_angles(df, pred)
    assert res["phi_mae"] == pytest.approx(10.0) and res["psi_mae"] == pytest.approx(0.0, abs=1e-9)
    assert res["phi_mae_window"] == pytest.approx(10.0)
    n_psi_window = np.isfinite(true[..., 1]).sum()
    assert res["psi_mae_window"] == pytest.approx(40.0 * 2 * len(df) / n_psi_window)
    # sin/cos error of a 10-degree shift: (sin(a+10)-sin a)^2 + (cos(a+10)-cos a)^2 = 2 - 2 cos 10
    loop = true[:, 2:-2]  # frame(): two stem residues each side
    n_phi, n_psi = np.isfinite(loop[..., 0]).sum(), np.isfinite(loop[..., 1]).sum()
    expected = (2 - 2 * np.cos(np.radians(10))) * n_phi / (2 * n_phi + 2 * n_psi)
    assert res["seed_mse"] == pytest.approx(expected, rel=1e-6)
    assert res["seed_mse_window"] > res["seed_mse"]
    assert res["rmsd_loop"] is None and res["rmsd_local"] is None and res["by_cdr"]["H3"]["n_loops"] == len(df)


def _with_coords(n: int = 3) -> tuple:
    df = frame(n=n, length=9)
    tors = [np.nan_to_num(np.stack([r.phi, r.psi, r.omega], 1), nan=180.0) for r in df.itertuples()]
    df["coords"] = [rebuild_backbone(t) for t in tors]
    pred = np.full((n, 10, 3), 180.0)
    for i, t in enumerate(tors):
        pred[i, : len(t)] = t
    return df, pred


def test_rmsds_zero_for_perfect_prediction():
    df, pred = _with_coords()
    res = evaluate_angles(df, pred)
    for key in ("rmsd_loop", "rmsd_stem", "rmsd_local"):
        assert res[key] == pytest.approx(0.0, abs=1e-6), key
    assert res["n_rmsd"] == 3


def test_rmsd_stem_sees_a_displaced_loop_that_rmsd_loop_does_not():
    df, pred = _with_coords(n=1)
    true = np.asarray(df["coords"][0])
    moved = true.copy()
    moved[2:-2] += [0.6, 0.0, 0.8]  # the loop residues shifted 1 Å as a rigid body, stems in place
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))  # a proper rotation: the prediction sits elsewhere in space
    moved = moved @ rot.T + [10.0, -4.0, 7.0]
    res = evaluate_angles(df, pred, coords=[moved])
    assert res["rmsd_loop"] == pytest.approx(0.0, abs=1e-6)
    assert res["rmsd_stem"] == pytest.approx(1.0, abs=1e-6)
    assert 0.1 < res["rmsd_local"] < 1.0


def test_baselines_predict_shapes_and_identity_template_copies_identical_loop():
    train = frame(n=6)
    test = train.iloc[:2].reset_index(drop=True)
    ang, sc, coords = IdentityTemplateBaseline().fit(train).predict(test, 12)
    n = len(test["phi"][0])
    np.testing.assert_allclose(ang[0, 1:n, 0], test["phi"][0][1:], atol=1e-6)
    assert coords == [None, None]  # no coordinates in training: torsions only
    ang2, _ = ResidueMeanBaseline().fit(train).predict(test, 12)
    assert ang2.shape == (2, 12, 3) and np.isfinite(ang2).all()


def test_identity_template_uses_the_template_geometry_of_the_model():
    from loopfold.structure.geometry import internal_geometry
    from loopfold.structure.rebuild import ideal_geometry

    train, _ = _with_coords(n=6)
    geom = ideal_geometry((len(train["phi"][1]),))
    geom = type(geom)(**{**geom.__dict__, "n_ca_c": geom.n_ca_c + 6.0})  # tau 6 degrees wider than ideal
    tors = np.nan_to_num(np.stack([train["phi"][1], train["psi"][1], train["omega"][1]], 1), nan=180.0)
    train.at[1, "coords"] = rebuild_backbone(tors, geom)
    train["has_missing_atoms"] = False
    query = train.iloc[[1]].reset_index(drop=True)
    query.at[0, "sequence"] = "W" + query["sequence"][0][1:]  # not identical, still closest to loop 1
    base = IdentityTemplateBaseline().fit(train)
    _, _, coords = base.predict(query, 12)
    group = base.library.groups[("H3", len(query["phi"][0]))]
    xyz, ids = group.coords, group.ids
    np.testing.assert_allclose(coords[0], xyz[ids.index("t1")])  # the library's copy of loop 1
    assert np.allclose(internal_geometry(coords[0]).n_ca_c, geom.n_ca_c, atol=1e-6)  # with its own tau
    assert superposed_rmsd(coords[0], rebuild_backbone(tors)) > 0.1  # not an ideal-geometry rebuild


@pytest.mark.slow
def test_resume_after_interruption_gives_same_result(tmp_path):
    cfg = TrainConfig(hidden=16, max_len=12, n_bins=4, epochs=4, batch_size=2, patience=10)
    train, val = frame(n=6, seed=1), frame(n=3, seed=2)
    train_model(cfg, train, val, tmp_path / "full")

    class Kill(Exception):
        pass

    def killer(step, total):
        if step == 7:  # mid-way through epoch 3
            raise Kill

    with pytest.raises(Kill):
        train_model(cfg, train, val, tmp_path / "cut", on_step=killer)
    hist = train_model(cfg, train, val, tmp_path / "cut", resume=True)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    a, _, _ = load_model(tmp_path / "full")
    b, _, _ = load_model(tmp_path / "cut")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4]
    assert (tmp_path / "cut" / "curve.png").stat().st_size > 1000
    assert pd.read_csv(tmp_path / "cut" / "training_loops.csv").shape[0] == 9
