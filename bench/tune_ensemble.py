"""Tune an ensemble's per-CDR member weights on validation loops (never on test or benchmark loops).

    .venv/bin/python bench/tune_ensemble.py RUN --data DS.parquet --split SPLITDIR [--apply] [--json]

RUN holds a network and ``members/`` (see ``loopfold.model.ensemble``). Every
network runs once on the unique validation loops; for each CDR and each
weighting (each network alone, and all equal) the templates are chosen again
and ``rmsd_loop`` averaged. The best weighting per CDR is printed and, with
``--apply``, written to RUN's ``config.json`` (``info.ensemble_weights``), and
the predicted-error model is fitted again on the validation loops for what the
ensemble now writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tables import tuning_parser, update_config

from loopfold.errors import LoopfoldError
from loopfold.evaluate.error_fit import fit_run_error_model
from loopfold.evaluate.metrics import evaluate_angles
from loopfold.evaluate.scores import unique_loops
from loopfold.model.dataset import load_part
from loopfold.model.decode import run_network
from loopfold.model.features import batch_from_frame
from loopfold.model.fv_inputs import frame_batch
from loopfold.model.templates import choose_conformations
from loopfold.pipeline.predictor import Predictor


def weightings(n: int) -> dict[str, list[float]]:
    """Each network alone, and all equal."""
    out = {f"network {k} alone": [1.0 if j == k else 0.0 for j in range(n)] for k in range(n)}
    out["equal"] = [1.0] * n
    return out


def tune(run: Path, data: Path, split: Path) -> dict:
    """Validation ``rmsd_loop`` per CDR for each weighting, and the best weighting per CDR."""
    p = Predictor(run)
    if not p.members:
        raise LoopfoldError(f"{run}: no ensemble members (a members/ folder of run folders)")
    df = unique_loops(load_part(data, split, "validation", p.cfg.max_len))
    batch = frame_batch(df, p.cfg.max_len, p.templates)[0] if p.reads_fv else batch_from_frame(df, p.cfg.max_len)
    preds = [run_network(p.model, batch, temperature=p.temperature)]
    preds += [run_network(m.model, batch, temperature=m.temperature) for m in p.members]
    lengths = batch.lengths.numpy()
    names = ["run"] + [m.name for m in p.members]
    table: dict[str, dict[str, float]] = {}
    for label, w in weightings(len(preds)).items():
        weights = np.tile(w, (len(df), 1))
        ang, xyz, _ = choose_conformations(preds, df["cdr"].tolist(), df["sequence"].tolist(), lengths, p.templates,
                                           p.cfg.identity_weight, weights)  # fmt: skip
        res = evaluate_angles(df, ang, preds[0]["sincos"], xyz)
        table[label] = {c: m["rmsd_loop"] for c, m in res["by_cdr"].items()}
    options = weightings(len(preds))
    best = {cdr: options[min(table, key=lambda k: table[k][cdr])] for cdr in table["equal"]}
    return {"run": str(run), "networks": names, "n_validation_loops": len(df), "rmsd_loop": table, "best": best}


def main(argv: list[str] | None = None) -> dict:
    args = tuning_parser(__doc__).parse_args(argv)
    try:
        res = tune(args.run, args.data, args.split)
    except LoopfoldError as exc:
        sys.exit(f"error: {exc}")
    if args.apply:
        update_config(args.run, lambda doc: doc["info"].update(ensemble_weights=res["best"]))
        # the predicted-error model must describe what the ensemble now writes: fit it again
        fit_run_error_model(args.run, load_part(args.data, args.split, "validation", Predictor(args.run).cfg.max_len))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"networks: {', '.join(res['networks'])}; {res['n_validation_loops']} validation loops")
        for label, row in res["rmsd_loop"].items():
            print(f"{label:<20}" + " ".join(f"{c} {v:.3f}" for c, v in row.items()))
        print("best: " + ", ".join(f"{c} {w}" for c, w in res["best"].items()))
    return res


if __name__ == "__main__":
    main()
