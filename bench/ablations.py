"""FvNet ablations: each design choice as a measured gain on the held-out sets; tables + JSON.

    .venv/bin/python bench/ablations.py [--data ../shared/data] [--out out/bench] [--only NAME ...]
                                        [--rosetta out/rosetta.parquet --split out/rosetta_split]

Every variant is trained on the shipped model's data and split, as
``scripts/train_shipped.sh`` makes them (Rosetta antibody database, North CDRs
numbered from sequence; RAB, docking and DeepAb test ids and every loop >= 70%
identical to one of their loops excluded; 70% cluster split, seed 0; made here
when absent) and scored as ``bench/shipped.py`` scores the shipped
model: docking benchmark 5.5 and RAB structures, unique antibodies, loop
residues superposed on themselves, beside the identity-template baseline.
Variants: LoopNet (retrieval: the shipped model before issue 9), FvNet, FvNet
without the Fv context, without both structural losses (the loop RMSD and CA
distances of its own rebuilt structure, and the expected RMSD of the template
it would choose: angle and bin terms only), without templates as input; and
the shipped ensemble: FvNet without template input and LoopNet (2 networks
instead of 1) with per-CDR weights tuned on validation loops
(``bench/tune_ensemble.py``).
Beside the held-out figures, each
variant's validation ``rmsd_loop`` (all validation loops; what the shipped
choice was made on) and the output it writes (``info.output``). Runs are
kept under ``OUT/ablations`` and reused. Writes ``OUT/ablations.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from accuracy import build_data
from shipped import exclusion_sequences, score_model
from tables import write_outputs

from loopfold.data.splits import read_split
from loopfold.data.store import read_dataset
from loopfold.evaluate.scores import unique_loops
from loopfold.model.config import defaults_for
from loopfold.model.context import with_partners
from loopfold.model.dataset import usable
from loopfold.train.loop import train_model

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "loopnet (retrieval)": ("loopnet", {"epochs": 30}),
    "fvnet": ("fvnet", {}),
    "fvnet, no Fv context": ("fvnet", {"use_context": False}),
    "fvnet, no structural losses": ("fvnet", {"structure_weight": 0.0, "rank_weight": 0.0}),
    "fvnet, no template input": ("fvnet", {"use_templates": False}),
}
ENSEMBLE = "fvnet (no template input) + loopnet ensemble, as shipped"
SHIPPED_FVNET = "fvnet_no_template_input"  # the FvNet variant the shipped ensemble uses (chosen on validation)
CDRS_SHOWN = ("H1", "H2", "H3", "L1", "L2", "L3")


def shipped_split(data: Path, paths: dict[str, Path], rosetta: Path, split: Path) -> None:
    """The shipped model's dataset and split (``scripts/train_shipped.sh``), made with the CLI when absent."""
    exe = str(Path(sys.executable).with_name("loopfold"))
    if not rosetta.exists():
        subprocess.run([exe, "data", "build", str(data / "rosetta_antibody_db/antibody/antibody_database"), "--out",
                        str(rosetta)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    if not (split / "manifest.csv").exists():
        subprocess.run([exe, "data", "split", str(rosetta), "--by", "cluster", "--identity", "0.7",
                        "--seed", "0", "--exclude-ids", str(paths["rab"]), "--exclude-ids", str(paths["docking"]),
                        "--exclude-ids", str(data / "deepab" / "TestSetList.txt"), "--out", str(split)],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip


def markdown(result: dict) -> str:
    lines = []
    for set_name in result["sets"]:
        lines += [f"\n### {set_name} ({result['sets'][set_name]} unique loops): rmsd_loop (Å)\n",
                  "| variant | " + " | ".join(CDRS_SHOWN) + " | H3 >= 16 | H3 phi / psi MAE | Spearman H3 | "
                  "validation rmsd_loop (output) | train s |",
                  "| --- |" + " --- |" * (len(CDRS_SHOWN) + 5)]  # fmt: skip
        rows = list(result["variants"].items())
        first = next(iter(result["variants"].values()))[set_name]
        rows.append(("identity template", {set_name: {"model": first["identity template"], "model_long_h3": None}}))
        for name, res in rows:
            r = res[set_name]
            by = r["model"]["by_cdr"]
            cells = [f"{by[c]['rmsd_loop']:.2f}" if c in by and by[c]["rmsd_loop"] is not None else "-"
                     for c in CDRS_SHOWN]  # fmt: skip
            long = r.get("model_long_h3")
            h3 = by.get("H3", {})
            err = (r.get("predicted_error") or {}).get("by_cdr", {}).get("H3", {}).get("spearman")
            cells += [f"{long['rmsd_loop']:.2f}" if long else "-",
                      f"{h3['phi_mae']:.1f} / {h3['psi_mae']:.1f}" if h3 else "-",
                      "-" if err is None else f"{err:.2f}", res.get("validation", "-"),
                      str(res.get("train_seconds", "-"))]  # fmt: skip
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"))
    ap.add_argument("--only", action="append", default=[], help="variant name (repeatable; default all)")
    ap.add_argument("--rosetta", default=str(ROOT / "out" / "rosetta.parquet"), help="the shipped training dataset")
    ap.add_argument("--split", default=str(ROOT / "out" / "rosetta_split"), help="its split folder")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    if not data.is_dir():
        sys.exit(f"error: {data}: shared data folder not found")
    paths = build_data(data, out / "data")
    work = out / "ablations"
    shipped_split(data, paths, Path(args.rosetta), Path(args.split))
    split = read_split(args.split)
    rosetta = with_partners(read_dataset(args.rosetta))  # partners from the whole dataset, not one part
    part = rosetta["loop_id"].map(dict(zip(split["loop_id"], split["part"], strict=True)))
    train, val = usable(rosetta[part == "train"], 40), usable(rosetta[part == "validation"], 40)
    rab_json, docking = read_dataset(paths["rab"]), read_dataset(paths["docking"])
    sets = {
        "Docking benchmark 5.5": unique_loops(usable(docking, 40)),
        "RAB (structures in the Rosetta database)": unique_loops(
            usable(rosetta[rosetta["pdb_id"].isin(set(rab_json["pdb_id"]))], 40)
        ),
    }
    refs = {"RAB": exclusion_sequences(rab_json), "docking benchmark": exclusion_sequences(docking)}
    result: dict = {"sets": {k: len(v) for k, v in sets.items()}, "n_train": len(train), "n_val": len(val),
                    "variants": {}}  # fmt: skip
    for name, (model, overrides) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        run = work / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        t0 = time.perf_counter()
        if not (run / "curve.png").exists():
            print(f"training {name}", flush=True)
            train_model(replace(defaults_for(model), **overrides), train, val, run)
        seconds = round(time.perf_counter() - t0, 1)
        result["variants"][name] = score_model(name, run, rosetta, sets, refs)
        result["variants"][name]["train_seconds"] = seconds if seconds > 60 else _logged_seconds(run)
        result["variants"][name]["validation"] = _validation(run, val)
        write_outputs(out, "ablations", result, markdown(result))
    if not args.only or ENSEMBLE in args.only:
        run = _ensemble(work, args.rosetta, args.split)
        result["variants"][ENSEMBLE] = score_model(ENSEMBLE, run, rosetta, sets, refs)
        result["variants"][ENSEMBLE]["validation"] = _validation(run, val)
        write_outputs(out, "ablations", result, markdown(result))
    return result


def _ensemble(work: Path, rosetta: str, split: str) -> Path:
    """The shipped ensemble: FvNet (no template input) with LoopNet as a member, weights per CDR tuned
    on validation loops."""
    import shutil

    from tune_ensemble import main as tune

    run = work / "shipped_ensemble"
    if not (run / "config.json").exists():
        (run / "members").mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "config.json", "training_loops.csv", "templates.safetensors"):
            shutil.copy(work / SHIPPED_FVNET / f, run / f)
        shutil.copytree(work / "loopnet_retrieval", run / "members" / "loopnet", dirs_exist_ok=True)
        tune([str(run), "--data", rosetta, "--split", split, "--apply"])
    return run


def _validation(run: Path, val: pd.DataFrame) -> str:
    """Validation ``rmsd_loop`` of what the run writes, and that output."""
    from loopfold.evaluate.metrics import evaluate_angles
    from loopfold.pipeline.predictor import Predictor

    p = Predictor(run)
    pred, angles, coords, _ = p.predict_frame(val)
    r = evaluate_angles(val.reset_index(drop=True), angles, pred["sincos"], coords)["rmsd_loop"]
    return f"{r:.3f} ({p.info.output or 'template'})"


def _logged_seconds(run: Path) -> float:
    """Training time of an earlier run, from its metrics log."""
    log = pd.read_json(run / "metrics.jsonl", lines=True)
    return round(float(log["seconds"].sum()), 1)


if __name__ == "__main__":
    main()
