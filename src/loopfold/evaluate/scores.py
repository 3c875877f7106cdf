"""``loopfold evaluate``: a trained model and the baselines scored on one split part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.data.identity import max_identity
from loopfold.evaluate.baselines import IdentityTemplateBaseline, ResidueMeanBaseline
from loopfold.evaluate.metrics import evaluate_angles
from loopfold.model.templates import template_ids
from loopfold.pipeline.predictor import Predictor


def evaluate_model(model: str | Path | Predictor, df: pd.DataFrame) -> dict:
    """Metrics of a trained model, as :class:`loopfold.pipeline.predictor.Predictor` outputs it.

    ``seed_mse`` scores the sin/cos head (the MSE-optimal mean); the angle errors
    and RMSDs (``rmsd_loop``, ``rmsd_stem``, ``rmsd_local``) score the conformation the predictor writes:
    the most probable template of the run's library, else the per-residue mode.
    ``mean_head`` holds the same metrics for the sin/cos head's own angles.
    ``model`` is a run folder or an already loaded Predictor.
    """
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    pred, angles, coords, sources = predictor.predict_frame(df)
    res = evaluate_angles(df, angles, pred["sincos"], coords)
    # the MSE-optimal mean angles of the sin/cos head, rebuilt with ideal geometry, for comparison
    res["mean_head"] = evaluate_angles(df, pred["mean"], pred["sincos"])
    res["model"] = predictor.cfg.model
    res["templates_in_evaluation_set"] = len(template_ids(predictor.templates) & set(df["loop_id"]))
    res["template_fraction"] = round(float(np.mean([s is not None for s in sources])), 4) if len(df) else 0.0
    return res


def unique_loops(df: pd.DataFrame) -> pd.DataFrame:
    """Each antibody chain's loops once: copies of one antibody (bound and unbound structures,
    several PDB entries) are scored once, the first kept.

    A chain is known by the sequences of all its CDRs in ``df`` (its PDB id and chain
    group them); a loop is a duplicate when an earlier row has the same CDR, window and
    chain signature. Different antibodies that share a loop window keep one row each.
    """
    window = (df["stem_n"] + df["sequence"] + df["stem_c"]).tolist()
    chain_key = list(zip(df["pdb_id"].fillna("").tolist(), df["chain"].fillna("").tolist(), strict=True))
    signature: dict[tuple[str, str], tuple] = {}
    for key, cdr, seq in zip(chain_key, df["cdr"], df["sequence"], strict=True):
        signature[key] = signature.get(key, ()) + ((cdr, seq),)
    keys = [(cdr, w, tuple(sorted(signature[k])) if k != ("", "") else (i,))
            for i, (cdr, w, k) in enumerate(zip(df["cdr"], window, chain_key, strict=True))]  # fmt: skip
    return df[~pd.Series(keys, index=df.index).duplicated()].reset_index(drop=True)


def evaluate_baselines(train: pd.DataFrame, df: pd.DataFrame, max_len: int) -> dict[str, dict]:
    """Per-residue-type mean (ideal geometry) and identity-template baselines fitted on ``train``."""
    ang, sc = ResidueMeanBaseline().fit(train).predict(df, max_len)
    out = {ResidueMeanBaseline.name: evaluate_angles(df, ang, sc)}
    ang, sc, coords = IdentityTemplateBaseline().fit(train).predict(df, max_len)
    out[IdentityTemplateBaseline.name] = evaluate_angles(df, ang, sc, coords)
    return out


def max_train_identity(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Highest loop-sequence identity of a test loop to a training loop of the same CDR."""
    best = 0.0
    for cdr, g in test.groupby("cdr"):
        ref = train.loc[train["cdr"] == cdr, "sequence"].tolist()
        if ref and len(g):
            best = max(best, float(np.max(max_identity(g["sequence"].tolist(), ref))))
    return round(best, 4)
