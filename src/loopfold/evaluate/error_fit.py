"""Fit a run's predicted-error model on its validation loops, and score predicted errors.

The validation loops are never trained on, so their errors are out-of-sample:
what the predictor's errors will look like on new antibodies. See
:mod:`loopfold.model.error_model` for the features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.model.checkpoint import load_model, save_model
from loopfold.model.error_model import ErrorModel, fit_error_model, residue_errors, residue_features


def error_table(predictor, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per loop residue: features ``[R, F]``, true error ``[R]`` (Å) and loop index ``[R]``; per loop
    the true ``rmsd_loop`` ``[B]`` (NaN without coordinates). ``predictor`` is a Predictor."""
    df = df.reset_index(drop=True)
    pred, angles, coords, _ = predictor.predict_frame(df)
    lengths = (df["stem_n"].str.len() + df["sequence"].str.len() + df["stem_c"].str.len()).to_numpy()
    conf = predictor.output_confidence(pred, angles, lengths)
    ident = predictor.template_identity(df["cdr"].tolist(), df["sequence"].tolist())
    xs, ys, loops = [], [], []
    rmsd = np.full(len(df), np.nan)
    from loopfold.structure.rebuild import rebuild_backbone

    for i, row in enumerate(df.itertuples(index=False)):
        a, b = len(row.stem_n), len(row.stem_n) + len(row.sequence)
        if row.coords is None or row.has_chain_break or row.has_missing_atoms:
            continue
        xyz = coords[i] if coords[i] is not None else rebuild_backbone(angles[i, : lengths[i]])
        ref = np.asarray(row.coords, dtype=np.float64).reshape(-1, 4, 3)
        if not np.isfinite(xyz[a:b]).all() or not np.isfinite(ref[a:b]).all() or b - a < 1:
            continue
        err = residue_errors(xyz[a:b], ref[a:b])
        probs = pred["bin_probs"][i, a:b] if "bin_probs" in pred else None
        xs.append(residue_features(conf[i, a:b], probs, float(ident[i]), row.cdr))
        ys.append(err)
        loops.append(np.full(b - a, i))
        rmsd[i] = float(np.sqrt(np.mean(err**2)))
    if not xs:
        return np.zeros((0, 0)), np.zeros(0), np.zeros(0, dtype=int), rmsd
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(loops), rmsd


def fit_run_error_model(run_dir: str | Path, val: pd.DataFrame) -> ErrorModel | None:
    """Fit the error model on ``val`` predictions and store it in the run's config (None: no usable loops)."""
    from loopfold.pipeline.predictor import Predictor

    x, y, _, _ = error_table(Predictor(run_dir), val)
    if len(y) < 20:
        return None
    model = fit_error_model(x, y)
    net, cfg, info = load_model(run_dir)
    info["error_model"] = model.to_info()
    save_model(run_dir, net, cfg, info)
    return model


def select_output(run_dir: str | Path, val: pd.DataFrame) -> dict[str, float]:
    """Choose what an FvNet run writes, by mean validation ``rmsd_loop``: its own rebuilt structure or
    the template its scores rank first; stored as ``info.output``. Returns both scores."""
    from loopfold.evaluate.metrics import evaluate_angles
    from loopfold.pipeline.predictor import Predictor

    net, cfg, info = load_model(run_dir)
    scores = {}
    for mode in ("structure", "template"):
        info["output"] = mode
        save_model(run_dir, net, cfg, info)
        p = Predictor(run_dir)
        pred, angles, coords, _ = p.predict_frame(val)
        scores[mode] = evaluate_angles(val.reset_index(drop=True), angles, pred["sincos"], coords)["rmsd_loop"]
    info["output"] = min(scores, key=lambda k: scores[k])
    info["output_validation_rmsd_loop"] = {k: round(v, 4) for k, v in scores.items()}
    save_model(run_dir, net, cfg, info)
    return scores
