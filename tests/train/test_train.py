import json

import numpy as np
import pandas as pd
import pytest
import torch

from loopfold.model.checkpoint import load_model
from loopfold.model.config import TrainConfig
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.train.baselines import NearestNeighbourBaseline, ResidueMeanBaseline
from loopfold.train.loop import train_model
from loopfold.train.metrics import evaluate_angles
from tests.model.test_model import frame


def test_metrics_hand_computed():
    df = frame(n=2, length=9)
    df = df[df["phi"].map(len) == 9].reset_index(drop=True)
    true = np.stack([np.stack([r.phi, r.psi, r.omega], 1) for r in df.itertuples()])
    pred = np.nan_to_num(true, nan=180.0).copy()
    pred[..., 0] += 10.0  # phi off by 10 degrees everywhere
    res = evaluate_angles(df, pred)
    assert res["phi_mae"] == pytest.approx(10.0) and res["psi_mae"] == pytest.approx(0.0, abs=1e-9)
    # sin/cos error of a 10-degree shift: (sin(a+10)-sin a)^2 + (cos(a+10)-cos a)^2 = 2 - 2 cos 10
    n_phi = np.isfinite(true[..., 0]).sum()
    n_psi = np.isfinite(true[..., 1]).sum()
    expected = (2 - 2 * np.cos(np.radians(10))) * n_phi / (2 * n_phi + 2 * n_psi)
    assert res["seed_mse"] == pytest.approx(expected, rel=1e-6)
    assert res["rmsd_local"] is None and res["by_cdr"]["H3"]["n_loops"] == len(df)


def test_rmsd_local_zero_for_perfect_prediction():
    df = frame(n=3, length=9)
    tors = [np.nan_to_num(np.stack([r.phi, r.psi, r.omega], 1), nan=180.0) for r in df.itertuples()]
    df["coords"] = [rebuild_backbone(t) for t in tors]
    pred = np.full((3, 10, 3), 180.0)
    for i, t in enumerate(tors):
        pred[i, : len(t)] = t
    res = evaluate_angles(df, pred)
    assert res["rmsd_local"] == pytest.approx(0.0, abs=1e-6) and res["n_rmsd"] == 3


def test_baselines_predict_shapes_and_nn_copies_identical_loop():
    train = frame(n=6)
    test = train.iloc[:2].reset_index(drop=True)
    ang, sc = NearestNeighbourBaseline().fit(train).predict(test, 12)
    n = len(test["phi"][0])
    np.testing.assert_allclose(ang[0, 1:n, 0], test["phi"][0][1:], atol=1e-6)
    ang2, _ = ResidueMeanBaseline().fit(train).predict(test, 12)
    assert ang2.shape == (2, 12, 3) and np.isfinite(ang2).all()


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
