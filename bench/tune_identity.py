"""Tune the template score's identity weight on validation loops (never on test or benchmark loops).

    .venv/bin/python bench/tune_identity.py RUN --data DS.parquet --split SPLITDIR [--weights 0,5,10,20,40,80]
                                            [--apply] [--json]

The network runs once; for each weight, every validation loop's template is
chosen again and ``rmsd_loop`` (loop residues superposed on themselves) is
averaged over unique loops. The weight with the lowest mean is printed, and
written to the run's ``config.json`` (``identity_weight``) with ``--apply``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from loopfold.errors import LoopfoldError
from loopfold.io.atomic import write_text
from loopfold.model.checkpoint import CONFIG
from loopfold.model.templates import choose_conformations
from loopfold.predict import Predictor
from loopfold.train.evaluate import unique_loops
from loopfold.train.loop import load_part
from loopfold.train.metrics import evaluate_angles


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--weights", default="0,5,10,20,40,80")
    ap.add_argument("--apply", action="store_true", help="write the best weight into RUN/config.json")
    ap.add_argument("--json", action="store_true")
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
        doc = json.loads((args.run / CONFIG).read_text())
        doc["config"]["identity_weight"] = res["best"]
        write_text(args.run / CONFIG, json.dumps(doc, indent=2) + "\n")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for w, r in res["weights"].items():
            print(f"identity_weight {w:>6}: validation rmsd_loop {r['rmsd_loop']:.3f} Å")
        print(f"best: {res['best']}" + (" (written to config.json)" if args.apply else ""))
    return res


if __name__ == "__main__":
    main()
