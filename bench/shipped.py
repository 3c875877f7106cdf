"""Shipped models side by side on the held-out sets, with the field's metrics; tables + JSON.

    .venv/bin/python bench/shipped.py [--data ../shared/data] [--out out/bench]
                                      [--model NAME=RUN_DIR ...]   # default: the shipped weights

Sets (North CDRs, 3 stems, numbered from sequence with validation, unique loops):

* docking benchmark 5.5: every antibody once (bound and unbound copies of one
  antibody share their loop windows, which are scored once);
* RAB: the Rosetta Antibody Benchmark antibodies whose structures are in the
  Rosetta antibody database (their ids are excluded from training).

Per model and set, per CDR: ``rmsd_loop``, ``rmsd_stem``, loop phi/psi MAE,
``seed_mse`` (loop residues), window ``rmsd_local``, and H3 of 16 residues or
more apart; beside each model the
residue-mean and identity-template baselines fitted on the loops that model
may copy (its template library, the training part; the identity template uses
the same template geometry). Leakage
per model: training loops >= 70% identical to a RAB loop (IMGT cuts as RAB ships
them; training loops re-cut under IMGT) or a docking loop (same CDR), and
templates inside the evaluation set. Writes ``OUT/shipped.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from accuracy import build_data
from measures import error_report
from tables import write_outputs

from loopfold.data.splits import Exclusions, similar_to_exclusions
from loopfold.data.store import read_dataset
from loopfold.evaluate.scores import evaluate_baselines, evaluate_model, max_train_identity, unique_loops
from loopfold.model.dataset import usable
from loopfold.model.templates import template_ids
from loopfold.pipeline.predictor import MANIFEST, Predictor

ROOT = Path(__file__).resolve().parents[1]
LONG_H3 = 16
METRICS = ("rmsd_loop", "rmsd_stem", "phi_mae", "psi_mae", "seed_mse", "rmsd_local")


def exclusion_sequences(df: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """Loop sequences per (definition, CDR) of a benchmark dataset."""
    return {(str(d), str(c)): g["sequence"].tolist() for (d, c), g in df.groupby(["definition", "cdr"])}


def score_model(name: str, run: Path, rosetta: pd.DataFrame, sets: dict[str, pd.DataFrame], refs: dict) -> dict:
    """One model on every set, with baselines fitted on its own training loops, and its leakage."""
    predictor = Predictor(run)
    ids = set(pd.read_csv(run / MANIFEST)["loop_id"])
    learnt = usable(rosetta[rosetta["loop_id"].isin(ids)], predictor.cfg.max_len)  # training + validation
    # the baselines get the loops the model may copy (its template library: the training part)
    train = rosetta[rosetta["loop_id"].isin(template_ids(predictor.templates))]
    out: dict = {"run": str(run), "n_learnt": len(learnt), "n_templates": len(train), "leakage": {}}
    for ref_name, seqs in refs.items():
        out["leakage"][f"training loops >= 70% identical to a {ref_name} loop"] = int(
            similar_to_exclusions(learnt, Exclusions(frozenset(), seqs), 0.7).sum()
        )
    for set_name, df in sets.items():
        # max identity of a test loop to any loop the model learnt from (same CDR and definition)
        res = {"n_loops": len(df), "max_test_train_identity": max_train_identity(learnt, df)}
        res.update(evaluate_baselines(train, df, predictor.cfg.max_len))
        res["model"] = evaluate_model(predictor, df)
        long_h3 = df[(df["cdr"] == "H3") & (df["sequence"].str.len() >= LONG_H3)].reset_index(drop=True)
        res["model_long_h3"] = evaluate_model(predictor, long_h3) if len(long_h3) else None
        res["predicted_error"] = error_report(predictor, df)
        out[set_name] = res
        print(f"{name} on {set_name}: H3 rmsd_loop {res['model']['by_cdr']['H3']['rmsd_loop']:.2f}", flush=True)
    return out


def markdown(result: dict) -> str:
    lines = []
    for set_name in result["sets"]:
        lines += [f"\n### {set_name} ({result['sets'][set_name]} unique loops)\n",
                  "| predictor | CDR | n | " + " | ".join(METRICS) + " |",
                  "| --- | --- | --- |" + " --- |" * len(METRICS)]  # fmt: skip
        for model, res in result["models"].items():
            r = res[set_name]
            for pred in ("model", "identity template", "residue-mean"):
                label = model if pred == "model" else f"{pred} ({model}'s templates)"
                for cdr, m in r[pred]["by_cdr"].items():
                    cells = ["-" if m[k] is None else (f"{m[k]:.3f}" if k == "seed_mse" else f"{m[k]:.2f}")
                             for k in METRICS]  # fmt: skip
                    lines.append(f"| {label} | {cdr} | {m['n_rmsd']} | " + " | ".join(cells) + " |")
    lines += [f"\n### CDR-H3 of {LONG_H3} residues or more\n", "| model | set | n | rmsd_loop | rmsd_stem |",
              "| --- | --- | --- | --- | --- |"]
    for model, res in result["models"].items():
        for set_name in result["sets"]:
            m = res[set_name]["model_long_h3"]
            if m:
                lines.append(f"| {model} | {set_name} | {m['n_rmsd']} | {m['rmsd_loop']:.2f} | {m['rmsd_stem']:.2f} |")
    lines += ["\n### Predicted error (`rmsd_predicted`) against the true `rmsd_loop`\n",
              "| model | set | loops | Spearman, all | Spearman, H3 | H3 predicted / observed mean (Å) |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for model, res in result["models"].items():
        for set_name in result["sets"]:
            e = res[set_name].get("predicted_error")
            if e:
                h3 = e["by_cdr"].get("H3", {})
                lines.append(f"| {model} | {set_name} | {e['n']} | {_num(e['spearman'])} | {_num(h3.get('spearman'))} "
                             f"| {_num(h3.get('predicted'))} / {_num(h3.get('observed'))} |")  # fmt: skip
    lines += ["\n### Leakage\n", "| model | check | count |", "| --- | --- | --- |"]
    for model, res in result["models"].items():
        for check, n in res["leakage"].items():
            lines.append(f"| {model} | {check} | {n} |")
        for set_name in result["sets"]:
            r = res[set_name]
            lines.append(f"| {model} | {set_name}: templates in the evaluation set | "
                         f"{r['model']['templates_in_evaluation_set']} |")  # fmt: skip
            lines.append(f"| {model} | {set_name}: max test-train identity | {r['max_test_train_identity']:.2f} |")
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"))
    ap.add_argument("--model", action="append", default=[], help="NAME=RUN_DIR (repeatable)")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    if not data.is_dir():
        sys.exit(f"error: {data}: shared data folder not found")
    if any("=" not in m for m in args.model):
        sys.exit("error: --model takes NAME=RUN_DIR")
    models = dict(m.split("=", 1) for m in args.model) or {"shipped": str(ROOT / "src/loopfold/weights")}
    paths = build_data(data, out / "data")
    rosetta = read_dataset(paths["rosetta"])
    rab_json = read_dataset(paths["rab"])
    docking = read_dataset(paths["docking"])
    rab_ids = set(rab_json["pdb_id"])
    sets = {
        "Docking benchmark 5.5": unique_loops(usable(docking, 40)),
        "RAB (structures in the Rosetta database)": unique_loops(usable(rosetta[rosetta["pdb_id"].isin(rab_ids)], 40)),
    }
    refs = {"RAB": exclusion_sequences(rab_json), "docking benchmark": exclusion_sequences(docking)}
    result = {
        "sets": {k: len(v) for k, v in sets.items()},
        "rab_antibodies_with_structures": int(sets["RAB (structures in the Rosetta database)"]["pdb_id"].nunique()),
        "models": {name: score_model(name, Path(run), rosetta, sets, refs) for name, run in models.items()},
    }
    write_outputs(out, "shipped", result, markdown(result))
    return result


if __name__ == "__main__":
    main()
