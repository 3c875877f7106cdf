"""Fit and check the candidate ranker (:mod:`loopfold.fv.ranking`) of a run.

    .venv/bin/python bench/ranker.py RUN --data ../shared/data --split RUN_SPLIT [--train 300]
        [--validation 150] [--k 20] [--apply] [--out out/bench]

Training rows: loops of the split's training part, from up to --train Fv
structures, predicted as if new: no template at least 70% identical to the loop
(itself included) may be a candidate, and the structures' own and related
entries (H3 >= 70% identical) are left out of the framework library. Each loop's
top --k candidates are placed in the modelled Fv (:func:`place_candidates`);
the target is a candidate's ``rmsd_frame`` (its loop residues, placed, not closed,
after superposing the model chain's framework on the crystal's). One ridge model
per CDR. Validation rows: loops of the validation part (up to --validation
structures), predicted as a user would. A CDR keeps its model only when the
ranker's choice beats the network's first choice on validation by
``MIN_GAIN`` Å. The ranker is fitted on paired Fvs; it also ranks the loops of a
nanobody, or of a heavy chain alone, only when it loses on none of the CDRs of
those validation structures (``sabdab_extra``'s nanobodies and heavy chains).
Reported per CDR on validation: first choice, the ranker's choice, the best of
the K, and the Spearman correlation with the observed ``rmsd_frame`` of the
chosen candidate's predicted value against the error model's
``rmsd_predicted``; and the standardised coefficients (feature importance).
``--apply`` writes RUN/ranker.json. Writes ``OUT/ranker.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from fv import part_loops, validation_items, without_relatives
from recent import test_items
from tables import write_outputs

from loopfold.constants import CDRS
from loopfold.fv.assemble import FrameworkBuilder
from loopfold.fv.build import LoopWindow, frame_ca, framework_placed
from loopfold.fv.library import LIBRARY_FILE, load_library
from loopfold.fv.ranking import FEATURES, RANKER_FILE, Ranker, columns, first_loop_atoms, others_of, place_candidates
from loopfold.io.fasta import AntibodyInput
from loopfold.pipeline.batch import predict_antibodies
from loopfold.pipeline.predictor import Predictor
from loopfold.structure.superpose import kabsch

ROOT = Path(__file__).resolve().parents[1]
MIN_GAIN = 0.02  # Å of mean rmsd_frame on validation loops a CDR's ranker must gain
RIDGE = 30.0  # chosen on validation loops (1 and 30 tried, K 20 and 40: K 20, 30 did best on H3 and H1)


def kind_items(data: Path, split: Path, part: str, kind: str) -> tuple[list[dict], list[str], set]:
    """The ``sabdab_extra`` structures of a kind (``nanobody``, ``heavy_backbone``) with a loop in the
    split's part (as ``fv.validation_items``)."""
    loops = part_loops(split, part)
    ids = {pdb for pdb, _ in loops}
    items = test_items(data, "", "", keep=lambda r: r["kind"] == kind and r["pdb"] in ids)
    return items, sorted(ids), loops


def first_window(frame, lp, frames) -> LoopWindow | None:  # noqa: ANN001
    """A loop's first-choice window as the pipeline first places it (before the ranker chooses)."""
    cand = lp.candidates
    if cand is None or lp.start is None:
        return None
    lw = LoopWindow(lp.cdr, lp.chain, lp.start, len(lp.stem_n), len(lp.sequence), len(lp.stem_c), cand.windows[0],
                    None)  # fmt: skip
    if frames is None or lp.cdr not in frames.cdrs:
        return lw
    return framework_placed(lw, frames.get(cand.ids[0]), frame_ca(frame, lp.chain), frames.radius)[0]


def candidate_rows(pred: Predictor, lib, items: list[dict], ids: list[str], wanted: set, k: int  # noqa: ANN001
                   ) -> pd.DataFrame:  # fmt: skip
    """Per candidate of every wanted loop: its features, its target and the loop's error-model value."""
    rows = []
    for lo in range(0, len(items), 100):  # relatives left out of the library per 100 structures
        its = items[lo : lo + 100]
        builder = FrameworkBuilder(without_relatives(lib, its, ids))
        abs_ = [AntibodyInput(it["name"], it["chains"]["H"][0].sequence,
                              it["chains"]["L"][0].sequence if "L" in it["chains"] else None)
                for it in its]  # fmt: skip
        for it, res in zip(its, predict_antibodies(pred, abs_, fv=builder, top_k=k), strict=True):
            if res.fv is None:
                continue
            vhh = {"nanobody": True, "heavy": False}.get(res.result.get("mode", ""))
            frame = builder.frame(it["name"], {c: (bb.sequence, dom) for c, (bb, dom) in it["chains"].items()},
                                  nanobody=vhh)  # fmt: skip
            first = first_loop_atoms(frame, [first_window(frame, lp, pred.template_frames) for lp in res.loops])
            for m, lp in enumerate(res.loops):
                cand = lp.candidates
                if cand is None or lp.start is None or (it["name"], lp.cdr) not in wanted or len(cand.ids) < 2:
                    continue
                bb = it["chains"][lp.chain][0]
                n = len(lp.sequence)
                true = bb.coords[lp.start : lp.start + n]
                fw = np.isfinite(frame.coords[lp.chain]).all((1, 2)) & np.isfinite(bb.coords).all((1, 2))
                if not np.isfinite(true).all() or fw.sum() < 20:
                    continue
                rot, tr = kabsch(frame.coords[lp.chain][fw].reshape(-1, 3), bb.coords[fw].reshape(-1, 3))
                lw = LoopWindow(lp.cdr, lp.chain, lp.start, len(lp.stem_n), n, len(lp.stem_c), cand.windows[0], None)
                placed, x = place_candidates(frame, lw, cand, pred.template_frames, others_of(first, m))
                for j, w in enumerate(placed):
                    p = w.window[lw.n_stem : lw.n_stem + n] @ rot.T + tr
                    rows.append({"loop": f"{it['name']}_{lp.cdr}", "cdr": lp.cdr, "j": j,
                                 "target": float(np.sqrt(((p - true) ** 2).sum(-1).mean())),
                                 "rmsd_predicted": lp.rmsd_predicted, **dict(zip(FEATURES, x[j], strict=True))})
    return pd.DataFrame(rows)


def design(df: pd.DataFrame) -> np.ndarray:
    """The ranker's :func:`columns` of every row, loop by loop (rows of a loop are contiguous)."""
    x = df[list(FEATURES)].to_numpy(float)
    out = np.empty((len(x), 2 * len(FEATURES)))
    for idx in df.groupby("loop", sort=False).indices.values():
        out[idx] = columns(x[idx])
    return out


def fit(train: pd.DataFrame, k: int) -> Ranker:
    """Ridge per CDR on the columns standardised over all training rows."""
    x = design(train)
    mean, scale = x.mean(0), np.where(x.std(0) > 1e-9, x.std(0), 1.0)
    coef = {}
    for cdr, g in train.groupby("cdr"):
        z = (x[train.index.get_indexer(g.index)] - mean) / scale
        z1 = np.column_stack([z, np.ones(len(z))])
        reg = RIDGE * np.eye(z1.shape[1])
        reg[-1, -1] = 0.0
        coef[str(cdr)] = np.linalg.solve(z1.T @ z1 + reg, z1.T @ g["target"].to_numpy(float))
    return Ranker(mean, scale, coef, k)


def spearman(a: pd.Series, b: pd.Series) -> float:
    ok = a.notna() & b.notna()
    return float(a[ok].rank().corr(b[ok].rank())) if ok.sum() > 2 else float("nan")


def evaluate(ranker: Ranker, val: pd.DataFrame) -> dict:
    """Per CDR on validation loops: first choice, ranker's choice, best of K, Spearman of both error values."""
    out = {}
    for cdr, g in val.groupby("cdr"):
        if str(cdr) not in ranker.coef:
            continue
        pred = np.concatenate([ranker.predict(str(cdr), part[list(FEATURES)].to_numpy(float))
                               for _, part in g.groupby("loop", sort=False)])  # fmt: skip
        g = pd.concat([part for _, part in g.groupby("loop", sort=False)]).assign(pred=pred)
        chosen = g.loc[g.groupby("loop")["pred"].idxmin()]
        first = g[g["j"] == 0]
        out[str(cdr)] = {"loops": int(g["loop"].nunique()), "first": round(float(first["target"].mean()), 3),
                         "ranker": round(float(chosen["target"].mean()), 3),
                         "best_of_k": round(float(g.groupby("loop")["target"].min().mean()), 3),
                         "spearman_ranker": round(spearman(chosen["pred"], chosen["target"]), 3),
                         "spearman_error_model": round(spearman(first["rmsd_predicted"], first["target"]), 3),
                         "spearman_candidates": round(spearman(g["pred"], g["target"]), 3)}  # fmt: skip
    return out


def markdown(per: dict, importance: dict, kept: list[str]) -> str:
    """The validation table and the feature importances."""
    lines = ["| CDR | loops | first choice | ranker | best of K | kept | Spearman ranker | Spearman error model |",
             "|" + " --- |" * 8]  # fmt: skip
    for cdr in CDRS:
        if cdr in per:
            r = per[cdr]
            lines.append(f"| {cdr} | {r['loops']} | {r['first']:.2f} | {r['ranker']:.2f} | {r['best_of_k']:.2f} | "
                         f"{'yes' if cdr in kept else 'no'} | {r['spearman_ranker']:.2f} | "
                         f"{r['spearman_error_model']:.2f} |")
    lines += ["", "| feature | " + " | ".join(importance) + " |", "|" + " --- |" * (len(importance) + 1)]
    for f in next(iter(importance.values()), {}):
        lines.append(f"| {f} | " + " | ".join(f"{importance[c][f]:+.3f}" for c in importance) + " |")
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--validation", type=int, default=150)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--apply", action="store_true", help="write RUN/ranker.json")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args(argv)
    pred = Predictor(args.run)
    pred.ranker = None  # the network's first choice written: the candidates are what is ranked
    lib = load_library(args.run / LIBRARY_FILE)
    items, ids, loops = validation_items(args.data, args.split, args.train, "train", 1)
    pred.exclude_identity = 0.7
    train = candidate_rows(pred, lib, items, ids, loops, args.k)
    print(f"training rows {len(train)} ({train['loop'].nunique()} loops)", flush=True)
    items, ids, loops = validation_items(args.data, args.split, args.validation)
    pred.exclude_identity = None
    val = candidate_rows(pred, lib, items, ids, loops, args.k)
    print(f"validation rows {len(val)} ({val['loop'].nunique()} loops)", flush=True)
    ranker = fit(train, args.k)
    per = evaluate(ranker, val)
    kept = [c for c in CDRS if c in per and per[c]["ranker"] <= per[c]["first"] - MIN_GAIN]
    ranker = Ranker(ranker.mean, ranker.scale, {c: v for c, v in ranker.coef.items() if c in kept}, args.k)
    modes, other = ["paired"], {}
    for mode, kind in (("nanobody", "nanobody"), ("heavy", "heavy_backbone")):  # a heavy chain alone
        items, ids, loops = kind_items(args.data, args.split, "validation", kind)
        rows = candidate_rows(pred, lib, items, ids, loops, args.k)
        other[mode] = evaluate(ranker, rows) if len(rows) else {}
        if other[mode] and all(r["ranker"] <= r["first"] for r in other[mode].values()):
            modes.append(mode)  # used for such records only where it loses on none of their validation CDRs
        print(mode, other[mode], flush=True)
    ranker = replace(ranker, modes=tuple(modes))
    names = [*FEATURES, *(f"{f} (vs rivals)" for f in FEATURES)]
    importance = {c: dict(zip(names, np.round(v[:-1], 3).tolist(), strict=True)) for c, v in
                  fit(train, args.k).coef.items()}  # fmt: skip
    result = {"training_loops": int(train["loop"].nunique()), "validation_loops": int(val["loop"].nunique()),
              "k": args.k, "per_cdr": per, "kept": kept, "importance": importance, "modes": modes,
              "other_modes": other}  # fmt: skip
    if args.apply:
        ranker.save(args.run / RANKER_FILE)
        print(f"written into {args.run / RANKER_FILE}")
    write_outputs(args.out, "ranker", result, markdown(per, importance, kept))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
