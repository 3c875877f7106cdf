"""Tune the template score's identity weight on validation loops (never on test or benchmark loops).

    .venv/bin/python bench/tune_identity.py RUN --data DS.parquet --split SPLITDIR [--weights 0,5,10,20,40,80]
                                            [--apply] [--json]

The network runs once; for each weight, every validation loop's template is
chosen again and ``rmsd_loop`` (loop residues superposed on themselves) is
averaged over unique loops. The weight with the lowest mean is printed, and
written to the run's ``config.json`` (``identity_weight``) with ``--apply``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tables import tuning_parser, update_config

from loopfold.errors import LoopfoldError
from loopfold.evaluate.metrics import evaluate_angles
from loopfold.evaluate.scores import unique_loops
from loopfold.model.dataset import load_part
from loopfold.model.templates import choose_conformations
from loopfold.pipeline.predictor import Predictor


def tune(run: Path, data: Path, split: Path, weights: list[float]) -> dict:
    """Mean validation ``rmsd_loop`` (overall and per CDR) for each identity weight, and the best weight."""
    pred_obj = Predictor(run)
    df = unique_loops(load_part(data, split, "validation", pred_obj.cfg.max_len))
    pred = pred_obj.predict_frame(df)[0]  # the network's inputs as prediction builds them (FvNet: Fv, templates)
    lengths = (df["stem_n"].str.len() + df["sequence"].str.len() + df["stem_c"].str.len()).to_numpy()
    rows = {}
    for w in weights:
        ang, xyz, _ = choose_conformations(pred, df["cdr"].tolist(), df["sequence"].tolist(), lengths,
                                           pred_obj.templates, w)  # fmt: skip
        res = evaluate_angles(df, ang, pred["sincos"], xyz)
        rows[str(w)] = {"rmsd_loop": res["rmsd_loop"], "by_cdr": {c: m["rmsd_loop"] for c, m in res["by_cdr"].items()}}
    best = min(weights, key=lambda w: rows[str(w)]["rmsd_loop"])
    return {"run": str(run), "n_validation_loops": len(df), "weights": rows, "best": best}


def main(argv: list[str] | None = None) -> dict:
    ap = tuning_parser(__doc__)
    ap.add_argument("--weights", default="0,5,10,20,40,80")
    args = ap.parse_args(argv)
    try:
        weights = [float(x) for x in args.weights.split(",")]
    except ValueError:
        sys.exit(f"error: --weights {args.weights!r}: expected comma-separated numbers")
    try:
        res = tune(args.run, args.data, args.split, weights)
    except LoopfoldError as exc:
        sys.exit(f"error: {exc}")
    if args.apply:
        update_config(args.run, lambda doc: doc["config"].update(identity_weight=res["best"]))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for w, r in res["weights"].items():
            print(f"identity_weight {w:>6}: validation rmsd_loop {r['rmsd_loop']:.3f} Å")
        print(f"best: {res['best']}" + (" (written to config.json)" if args.apply else ""))
    return res


if __name__ == "__main__":
    main()
