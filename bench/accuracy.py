"""Accuracy benchmark: baselines and models on leakage-free splits; tables + JSON.

    .venv/bin/python bench/accuracy.py [--data ../shared/data] [--out out/bench] [--seeds 0,1,2]

1. seed data (the seed's own pickle): its own random split (to show the leak)
   and 70%-identity cluster splits, one per seed: per-residue-type mean,
   identity template, seed-lstm, bilstm, loopnet, each trained on that split's
   training part only; and seed-lstm with each defect switched off in turn;
2. all CDRs: Rosetta structures + PyIgClassify angle tables, benchmark ids and
   loops >= 70% identical to benchmark loops excluded, 70% cluster split;
3. RAB (IMGT CDRs + 2 anchors): a loopnet trained the same way on Rosetta loops
   cut with the IMGT definition and 2 stems;
The shipped model on the docking benchmark and on RAB structures is
``bench/shipped.py``.
Writes ``OUT/accuracy.json`` and ``OUT/accuracy.md``. Trained runs are kept
under OUT and reused when the benchmark is run again (only evaluation is redone).
Models' rows score the written conformation; "(mean head)" rows score the
sin/cos head's mean angles rebuilt with ideal geometry. Metrics are over loop
residues (``rmsd_loop``, ``rmsd_stem``, phi/psi MAE, ``seed_mse``); the seed
tables also give ``seed_mse_window``, the seed's own metric over its windows. The seed-lstm defect
variants stop after 20 epochs (patience 5) and the LSTMs on all CDRs after 10,
to keep the benchmark near an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tables import write_outputs

from loopfold.data.splits import make_split, read_exclusions
from loopfold.data.store import read_dataset
from loopfold.evaluate.scores import evaluate_baselines, evaluate_model, max_train_identity, unique_loops
from loopfold.model.config import defaults_for
from loopfold.model.dataset import usable
from loopfold.train.loop import train_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("loopnet", "bilstm", "seed-lstm")
SEED_VARIANTS = {
    "seed-lstm (all defects)": {},
    "seed-lstm, no bottleneck": {"seed_bottleneck": False},
    "seed-lstm, backward read at residue 1": {"seed_backward_at_last": False},
    "seed-lstm, correct mask": {"seed_leaky_mask": False},
    "seed-lstm, all three fixed": {"seed_bottleneck": False, "seed_backward_at_last": False, "seed_leaky_mask": False},
}


def loopfold(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).with_name("loopfold")), *args], check=True, stdout=subprocess.DEVNULL)


def build_data(data: Path, d: Path) -> dict[str, Path]:
    """Every dataset the benchmark needs, built with the CLI (cached in ``d``)."""
    d.mkdir(parents=True, exist_ok=True)
    jobs = {
        "seed": [str(data / "seed" / "pdb_martin_02.pickle")],
        "rosetta": [str(data / "rosetta_antibody_db/antibody/antibody_database")],
        "rosetta_imgt": [str(data / "rosetta_antibody_db/antibody/antibody_database"), "--definition", "imgt",
                         "--stems", "2"],
        "pyigclassify": [str(data / "pyigclassify/database/csv")],
        "rab": [str(data / "rab/rab_cdr_backbones.json")],
        "docking": [str(data / "docking_benchmark_5_5/pdbs")],
    }  # fmt: skip
    paths = {}
    for name, args in jobs.items():
        paths[name] = d / f"{name}.parquet"
        if not paths[name].exists():
            loopfold("data", "build", args[0], "--out", str(paths[name]), *args[1:])
    paths["all_cdrs"] = d / "all_cdrs.parquet"
    if not paths["all_cdrs"].exists():
        loopfold("data", "merge", str(paths["rosetta"]), str(paths["pyigclassify"]), "--out", str(paths["all_cdrs"]))
    return paths


def score_split(df: pd.DataFrame, part: np.ndarray, models: dict[str, object], work: Path, max_len: int) -> dict:
    """Baselines and models trained on ``part == 'train'``, scored on ``part == 'test'``."""
    train = usable(df[part == "train"], max_len)
    val = usable(df[part == "validation"], max_len)
    test = unique_loops(usable(df[part == "test"], max_len))  # each antibody chain's loops once
    res: dict = {"n_train": len(train), "n_test": len(test), "max_test_train_identity": max_train_identity(train, test)}
    res.update(evaluate_baselines(train, test, max_len))
    for name, cfg in models.items():
        run = work / name.replace(" ", "_").replace(",", "")
        t0 = time.perf_counter()
        if not (run / "curve.png").exists():
            train_model(cfg, train, val, run)
        res[name] = evaluate_model(run, test)
        res[name]["train_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"  {name}: seed_mse_window {res[name]['seed_mse_window']:.3f} ({res[name]['train_seconds']} s)",
              flush=True)  # fmt: skip
    return res


def seed_models(names: tuple[str, ...] = MODELS) -> dict:
    return {m: replace(defaults_for(m), max_len=31) for m in names}


def with_mean_heads(res: dict) -> dict:
    """Predictor entries plus a '(mean head)' entry for each model whose written conformation
    differs from its mean head (models that choose templates)."""
    out = {}
    for k, v in res.items():
        if isinstance(v, dict):
            out[k] = v
            if "mean_head" in v and v.get("template_fraction", 0) > 0:
                out[f"{k} (mean head)"] = v["mean_head"]
    return out


def summary(rows: list[dict]) -> dict:
    rows = [with_mean_heads(r) | {"max_test_train_identity": r["max_test_train_identity"]} for r in rows]
    names = [k for k, v in rows[0].items() if isinstance(v, dict)]
    out = {"max_test_train_identity": [r["max_test_train_identity"] for r in rows]}
    for n in names:
        vals = {m: [r[n][m] for r in rows] for m in ("seed_mse_window", "seed_mse", "phi_mae", "psi_mae")}
        out[n] = {f"{m}_mean": float(np.mean(v)) for m, v in vals.items()}
        out[n]["seed_mse_window_sd"] = float(np.std(vals["seed_mse_window"]))
    return out


def markdown(result: dict) -> str:
    lines = []
    for kind, block in result["seed"].items():
        s = summary(block["runs"])
        lines += [f"\n### Seed data, {kind} (test part; {len(block['runs'])} split(s), max test-train identity "
                  f"{max(s['max_test_train_identity']):.2f})\n",
                  "| predictor | seed_mse_window (mean ± sd) | seed_mse (loop) | phi_mae (loop) | "
                  "psi_mae (loop) |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for n, v in s.items():
            if isinstance(v, dict):
                lines.append(f"| {n} | {v['seed_mse_window_mean']:.3f} ± {v['seed_mse_window_sd']:.3f} | "
                             f"{v['seed_mse_mean']:.3f} | {v['phi_mae_mean']:.1f} | "
                             f"{v['psi_mae_mean']:.1f} |")  # fmt: skip
    for name, res in result["cdr"].items():
        lines += [f"\n### {name} (test: {res['n_test']} loops, train {res['n_train']}, max test-train identity "
                  f"{res['max_test_train_identity']:.2f})\n",
                  "| predictor | CDR | n | rmsd_loop | rmsd_stem | phi_mae | psi_mae | seed_mse | rmsd_local (n) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for pred, m in with_mean_heads(res).items():
            for cdr, c in m["by_cdr"].items():
                rl, rs = ("-" if c[k] is None else f"{c[k]:.2f}" for k in ("rmsd_loop", "rmsd_stem"))
                r = "-" if c["rmsd_local"] is None else f"{c['rmsd_local']:.2f} ({c['n_rmsd']})"
                lines.append(f"| {pred} | {cdr} | {c['n_loops']} | {rl} | {rs} | {c['phi_mae']:.1f} | "
                             f"{c['psi_mae']:.1f} | {c['seed_mse']:.3f} | {r} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"))
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    if not data.is_dir():
        sys.exit(f"error: {data}: shared data folder not found")
    t0 = time.perf_counter()
    paths = build_data(data, out / "data")
    result: dict = {"seed": {}, "cdr": {}}
    excl_files = [paths["rab"], paths["docking"], data / "deepab" / "TestSetList.txt"]
    excl = read_exclusions(excl_files)
    print("RAB: loopnet trained on Rosetta loops cut with IMGT CDRs + 2 stems", flush=True)
    imgt = read_dataset(paths["rosetta_imgt"])
    part = make_split(imgt, "cluster", 0.7, (0.7, 0.2, 0.1), 0, excl)["part"].to_numpy()
    imgt_run = out / "rab-imgt-loopnet"
    if not (imgt_run / "curve.png").exists():
        train_model(defaults_for("loopnet"), usable(imgt[part == "train"], 40), usable(imgt[part == "validation"], 40),
                    imgt_run)  # fmt: skip
    rab = unique_loops(usable(read_dataset(paths["rab"]), 40))
    train = usable(imgt[part == "train"], 40)
    res = {"n_train": len(train), "n_test": len(rab), "max_test_train_identity": max_train_identity(train, rab)}
    res.update(evaluate_baselines(train, rab, 40))
    res["loopnet"] = evaluate_model(imgt_run, rab)
    result["cdr"]["RAB (held out), IMGT loopnet"] = res
    (out / "accuracy.json").write_text(json.dumps(result, indent=2))  # partial results
    seed_df = read_dataset(paths["seed"])
    (out / "accuracy.json").write_text(json.dumps(result, indent=2))  # partial results
    print("seed data, the seed's own random split", flush=True)
    rows = [score_split(seed_df, seed_df["source_split"].to_numpy(), seed_models(), out / "seed-random", 31)]
    result["seed"]["seed's random split"] = {"runs": rows, "summary": summary(rows)}
    rows = []
    for s in [int(x) for x in args.seeds.split(",")]:
        print(f"seed data, cluster split at 70% identity, seed {s}", flush=True)
        part = make_split(seed_df, "cluster", 0.7, (0.7, 0.2, 0.1), s)["part"].to_numpy()
        rows.append(score_split(seed_df, part, seed_models(), out / f"seed-cluster-{s}", 31))
    result["seed"]["70% cluster split"] = {"runs": rows, "summary": summary(rows)}
    (out / "accuracy.json").write_text(json.dumps(result, indent=2))  # partial results
    print("seed-lstm defects, cluster split seed 0", flush=True)
    part = make_split(seed_df, "cluster", 0.7, (0.7, 0.2, 0.1), 0)["part"].to_numpy()
    # the all-defects run is the cluster split's own seed-lstm; the variants stop earlier (time)
    variants = {n: replace(defaults_for("seed-lstm"), epochs=20, patience=5, **kw) for n, kw in SEED_VARIANTS.items()}
    variants["seed-lstm (all defects)"] = defaults_for("seed-lstm")
    work = out / "seed-defects"
    work.mkdir(parents=True, exist_ok=True)
    shared = work / "seed-lstm_(all_defects)"
    if not shared.exists():
        shared.symlink_to((out / "seed-cluster-0" / "seed-lstm").resolve())
    rows = [score_split(seed_df, part, variants, work, 31)]
    result["seed"]["70% cluster split, seed-lstm defects (seed 0)"] = {"runs": rows, "summary": summary(rows)}

    (out / "accuracy.json").write_text(json.dumps(result, indent=2))  # partial results
    print("all CDRs: Rosetta + PyIgClassify, benchmark loops excluded, 70% cluster split", flush=True)
    all_df = read_dataset(paths["all_cdrs"])
    part = make_split(all_df, "cluster", 0.7, (0.7, 0.2, 0.1), 0, excl)["part"].to_numpy()
    models = {m: replace(defaults_for(m), max_len=40, epochs=10 if m != "loopnet" else 60) for m in MODELS}
    result["cdr"]["All CDRs, Rosetta + PyIgClassify, 70% cluster split"] = score_split(
        all_df, part, models, out / "all-cdrs", 40
    )
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_outputs(out, "accuracy", result, markdown(result))
    return result


if __name__ == "__main__":
    main()
