"""Accuracy benchmark: baselines and models on leakage-free splits, tables + JSON.

    python bench/accuracy.py [--data ../shared/data] [--models loopnet,bilstm,seed-lstm]
                             [--seeds 0,1,2] [--shipped src/loopfold/weights] [--out out/bench]

1. seed data, the seed's own random split (to show the leak) and 70% cluster
   splits (one per seed): per-residue-type mean, nearest neighbour, and models
   trained on that split's training part only;
2. RAB and the docking benchmark as held-out tests of the shipped model (whose
   training excluded their ids and loops >= 70% identical to theirs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.data.build import build_dataset
from loopfold.data.splits import make_split
from loopfold.data.store import read_dataset
from loopfold.model.config import defaults_for
from loopfold.train.evaluate import evaluate_baselines, evaluate_model, max_train_identity
from loopfold.train.loop import train_model, usable


def records_frame(path: Path) -> pd.DataFrame:
    import tempfile

    from loopfold.data.store import write_dataset

    recs, _ = build_dataset(path)
    with tempfile.TemporaryDirectory() as d:
        write_dataset(Path(d) / "x.parquet", recs)
        return read_dataset(Path(d) / "x.parquet")


def seed_benchmark(seed_df: pd.DataFrame, models: list[str], seeds: list[int], work: Path) -> dict:
    out: dict = {}
    splits = {"seed-random": [None]} | {"cluster70": seeds}
    for kind, seed_list in splits.items():
        rows = []
        for s in seed_list:
            if s is None:
                part = seed_df["source_split"].to_numpy()
            else:
                part = make_split(seed_df, "cluster", 0.7, (0.7, 0.2, 0.1), s)["part"].to_numpy()
            train = usable(seed_df[part == "train"], 31)
            val = usable(seed_df[part == "validation"], 31)
            test = usable(seed_df[part == "test"], 31)
            res = {"max_test_train_identity": max_train_identity(train, test), "n_test": len(test)}
            res.update({k: v for k, v in evaluate_baselines(train, test, 31).items()})
            for m in models:
                cfg = defaults_for(m)
                if m != "seed-lstm":
                    cfg = type(cfg)(**{**cfg.__dict__, "max_len": 31})
                run = work / f"{kind}-{s}-{m}"
                t0 = time.perf_counter()
                train_model(cfg, train, val, run)
                res[m] = evaluate_model(run, test)
                res[m]["train_seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(res)
            print(
                f"{kind} seed={s}: "
                + ", ".join(f"{k} {v['seed_mse']:.3f}" for k, v in res.items() if isinstance(v, dict)),
                flush=True,
            )
        names = [k for k, v in rows[0].items() if isinstance(v, dict)]
        out[kind] = {
            "max_test_train_identity": [r["max_test_train_identity"] for r in rows],
            **{n: {"seed_mse_mean": float(np.mean([r[n]["seed_mse"] for r in rows])),
                   "seed_mse_std": float(np.std([r[n]["seed_mse"] for r in rows])),
                   "phi_mae_mean": float(np.mean([r[n]["phi_mae"] for r in rows])),
                   "psi_mae_mean": float(np.mean([r[n]["psi_mae"] for r in rows]))} for n in names},
            "runs": rows,
        }  # fmt: skip
    return out


def heldout_benchmark(shipped: Path, train_path: Path, sets: dict[str, pd.DataFrame]) -> dict:
    from loopfold.model.checkpoint import load_model

    _, cfg, _ = load_model(shipped)
    manifest = pd.read_csv(shipped / "training_loops.csv")
    train_all = read_dataset(train_path)
    train = usable(train_all[train_all["loop_id"].isin(set(manifest["loop_id"]))], cfg.max_len)
    out = {}
    for name, df in sets.items():
        test = usable(df, cfg.max_len)
        res = {"n_loops": len(test), "max_test_train_identity": max_train_identity(train, test)}
        res["model"] = evaluate_model(shipped, test)
        res.update(evaluate_baselines(train, test, cfg.max_len))
        out[name] = res
        h3 = res["model"]["by_cdr"].get("H3", {})
        print(f"{name}: model seed_mse {res['model']['seed_mse']:.3f}, H3 rmsd_local {h3.get('rmsd_local')}")
    return out


def print_tables(result: dict) -> None:
    for kind, block in result.get("seed", {}).items():
        print(f"\nseed data, {kind} split (test; mean of {len(block['runs'])} split(s))")
        print(f"{'predictor':<20}{'seed_mse':>10}{'± sd':>8}{'phi_mae':>9}{'psi_mae':>9}")
        for n, v in block.items():
            if isinstance(v, dict):
                print(f"{n:<20}{v['seed_mse_mean']:>10.3f}{v['seed_mse_std']:>8.3f}"
                      f"{v['phi_mae_mean']:>9.1f}{v['psi_mae_mean']:>9.1f}")  # fmt: skip
    for name, res in result.get("heldout", {}).items():
        print(f"\n{name} (held out; max identity to training {res['max_test_train_identity']:.2f})")
        print(f"{'predictor':<20}{'CDR':>5}{'n':>5}{'seed_mse':>10}{'phi_mae':>9}{'psi_mae':>9}{'rmsd_local':>11}")
        for pred in ("model", "residue-mean", "nearest-neighbour"):
            for cdr, m in res[pred]["by_cdr"].items():
                r = "-" if m["rmsd_local"] is None else f"{m['rmsd_local']:.2f}"
                print(f"{pred:<20}{cdr:>5}{m['n_loops']:>5}{m['seed_mse']:>10.3f}{m['phi_mae']:>9.1f}"
                      f"{m['psi_mae']:>9.1f}{r:>11}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(root / ".." / "shared" / "data"))
    ap.add_argument("--models", default="loopnet,bilstm,seed-lstm")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--shipped", default=str(root / "src" / "loopfold" / "weights"))
    ap.add_argument(
        "--train-data",
        default=str(root / "out" / "rosetta.parquet"),
        help="dataset the shipped model was trained from (scripts/train_shipped.sh)",
    )
    ap.add_argument("--out", default=str(root / "out" / "bench"))
    ap.add_argument("--skip-seed", action="store_true")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"error: {data}: shared data folder not found")
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    if not args.skip_seed:
        seed_df = records_frame(data / "seed" / "pdb_martin_02.pickle")
        models = [m for m in args.models.split(",") if m]
        result["seed"] = seed_benchmark(seed_df, models, [int(s) for s in args.seeds.split(",")], work)
    sets = {
        "rab": records_frame(data / "rab" / "rab_cdr_backbones.json"),
        "docking": records_frame(data / "docking_benchmark_5_5" / "pdbs"),
    }
    result["heldout"] = heldout_benchmark(Path(args.shipped), Path(args.train_data), sets)
    (work / "accuracy.json").write_text(json.dumps(result, indent=2))
    print_tables(result)
    return result


if __name__ == "__main__":
    main()
