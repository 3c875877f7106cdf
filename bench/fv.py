"""Whole-Fv accuracy on held-out structures, beside the same loops grafted on the true framework.

    .venv/bin/python bench/fv.py [--data ../shared/data] [--out out/bench] [--fit-error N]

Sets: the docking benchmark 5.5 (bound antibodies, each distinct VH/VL pair
once) and the RAB antibodies whose structures are in the Rosetta antibody
database. Every chain is numbered from its observed sequence; the Fv is
predicted from those sequences with the shipped model and framework library
(neither holds these structures). Per CDR (North), loops with every backbone
atom observed:

* ``rmsd_loop``: loop residues superposed on themselves;
* ``rmsd_frame``: after superposing the chain's framework (N, CA, C, O of the
  residues outside the CDRs), the field's framework-superposed loop RMSD;
* the same loops grafted on the true framework (its own loops removed): placed
  on all stem residues (``stems``, what loopfold does) and hung from the last
  N-stem residue (``n_stem``, loopfold 0.2's placement).

* the same loops grafted on the true framework placed by their template's own
  framework (``framework``; a run with ``template_frames.npz``);
* the oracle rows of ``bench/recent.py`` (the best of the network's top 1, 5 and
  20 candidates and of the library, on the loop's own shape and placed in the
  modelled Fv).

Framework: backbone RMSD of each chain's framework and of both together (Fv).
Also clashes, bond geometry, throughput of this run (``--refine N``: the first N
models refined, ``--refine-clashing`` also every model with a pair under 2.2 Å,
with time, closest heavy-atom pair and backbone movement), and the Spearman
correlation of the predicted per-residue error (B-factor) with the observed
deviation after the Fv framework superposition. ``--fit-error N [--apply]``
instead fits the error coefficients (``loopfold.fv.library.FRAME_ERROR``) on N
validation structures (see :func:`fit_error`) and prints them (``--apply``
writes them into the shipped library). Writes ``OUT/fv.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from measures import closest_heavy_pair, geometry_report, library_subset, min_nonbonded
from recent import ORACLE, RankingPredictor, frame_oracle, oracle_rows
from tables import write_outputs

from loopfold.constants import CDRS
from loopfold.errors import LoopfoldError
from loopfold.fv.assemble import Frame, FrameworkBuilder
from loopfold.fv.build import LoopWindow, close_all, frame_ca, framework_placed
from loopfold.fv.library import LIBRARY_FILE, load_library
from loopfold.io.fasta import AntibodyInput
from loopfold.io.pdb import read_structure
from loopfold.numbering.anarci import number_sequences
from loopfold.pipeline.batch import predict_antibodies
from loopfold.pipeline.predictor import SHIPPED, Predictor
from loopfold.structure.superpose import kabsch, superposed_rmsd

ROOT = Path(__file__).resolve().parents[1]


def true_antibodies(files: list[Path]) -> list[dict]:
    """Each file's first VH and VL chain (observed residues), distinct VH/VL pairs once."""
    out, seen = [], set()
    for f in files:
        try:
            sf = read_structure(f)
        except LoopfoldError:
            continue
        numbered = number_sequences([(f"{f.name}:{bb.chain_id}", bb.sequence) for bb in sf.chains], workers=1)
        chains = {}
        for bb, doms in zip(sf.chains, numbered, strict=True):
            if isinstance(doms, LoopfoldError) or len(doms) != 1 or "X" in bb.sequence:
                continue
            chains.setdefault(doms[0].chain_type, (bb, doms[0]))
        key = tuple(chains[c][0].sequence for c in ("H", "L") if c in chains)
        if set(chains) == {"H", "L"} and key not in seen:
            seen.add(key)
            out.append({"name": sf.pdb_id, "chains": chains})
    return out


def _fw_mask(model_chain, true_xyz: np.ndarray) -> np.ndarray:  # noqa: ANN001
    fw = np.array([r == "FR" for r in model_chain.region])
    return fw & np.isfinite(true_xyz[model_chain.index]).all((1, 2))


def score_set(predictor: Predictor, builder: FrameworkBuilder, items: list[dict], refine: int = 0,
              clashing: bool = False) -> tuple[list[dict], dict]:  # fmt: skip
    """Per-loop rows and per-antibody framework figures for one set."""
    abs_ = [AntibodyInput(it["name"], it["chains"]["H"][0].sequence, it["chains"]["L"][0].sequence) for it in items]
    t0 = time.perf_counter()
    ranking = isinstance(predictor, RankingPredictor)
    if ranking:
        predictor.ranked = []
    results = list(predict_antibodies(predictor, abs_, fv=builder))
    seconds = time.perf_counter() - t0
    oracle = []
    if ranking:  # the oracle rows of bench/recent.py: best of the network's top K, library best
        flat = iter(predictor.ranked)
        for it, r in zip(items, results, strict=True):
            ranked = [next(flat) for _ in r.result.get("loops", [])]
            if r.fv is not None:
                item = {**it, "kind": "fv"}
                framed = {o["cdr"]: o for o in frame_oracle(item, r, ranked, predictor.template_frames)}
                oracle += [{**o, **framed.get(o["cdr"], {})} for o in oracle_rows(item, r.result["loops"], ranked)]
    refined = refine_rows(results, refine, clashing) if refine or clashing else []
    rows, frames, errs = [], [], []
    for it, r in zip(items, results, strict=True):
        if r.fv is None:
            frames.append({"name": it["name"], "error": None if r.error is None else str(r.error)})
            continue
        true = {c: it["chains"][c][0].coords for c in ("H", "L")}
        fv_rows = {"name": it["name"], "clashes": r.fv.clashes, **geometry_report(r.fv)}
        allp, allt = [], []
        per_chain = {}
        for ch in r.fv.chains:
            m = _fw_mask(ch, true[ch.chain_id])
            p, t = ch.coords[m].reshape(-1, 3), true[ch.chain_id][ch.index[m]].reshape(-1, 3)
            fv_rows[f"fw_{ch.chain_id}"] = superposed_rmsd(p, t)
            per_chain[ch.chain_id] = kabsch(p, t)
            allp.append(p)
            allt.append(t)
        fv_rows["fw_fv"] = superposed_rmsd(np.concatenate(allp), np.concatenate(allt))
        rot, tr = kabsch(np.concatenate(allp), np.concatenate(allt))
        for ch in r.fv.chains:  # predicted error against the deviation after the Fv superposition
            t = true[ch.chain_id][ch.index]
            ok = np.isfinite(t).all((1, 2))
            dev = np.sqrt((((ch.coords[ok] @ rot.T + tr) - t[ok]) ** 2).sum(-1).mean(-1))
            errs += list(zip(ch.error_frame[ok], dev, strict=True))
        frames.append(fv_rows)
        for lp in r.result["loops"]:
            ch = next(c for c in r.fv.chains if c.chain_id == lp["chain"])
            sel = np.array([reg == lp["cdr"] for reg in ch.region])
            t = true[ch.chain_id][ch.index[sel]]
            if not np.isfinite(t).all():
                continue
            p = ch.coords[sel]
            rot_c, tr_c = per_chain[ch.chain_id]
            rows.append({"name": it["name"], "cdr": lp["cdr"], "length": int(sel.sum()),
                         "rmsd_loop": superposed_rmsd(p.reshape(-1, 3), t.reshape(-1, 3)),
                         "rmsd_frame": float(np.sqrt((((p @ rot_c.T + tr_c) - t) ** 2).sum(-1).mean())),
                         "rmsd_predicted": lp.get("rmsd_predicted"),
                         "b_rms": float(np.sqrt(np.mean(ch.error_frame[sel] ** 2)))})  # loop B-factors  # fmt: skip
    rows = _with_true_framework(predictor, items, rows)
    e = pd.DataFrame(errs, columns=["predicted", "observed"])
    spearman = float(e["predicted"].rank().corr(e["observed"].rank())) if len(e) else float("nan")
    quart = e.groupby(pd.qcut(e["predicted"], 4, labels=False, duplicates="drop")).mean().round(2)
    return rows, {"antibodies": frames, "seconds": seconds, "error_spearman_residues": spearman, "oracle": oracle,
                  "error_quartiles": quart.values.tolist(), "refined": refined}  # fmt: skip


def _with_true_framework(predictor: Predictor, items: list[dict], rows: list[dict]) -> list[dict]:
    """Add ``rmsd_frame`` of the same predicted loops closed onto the true framework (each placement:
    ``framework`` only for a run with template frames, and only for the loops whose template has one)."""
    by = {(r["name"], r["cdr"]): r for r in rows}
    for it in items:
        ab = AntibodyInput(it["name"], it["chains"]["H"][0].sequence, it["chains"]["L"][0].sequence)
        doms = {"heavy": [it["chains"]["H"][1]], "light": [it["chains"]["L"][1]]}
        qs = predictor.antibody_queries(ab, doms)
        windows: dict[int, np.ndarray] = {}
        loops = predictor.predict_queries(qs, place=lambda i, q, x, w=windows: (w.__setitem__(i, x), (x, None))[1])
        coords = {c: it["chains"][c][0].coords.copy() for c in ("H", "L")}
        lws = []
        for i, (q, lp) in enumerate(zip(qs, loops, strict=True)):
            lws.append(LoopWindow(q.cdr, q.chain, q.start, len(q.stem_n), len(q.sequence), len(q.stem_c),
                                  windows[i], lp.values.error))  # fmt: skip
        frame = Frame(coords, {c: np.ones(len(coords[c]), bool) for c in coords},
                      {c: it["chains"][c][1] for c in coords}, {c: it["chains"][c][0].sequence for c in coords},
                      {}, {}, ())  # fmt: skip
        tf = predictor.template_frames
        ca = {c: frame_ca(frame, c) for c in coords}
        placed = [framework_placed(lw, tf.get(lp.template), ca[lw.chain], tf.radius)[0] for lw, lp in zip(lws, loops,
                  strict=True)] if tf is not None else None  # fmt: skip
        for placement in ("stems", "n_stem", "framework"):
            if placement == "framework" and placed is None:
                continue
            try:
                closed = close_all([frame], [placed if placement == "framework" else lws], [it["name"]],
                                   None if placement == "framework" else placement)[0]  # fmt: skip
            except LoopfoldError:
                continue
            for lw, res in zip(lws, closed, strict=True):
                row = by.get((it["name"], lw.cdr))
                if row is not None:
                    t = coords[lw.chain][lw.start : lw.start + lw.n_loop]
                    p = res.coords[lw.n_stem : lw.n_stem + lw.n_loop]
                    row[f"true_fw_{placement}"] = float(np.sqrt(((p - t) ** 2).sum(-1).mean()))
    return rows


def refine_rows(results: list, n: int, clashing: bool = False) -> list[dict]:
    """``--refine N``: the first N Fv models refined (with ``clashing``, also every model with a
    non-bonded heavy-atom pair under 2.2 Å); seconds, closest heavy-atom pair before and after, and
    how far the backbone moved (RMSD over N, CA, C, O, Å)."""
    import gemmi

    from loopfold.fv.refine import refine_pdb
    from loopfold.pipeline.fv_file import fv_text

    rows = []
    built = [r for r in results if r.fv is not None]
    chosen = built[:n] + ([r for r in built[n:] if min_nonbonded(r.fv.chains) < 2.2] if clashing else [])
    for r in chosen:
        text = fv_text(r.fv, "pdb")
        t0 = time.perf_counter()
        refined = refine_pdb(text, r.result["id"])
        sec = time.perf_counter() - t0
        a, b = gemmi.read_pdb_string(text)[0], gemmi.read_pdb_string(refined)[0]
        moved = [(x.pos.dist(y.pos)) ** 2 for ca, cb in zip(a, b, strict=True) for ra, rb in zip(ca, cb, strict=True)
                 for x in ra for y in rb if x.name == y.name and x.name in ("N", "CA", "C", "O")]  # fmt: skip
        rows.append({"name": r.result["id"], "seconds": round(sec, 1), "picked": "first" if r in built[:n] else "clash",
                     "closest_before": round(closest_heavy_pair(text), 2),
                     "closest_after": round(closest_heavy_pair(refined), 2),
                     "backbone_moved": round(float(np.sqrt(np.mean(moved))), 3)})  # fmt: skip
    return rows


def table(rows: list[dict], frames: dict) -> dict:
    """Means per CDR and framework summaries."""
    df = pd.DataFrame(rows)
    cols = ["rmsd_loop", "rmsd_frame", "true_fw_stems", "true_fw_n_stem", "true_fw_framework"]
    per = {c: {"n": int(len(g)), **{k: round(float(g[k].mean()), 3) for k in cols if k in g},
               "rmsd_frame_median": round(float(g["rmsd_frame"].median()), 3),
               "b_rms": round(float(g["b_rms"].mean()), 3),
               "over_2x_b": round(float((g["rmsd_frame"] > 2 * g["b_rms"]).mean()), 3)}
           for c, g in df.groupby("cdr")} if len(df) else {}  # fmt: skip
    long = df[(df["cdr"] == "H3") & (df["length"] >= 16)] if len(df) else df
    if len(long):
        per["H3 >= 16"] = {"n": int(len(long)), **{k: round(float(long[k].mean()), 3) for k in cols if k in long},
                           "rmsd_frame_median": round(float(long["rmsd_frame"].median()), 3),
                           "b_rms": round(float(long["b_rms"].mean()), 3),
                           "over_2x_b": round(float((long["rmsd_frame"] > 2 * long["b_rms"]).mean()), 3)}
    fr = pd.DataFrame([f for f in frames["antibodies"] if "fw_fv" in f])
    summary = {k: round(float(fr[k].mean()), 3) for k in ("fw_H", "fw_L", "fw_fv")}
    summary.update(antibodies=len(fr), failed=len(frames["antibodies"]) - len(fr),
                   clashes_total=int(fr["clashes"].sum()), with_clash=int((fr["clashes"] > 0).sum()),
                   max_bond_deviation=float(fr["max_bond_deviation"].max()),
                   over_005=int((fr["max_bond_deviation"] > 0.05).sum()),
                   max_peptide_bond=float(fr["max_peptide_bond"].max()),
                   min_nonbonded=float(fr["min_nonbonded"].min()),
                   fv_per_second=round(len(frames["antibodies"]) / frames["seconds"], 1),
                   error_spearman_residues=round(frames["error_spearman_residues"], 3),
                   error_quartiles_predicted_observed=frames["error_quartiles"])  # fmt: skip
    out = {"per_cdr": per, "framework": summary}
    od = pd.DataFrame(frames.get("oracle", []))
    if len(od):
        out["oracle"] = {c: {k: round(float(g[k].mean()), 3) for k in ORACLE if k in g} for c, g in od.groupby("cdr")}
    if frames["refined"]:
        ref = pd.DataFrame(frames["refined"])
        out["refine"] = {"n": len(ref), "models": ref.to_dict("records"),
                         "seconds_mean": round(float(ref["seconds"].mean()), 1),
                         "closest_before_min": float(ref["closest_before"].min()),
                         "closest_after_min": float(ref["closest_after"].min()),
                         "under_2_5_after": int((ref["closest_after"] < 2.5).sum()),
                         "backbone_moved_mean": round(float(ref["backbone_moved"].mean()), 3)}  # fmt: skip
    return out


def without_relatives(lib, items: list[dict], ids: list[str]):  # noqa: ANN001, ANN201
    """The library without the given structures and without any entry whose CDR-H3 is >= 70% identical
    to one of theirs (the rule that keeps benchmark antibodies out of the shipped library)."""
    from loopfold.data.identity import max_identity
    from loopfold.numbering.cdr import locate_cdr

    h3s = []
    for it in items:
        bb, dom = it["chains"]["H"]
        sl = locate_cdr(dom.indices, [p for p, _ in dom.positions], "H3", "north", dom.scheme)
        if sl is not None:
            h3s.append(bb.sequence[sl.start : sl.stop])
    keep = ~np.isin(lib.ids, ids)
    if lib.h3 is None:
        raise SystemExit("the framework library has no H3 sequences: rebuild it with loopfold data frameworks")
    if h3s:
        keep &= np.asarray(max_identity(list(lib.h3), h3s)) < 0.7
    return library_subset(lib, keep)


def part_loops(split: Path, part: str) -> set[tuple[str, str]]:
    """The (PDB id, CDR) of every loop in a part of a split."""
    parts = pd.read_csv(split / "manifest.csv")
    return {(lid.split(":")[-1].split("_")[0], lid.split("_")[-1]) for lid in parts.loc[parts["part"] == part,
                                                                                         "loop_id"]}  # fmt: skip


def validation_items(data: Path, split: Path, n: int, part: str = "validation", seed: int = 0
                     ) -> tuple[list[dict], list[str], set[tuple[str, str]]]:  # fmt: skip
    """Up to n Fv structures (drawn with ``seed``) with a loop in the split's part (validation by
    default): the items, their PDB ids and the (PDB id, CDR) of every loop of that part."""
    val_loops = part_loops(split, part)
    ids = sorted({pdb for pdb, _ in val_loops})
    rng = np.random.default_rng(seed)
    ids = list(rng.choice(ids, size=min(n, len(ids)), replace=False))
    names = (data / "rosetta_antibody_db/antibody/antibody_database/pdb{}_chothia.pdb.bz2",
             data / "sabdab_extra/structures/pdb{}_H-L.pdb.gz")  # Fv structures of either source
    items = true_antibodies([p for i in ids for f in names if (p := Path(str(f).format(i))).exists()])
    return items, ids, val_loops


def fit_error(builder: FrameworkBuilder, data: Path, n: int, split: Path, model: Path | None = None) -> list[float]:
    """Least-squares error coefficients (``FRAME_ERROR``) on up to n validation structures.

    Structures: the Rosetta database entries with a loop in the split's validation part; their
    entries and every entry of a related antibody (H3 >= 70% identical) are left out of the library
    while they are predicted, as the benchmark antibodies are; loop residues count
    only for loops of the validation part (the model never trained on them). Per residue, the
    target is its backbone deviation once the Fv framework is superposed.
    """
    items, ids, val_loops = validation_items(data, split, n)
    sub = FrameworkBuilder(without_relatives(builder.library, items, ids))
    abs_ = [AntibodyInput(it["name"], it["chains"]["H"][0].sequence, it["chains"]["L"][0].sequence) for it in items]
    xf, yf, xl, yl, cl_of = [], [], [], [], []
    for it, r in zip(items, predict_antibodies(Predictor(model), abs_, fv=sub), strict=True):
        if r.fv is None:
            continue
        true = {c: it["chains"][c][0].coords for c in ("H", "L")}
        ps, ts = [], []
        for ch in r.fv.chains:
            m = _fw_mask(ch, true[ch.chain_id])
            ps.append(ch.coords[m].reshape(-1, 3))
            ts.append(true[ch.chain_id][ch.index[m]].reshape(-1, 3))
        rot, tr = kabsch(np.concatenate(ps), np.concatenate(ts))
        loop_err = {lp["cdr"]: lp.get("error") for lp in r.result["loops"]}
        for ch in r.fv.chains:
            t = true[ch.chain_id][ch.index]
            ok = np.isfinite(t).all((1, 2))
            dev = np.full(len(t), np.nan)
            dev[ok] = np.sqrt((((ch.coords[ok] @ rot.T + tr) - t[ok]) ** 2).sum(-1).mean(-1))
            ident = r.fv.identity[ch.chain_id]
            fw = np.array([g == "FR" for g in ch.region])
            for k in np.nonzero(fw & ok)[0]:
                xf.append([1.0, 1.0 - ident, float(not ch.same[k])])
                yf.append(dev[k])
            for cdr in {g for g in ch.region if g != "FR"}:
                if (it["name"], cdr) not in val_loops or loop_err.get(cdr) is None:
                    continue
                sel = np.nonzero(np.array(ch.region) == cdr)[0]
                for k, e in zip(sel, loop_err[cdr], strict=True):
                    if ok[k]:
                        xl.append([1.0, e])
                        yl.append(dev[k])
                        cl_of.append(cdr)
    cf, *_ = np.linalg.lstsq(np.array(xf), np.array(yf), rcond=None)
    xl, yl, cl_of = np.array(xl), np.array(yl), np.array(cl_of)
    cl, *_ = np.linalg.lstsq(xl, yl, rcond=None)
    q_all = float(np.linalg.lstsq(xl[:, 1:], yl, rcond=None)[0][0])
    per = []  # per CDR a scale of the loop error (no intercept: never negative; the scale fitted on all
    for cdr in CDRS:  # loops where a CDR has too few validation residues)
        m = cl_of == cdr
        q = float(np.linalg.lstsq(xl[m, 1:], yl[m], rcond=None)[0][0]) if m.sum() >= 50 else None
        per += [0.0, q if q is not None and q > 0 else q_all]
        print(f"{cdr}: {int(m.sum())} validation-loop residues, error = {per[-2]:.3f} + {per[-1]:.3f} x loop error")
    print(f"fitted on {len(items)} structures: {len(yf)} framework residues, {len(yl)} validation-loop residues")
    return [round(float(v), 3) for v in (*cf, *cl, *per)]


def markdown(result: dict) -> str:
    """Tables for docs/benchmarks.md."""
    lines = []
    for name, res in result["sets"].items():
        lines += [f"### {name}", "", "| CDR | n | rmsd_loop | rmsd_frame | rmsd_frame median | true framework, "
                  "all stems | true framework, N-stem (0.2) | true framework, template framework | loop B (RMS) | "
                  "rmsd_frame > 2 B |", "|" + " --- |" * 10]  # fmt: skip
        for cdr in (*CDRS, "H3 >= 16"):
            r = res["per_cdr"].get(cdr)
            if r:
                nan = float("nan")
                lines.append(f"| {cdr} | {r['n']} | {r['rmsd_loop']:.2f} | {r['rmsd_frame']:.2f} | "
                             f"{r['rmsd_frame_median']:.2f} | "
                             f"{r.get('true_fw_stems', nan):.2f} | {r.get('true_fw_n_stem', nan):.2f} | "
                             f"{r.get('true_fw_framework', nan):.2f} | "
                             f"{r.get('b_rms', nan):.2f} | {r.get('over_2x_b', nan):.0%} |")
        if "oracle" in res:
            lines += ["", "| CDR | " + " | ".join(ORACLE) + " |", "|" + " --- |" * (len(ORACLE) + 1)]
            lines += [f"| {c} | " + " | ".join(f"{o.get(k, float('nan')):.2f}" for k in ORACLE) + " |"
                      for c, o in res["oracle"].items()]  # fmt: skip
        f = res["framework"]
        lines += ["", "| framework | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in f.items()] + [""]
        if "refine" in res:
            lines += ["| --refine | value |", "| --- | --- |"]
            lines += [f"| {k} | {v} |" for k, v in res["refine"].items() if k != "models"] + [""]
            lines += ["| refined model | picked | seconds | closest before | closest after | backbone moved |",
                      "| --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {m['name']} | {m['picked']} | {m['seconds']} | {m['closest_before']} | "
                      f"{m['closest_after']} | {m['backbone_moved']} |" for m in res["refine"]["models"]] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument("--fit-error", type=int, default=0, help="fit the error coefficients on N validation structures")
    ap.add_argument("--split", type=Path, default=ROOT / "out" / "rosetta_split")
    ap.add_argument("--model", type=Path, default=SHIPPED, help="run folder with its frameworks.npz (default shipped)")
    ap.add_argument("--apply", action="store_true", help="with --fit-error: write them into --model's frameworks.npz")
    ap.add_argument("--refine", type=int, default=0, help="also refine the first N Fv models of each set")
    ap.add_argument("--refine-clashing", action="store_true", help="also refine every model with a pair < 2.2 A")
    args = ap.parse_args(argv)
    builder = FrameworkBuilder(load_library(args.model / LIBRARY_FILE))
    if args.fit_error:
        coef = fit_error(builder, args.data, args.fit_error, args.split, args.model)
        print(json.dumps({"frame_error": coef}))
        if args.apply:
            from dataclasses import replace

            replace(builder.library, error_coef=np.array(coef)).save(args.model / LIBRARY_FILE)
            print(f"written into {args.model / LIBRARY_FILE}")
        return {"frame_error": coef}
    predictor = RankingPredictor(args.model)
    dock = sorted((args.data / "docking_benchmark_5_5/pdbs").glob("*_r_b.pdb"))
    rab_ids = [r["pdb"].lower() for r in json.loads((args.data / "rab/rab_cdr_backbones.json").read_text())]
    folder = args.data / "rosetta_antibody_db/antibody/antibody_database"
    rab = [p for i in rab_ids if (p := folder / f"pdb{i}_chothia.pdb.bz2").exists()]
    result: dict = {"sets": {}, "library_entries": len(builder.library)}
    raw = {}
    for name, files in (("docking benchmark 5.5", dock), ("RAB", rab)):
        items = true_antibodies(files)
        rows, frames = score_set(predictor, builder, items, args.refine, args.refine_clashing)
        result["sets"][name] = table(rows, frames)
        raw[name] = {"loops": rows, "antibodies": frames["antibodies"]}
        print(name, json.dumps(result["sets"][name]["framework"]), flush=True)
    result["raw"] = raw
    print(write_outputs(args.out, "fv", result, markdown(result)))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
