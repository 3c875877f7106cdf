"""Reliability of the per-residue confidence of a model on held-out loops.

    .venv/bin/python bench/calibration.py DATASET [--split SPLITDIR --part test] [--model RUN] [--json]

Confidence is the (temperature-scaled) probability of the Ramachandran bin of
each output residue; a residue counts as correct when its true (phi, psi) falls
in that same bin. Prints mean confidence vs observed accuracy per decile and
the expected calibration error (ECE). Each antibody's loops count once
(bound and unbound copies of one antibody are one).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from measures import reliability

from loopfold.evaluate.scores import unique_loops
from loopfold.model.dataset import load_part
from loopfold.model.decode import bin_confidence
from loopfold.model.features import batch_from_frame
from loopfold.model.losses import assign_bins
from loopfold.pipeline.predictor import Predictor


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--split")
    ap.add_argument("--part", default="test")
    ap.add_argument("--model", default=None, help="run folder (default: the shipped model)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    pred_ = Predictor(args.model)
    df = unique_loops(load_part(args.dataset, args.split, args.part, pred_.cfg.max_len))
    pred, angles, _, _ = pred_.predict_frame(df)
    conf = bin_confidence(pred, angles, np.array([len(p) for p in df["phi"]]))
    batch = batch_from_frame(df, pred_.cfg.max_len)
    import torch

    centers = torch.from_numpy(pred["bin_centers"])
    true_bin, ok = assign_bins(batch.angles, centers)
    out_bin, _ = assign_bins(torch.from_numpy(angles.astype(np.float32)), centers)
    sel = ok.numpy().astype(bool) & batch.pad_mask.numpy()
    rel = reliability(conf[sel], (true_bin.numpy() == out_bin.numpy())[sel])
    rel["n_residues"] = int(sel.sum())
    rel["temperature"] = pred_.temperature
    if args.json:
        print(json.dumps(rel, indent=2))
    else:
        print(f"{rel['n_residues']} residues, temperature {rel['temperature']:.2f}, ECE {rel['ece']:.3f}")
        print(f"{'confidence':>12}{'n':>8}{'mean conf':>11}{'accuracy':>10}")
        for row in rel["table"]:
            print(
                f"{row['range'][0]:>5.1f}-{row['range'][1]:<6.1f}{row['n']:>8}{row['confidence']:>11.3f}{row['accuracy']:>10.3f}"
            )
    return rel


if __name__ == "__main__":
    main()
