"""``loopfold evaluate``: a trained model and the baselines scored on one split part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.data.identity import max_identity
from loopfold.model.checkpoint import load_model
from loopfold.model.decode import run_network
from loopfold.model.features import batch_from_frame
from loopfold.train.baselines import NearestNeighbourBaseline, ResidueMeanBaseline
from loopfold.train.metrics import evaluate_angles


def evaluate_model(run_dir: str | Path, df: pd.DataFrame) -> dict:
    """Metrics of a trained model: angles from its most likely mode, seed_mse from its sin/cos head."""
    model, cfg, _ = load_model(run_dir)
    pred = run_network(model, batch_from_frame(df, cfg.max_len))
    res = evaluate_angles(df, pred["mode"], pred["sincos"])
    res["model"] = cfg.model
    return res


def evaluate_baselines(train: pd.DataFrame, df: pd.DataFrame, max_len: int) -> dict[str, dict]:
    """Per-residue-type mean and nearest-neighbour baselines fitted on ``train``."""
    out = {}
    for base in (ResidueMeanBaseline(), NearestNeighbourBaseline()):
        ang, sc = base.fit(train).predict(df, max_len)
        out[base.name] = evaluate_angles(df, ang, sc)
    return out


def max_train_identity(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Highest loop-sequence identity of a test loop to a training loop of the same CDR."""
    best = 0.0
    for cdr, g in test.groupby("cdr"):
        ref = train.loc[train["cdr"] == cdr, "sequence"].tolist()
        if ref and len(g):
            best = max(best, float(np.max(max_identity(g["sequence"].tolist(), ref))))
    return round(best, 4)
