"""Recent antibodies: the development yardstick (a time split of ``sabdab_extra``).

    .venv/bin/python bench/recent.py --model "new=out/recent/model" [--model NAME=RUN ...]
        [--data ../shared/data] [--from 2020-01-01] [--before 2021-01-01] [--out out/bench]

Test part: every ``sabdab_extra`` structure released in [--from, --before)
(2020: 77 Fv, 88 heavy chains, 43 nanobodies). Each model named by
``--model NAME=RUN`` (a run folder with its own ``frameworks.npz``; ``v0.3``
is the shipped model of loopfold 0.3.0, taken from git when RUN is
``git:REV``) predicts them from the observed sequences, as a user would:
heavy + light for an Fv, the heavy chain alone otherwise (the mode the
hallmarks pick; nanobodies also with ``--no-nanobody``). Models compared on a
time split must be trained on releases before --from, with loops >= 70%
identical to a test loop left out of training and templates
(``scripts/train_model.sh`` with ``TEST_FROM``).

Per CDR (North, the model's own cut), loops with every backbone atom observed:
``rmsd_loop`` (loop superposed on itself), ``rmsd_stem`` (3 stem residues each
side superposed), ``rmsd_frame`` (the chain's framework superposed), phi/psi
MAE. Rows per model: the model; the identity-template baseline (the most
identical template of the model's library, same framework and closure); and
the oracle rows on the loop's own shape (``rmsd_loop`` of the raw template
window, before placement): the model's first choice, the best of its top 5 and
top 20 candidates (its own ranking) and the best template of its library; and
the same candidates placed in the modelled Fv as the written loop is (by their
template's framework where the run places that CDR so, else on the stems) and
closed onto its stems: ``rmsd_loop`` and ``rmsd_frame`` of the best of the top 1,
5 and 20, and the library's best ``rmsd_frame`` placed but not closed. With a
ranker in the run, the model row is its choice and ``top1`` stays the network's.
Writes ``OUT/recent.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tables import write_outputs

from loopfold.constants import CDRS
from loopfold.data.identity import identity_matrix
from loopfold.errors import LoopfoldError
from loopfold.fv.assemble import FrameworkBuilder
from loopfold.fv.build import LoopWindow, framework_placed
from loopfold.fv.library import LIBRARY_FILE, N_POS, load_library
from loopfold.io.fasta import AntibodyInput
from loopfold.io.pdb import read_structure
from loopfold.model.decode import run_network
from loopfold.model.ensemble import member_weights
from loopfold.model.templates import candidate_scores, nanobody_choice
from loopfold.numbering.anarci import number_sequences
from loopfold.pipeline.batch import predict_antibodies
from loopfold.pipeline.predictor import Predictor
from loopfold.structure.closure import close_windows
from loopfold.structure.geometry import backbone_torsions
from loopfold.structure.superpose import kabsch, superposed_rmsd

ROOT = Path(__file__).resolve().parents[1]
TOPS = (1, 5, 20)
STEMS = 3


class RankingPredictor(Predictor):
    """The run's predictor, also keeping each window's candidate templates in its own ranking;
    ``pick="identity"`` writes the most sequence-identical template instead (the baseline)."""

    def __init__(self, run_dir: Path, pick: str = "model") -> None:
        super().__init__(run_dir)
        self.pick = pick
        self.ranked: list[tuple[np.ndarray, np.ndarray, list[str]] | None] = []  # per window: order, coords, ids

    def conformations(self, batch, cdrs, sequences, template_names=None, nanobody=None, top_k=0,  # noqa: ANN001, ANN201
                      candidates=None, top_k_cdrs=None):  # noqa: ANN001
        """:meth:`Predictor.conformations`, recording candidates (and applying ``pick``)."""
        pred, chosen, xyz, sources = super().conformations(batch, cdrs, sequences, template_names, nanobody, top_k,
                                                           candidates, top_k_cdrs)  # fmt: skip
        preds = [run_network(self.model, batch, temperature=self.temperature)]
        preds += [run_network(m.model, batch, temperature=m.temperature) for m in self.members]
        w = member_weights(self.info.ensemble_weights, cdrs, len(preds)) if self.members else None
        lengths = batch.lengths.numpy()
        ranked: list[tuple[np.ndarray, np.ndarray, list[str]] | None] = [None] * len(cdrs)
        alt = nanobody_choice(self.nanobody_templates, self.nanobody_cdrs, cdrs, nanobody)
        for (cdr, n), part, sc, lib in candidate_scores(preds, cdrs, sequences, lengths, self.templates,
                                                        self.cfg.identity_weight, w, alt):  # fmt: skip
            g = lib.groups[(cdr, n)]
            tors, txyz, tseqs, ids = g.torsions, g.coords, g.sequences, g.ids
            ident = identity_matrix([sequences[i] for i in part], tseqs)
            for row, i in enumerate(part):
                ranked[i] = (np.argsort(-sc[row], kind="stable"), txyz, ids)
                if self.pick == "identity":
                    j = int(ident[row].argmax())
                    chosen[i, :n] = np.where(np.isfinite(tors[j]), tors[j], chosen[i, :n])
                    xyz[i], sources[i] = txyz[j], ids[j]
        self.ranked += ranked
        return pred, chosen, xyz, sources


def test_items(data: Path, start: str, end: str, keep=None) -> list[dict]:  # noqa: ANN001 - row filter
    """The manifest's structures released in [start, end) (or those ``keep(row)`` accepts): kind,
    observed chains numbered from sequence."""
    folder = data / "sabdab_extra"
    rows = [r for r in csv.DictReader(open(folder / "manifest.csv"))
            if (keep(r) if keep is not None else start <= r["release"] < end)]  # fmt: skip
    items = []
    for r in rows:
        try:
            sf = read_structure(folder / "structures" / r["file"])
        except LoopfoldError:
            continue
        numbered = number_sequences([(f"{r['file']}:{bb.chain_id}", bb.sequence) for bb in sf.chains], workers=1)
        chains = {}
        for bb, doms in zip(sf.chains, numbered, strict=True):
            if isinstance(doms, LoopfoldError) or "X" in bb.sequence:
                continue
            for d in doms[:1]:
                chains.setdefault(d.chain_type, (bb, d))
        if "H" in chains:
            items.append({"name": r["pdb"], "kind": r["kind"], "chains": chains})
    return items


def _angle_mae(p: np.ndarray, t: np.ndarray) -> float:
    ok = np.isfinite(p) & np.isfinite(t)
    d = np.abs((p[ok] - t[ok] + 180.0) % 360.0 - 180.0)
    return float(d.mean()) if len(d) else float("nan")


def loop_rows(item: dict, res, mode: str) -> list[dict]:  # noqa: ANN001 - AntibodyResult
    """Per loop of one predicted Fv: the field's RMSDs and angle errors against the crystal."""
    rows = []
    for ch in res.fv.chains:
        bb = item["chains"][ch.chain_id][0]
        t_all = bb.coords[ch.index]
        ok = np.isfinite(t_all).all((1, 2))
        fw = np.array([g == "FR" for g in ch.region]) & ok
        rot_f, tr_f = kabsch(ch.coords[fw].reshape(-1, 3), t_all[fw].reshape(-1, 3))
        tor_p, tor_t = backbone_torsions(ch.coords), backbone_torsions(bb.coords)[ch.index]
        for cdr in sorted({g for g in ch.region if g != "FR"}):
            sel = np.nonzero(np.array(ch.region) == cdr)[0]
            if not ok[sel].all():
                continue
            p, t = ch.coords[sel], t_all[sel]
            stem = np.r_[sel[0] - STEMS : sel[0], sel[-1] + 1 : sel[-1] + 1 + STEMS]
            stem = stem[(stem >= 0) & (stem < len(ok))]
            stem = stem[ok[stem]]
            rot_s, tr_s = kabsch(ch.coords[stem].reshape(-1, 3), t_all[stem].reshape(-1, 3))
            rows.append({"name": item["name"], "kind": item["kind"], "mode": mode, "cdr": cdr, "length": len(sel),
                         "rmsd_loop": superposed_rmsd(p.reshape(-1, 3), t.reshape(-1, 3)),
                         "rmsd_stem": float(np.sqrt((((p @ rot_s.T + tr_s) - t) ** 2).sum(-1).mean())),
                         "rmsd_frame": float(np.sqrt((((p @ rot_f.T + tr_f) - t) ** 2).sum(-1).mean())),
                         "phi_mae": _angle_mae(tor_p[sel, 0], tor_t[sel, 0]),
                         "psi_mae": _angle_mae(tor_p[sel, 1], tor_t[sel, 1])})  # fmt: skip
    return rows


def _batched_rmsd(mobile: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Superposed RMSD of each ``[N, P, 3]`` mobile set to one ``[P, 3]`` target."""
    m = mobile - mobile.mean(1, keepdims=True)
    t = target - target.mean(0)
    h = np.einsum("npi,pj->nij", m, t)
    s = np.linalg.svd(h, compute_uv=False)
    det = np.sign(np.linalg.det(h))
    s[:, -1] *= det
    e = (m**2).sum((1, 2)) + (t**2).sum() - 2 * s.sum(1)
    return np.sqrt(np.maximum(e, 0) / len(t))


def oracle_rows(item: dict, loops: list[dict], ranked: list) -> list[dict]:
    """Per loop: ``rmsd_loop`` of the raw template windows: first choice, best of top K, library best."""
    rows = []
    for lp, rk in zip(loops, ranked, strict=True):
        if rk is None or lp.get("start") is None:
            continue
        bb = item["chains"][lp["chain"]][0]
        n = len(lp["sequence"])
        true = bb.coords[lp["start"] : lp["start"] + n]
        if len(true) != n or not np.isfinite(true).all():
            continue
        order, txyz, _ = rk
        cand = txyz[:, STEMS : STEMS + n].reshape(len(txyz), -1, 3)
        r = _batched_rmsd(cand, true.reshape(-1, 3))
        row = {"name": item["name"], "kind": item["kind"], "cdr": lp["cdr"], "library_best": float(r.min()),
               "library_size": len(r)}  # fmt: skip
        for k in TOPS:
            row[f"top{k}"] = float(r[order[:k]].min())
        rows.append(row)
    return rows


def _model_ca(ch) -> np.ndarray:  # noqa: ANN001 - FvChain
    """``[128, 3]`` framework CA of a modelled chain at its IMGT positions (insertions left out)."""
    out = np.full((N_POS, 3), np.nan)
    for k, (rid, reg) in enumerate(zip(ch.residue_ids, ch.region, strict=True)):
        if reg == "FR" and rid.isdigit() and 1 <= int(rid) <= N_POS:
            out[int(rid) - 1] = ch.coords[k, 1]
    return out


def frame_oracle(item: dict, res, ranked: list, frames) -> list[dict]:  # noqa: ANN001
    """Per loop of a built Fv: its top-K candidates placed in the model (as the written loop is: by the
    template's framework where the run's frames place that CDR, else on the stems) and closed onto
    the model's stems; ``rmsd_frame`` and ``rmsd_loop`` of the best of the top 1, 5 and 20, and the
    library's best ``rmsd_frame`` placed the same way but not closed."""
    rows, jobs = [], []
    chains = {ch.chain_id: ch for ch in res.fv.chains}
    for lp, rk in zip(res.loops, ranked, strict=True):
        ch = chains.get(lp.chain)
        if rk is None or ch is None or lp.start is None:
            continue
        bb = item["chains"][lp.chain][0]
        n = len(lp.sequence)
        true = bb.coords[lp.start : lp.start + n]
        order, txyz, ids = rk
        full = np.full((len(bb.sequence), 4, 3), np.nan)
        full[ch.index] = ch.coords
        sn, sc = full[lp.start - STEMS : lp.start], full[lp.start + n : lp.start + n + STEMS]
        t_all = bb.coords[ch.index]
        ok = np.isfinite(t_all).all((1, 2))
        fw = np.array([g == "FR" for g in ch.region]) & ok
        if (len(true) != n or not np.isfinite(true).all() or txyz.shape[1] != n + 2 * STEMS or lp.start < STEMS
                or not (np.isfinite(sn).all() and np.isfinite(sc).all())):  # fmt: skip
            continue
        rot_f, tr_f = kabsch(ch.coords[fw].reshape(-1, 3), t_all[fw].reshape(-1, 3))
        ca = _model_ca(ch)
        use = frames is not None and lp.cdr in frames.cdrs
        lib_best, top = np.inf, {int(j): r for r, j in enumerate(order[: max(TOPS)])}
        for j in range(len(txyz)):
            lw = LoopWindow(lp.cdr, lp.chain, lp.start, STEMS, n, STEMS, txyz[j], None)
            placed = framework_placed(lw, frames.get(ids[j]), ca, frames.radius)[0] if use else lw
            if placed.placement == "stems":
                rot, tr = kabsch(txyz[j, np.r_[:STEMS, n + STEMS : n + 2 * STEMS], :3].reshape(-1, 3),
                                 np.concatenate([sn, sc])[:, :3].reshape(-1, 3))  # fmt: skip
                placed = replace(placed, window=txyz[j] @ rot.T + tr)
            p = placed.window[STEMS : STEMS + n] @ rot_f.T + tr_f
            lib_best = min(lib_best, float(np.sqrt(((p - true) ** 2).sum(-1).mean())))
            if j in top:
                jobs.append((len(rows), top[j], placed, sn, sc, rot_f, tr_f, true))
        rows.append({"name": item["name"], "kind": item["kind"], "cdr": lp.cdr, "frame_library_best": lib_best})
    if not jobs:
        return rows
    closed = close_windows([j[2].window for j in jobs], [j[3] for j in jobs], [j[4] for j in jobs],
                           placement=[j[2].placement for j in jobs])  # fmt: skip
    per: dict[int, list[tuple[int, float, float]]] = {}
    for (r, rank, _, _, _, rot_f, tr_f, true), c in zip(jobs, closed, strict=True):
        p = c.coords[STEMS:-STEMS]
        per.setdefault(r, []).append((rank, float(np.sqrt((((p @ rot_f.T + tr_f) - true) ** 2).sum(-1).mean())),
                                      superposed_rmsd(p.reshape(-1, 3), true.reshape(-1, 3))))  # fmt: skip
    for r, got in per.items():
        for k in TOPS:
            mine = [g for g in got if g[0] < k]
            rows[r][f"frame_top{k}"] = min(g[1] for g in mine)
            rows[r][f"fv_loop_top{k}"] = min(g[2] for g in mine)
    return rows


def run_model(name: str, run: Path, items: list[dict], pick: str = "model", nanobody: bool | None = None) -> tuple:
    """Loop rows and oracle rows of one model over the items (each predicted as a user would)."""
    pred = RankingPredictor(run, pick)
    if pick == "identity":  # the baseline writes the most identical template: no ranker chooses for it
        pred.ranker = None
    lib = run / LIBRARY_FILE
    builder = FrameworkBuilder(load_library(lib))
    abs_ = [AntibodyInput(it["name"], it["chains"]["H"][0].sequence,
                          it["chains"]["L"][0].sequence if it["kind"] == "fv" and "L" in it["chains"] else None)
            for it in items]  # fmt: skip
    results = list(predict_antibodies(pred, abs_, chunk=len(abs_) + 1, fv=builder, nanobody=nanobody))
    rows, oracle, failed = [], [], 0
    flat = iter(pred.ranked)
    for it, res in zip(items, results, strict=True):
        loops = res.result.get("loops", [])
        ranked = [next(flat) for _ in loops]
        if res.fv is None:
            failed += 1
            continue
        rows += loop_rows(it, res, res.result.get("mode", ""))
        framed = {(r["cdr"]): r for r in frame_oracle(it, res, ranked, pred.template_frames)}
        oracle += [{**o, **framed.get(o["cdr"], {})} for o in oracle_rows(it, loops, ranked)]
    print(f"{name}: {len(results)} records, {failed} without an Fv", flush=True)
    return rows, oracle, failed


METRICS = ("rmsd_loop", "rmsd_stem", "rmsd_frame", "phi_mae", "psi_mae")
#: oracle columns: raw windows' rmsd_loop; candidates placed and closed in the Fv (rmsd_loop, rmsd_frame);
#: the library's best rmsd_frame placed but not closed
ORACLE = ("top1", "top5", "top20", "library_best", "fv_loop_top1", "fv_loop_top5", "fv_loop_top20",
          "frame_top1", "frame_top5", "frame_top20", "frame_library_best")


def summarise(rows: list[dict], oracle: list[dict]) -> dict:
    """Means per CDR (and H3 >= 16) of the loop metrics and the oracle rows."""
    out: dict = {}
    df, od = pd.DataFrame(rows), pd.DataFrame(oracle)
    for cdr in (*CDRS, "H3 >= 16"):
        g = df[(df["cdr"] == "H3") & (df["length"] >= 16)] if cdr == "H3 >= 16" else df[df["cdr"] == cdr] \
            if len(df) else df  # fmt: skip
        if not len(g):
            continue
        out[cdr] = {"n": len(g), **{m: round(float(g[m].mean()), 3) for m in METRICS}}
        if cdr in CDRS and len(od) and (o := od[od["cdr"] == cdr]).size:
            out[cdr]["oracle"] = {c: round(float(o[c].mean()), 3) for c in ORACLE if c in o}
    return out


def model_dir(spec: str) -> Path:
    """A run folder, or ``git:REV`` for the shipped weights of that commit (extracted into out/)."""
    if not spec.startswith("git:"):
        return Path(spec)
    rev = spec[4:]
    dest = ROOT / "out" / f"weights-{rev}"
    if not (dest / "config.json").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src/loopfold/weights"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(dest), "--strip-components=3"], input=archive, check=True)
    return dest


def markdown(result: dict) -> str:
    """Tables for docs/benchmarks.md: one per test kind, rows per model and CDR."""
    lines = []
    for kind, by_model in result["tables"].items():
        lines += [f"### {kind}", "", "| model | CDR | n | rmsd_loop | rmsd_stem | rmsd_frame | phi MAE | psi MAE | "
                  "top-1 raw | best of 5 | best of 20 | library best | Fv top-1 loop | Fv best of 5 | "
                  "Fv best of 20 | frame top-1 | frame best of 5 | frame best of 20 | frame library best |",
                  "|" + " --- |" * 19]  # fmt: skip
        for model, per in by_model.items():
            for cdr, r in per.items():
                o = r.get("oracle", {})
                cells = [f"{o[c]:.2f}" if c in o else "" for c in ORACLE]
                lines.append(f"| {model} | {cdr} | {r['n']} | {r['rmsd_loop']:.2f} | {r['rmsd_stem']:.2f} | "
                             f"{r['rmsd_frame']:.2f} | {r['phi_mae']:.1f} | {r['psi_mae']:.1f} | "
                             + " | ".join(cells) + " |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", action="append", required=True, help="NAME=RUN (or NAME=git:REV)")
    ap.add_argument("--from", dest="start", default="2020-01-01")
    ap.add_argument("--before", default="2021-01-01")
    ap.add_argument("--no-baseline", action="store_true", help="skip the identity-template rows")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args(argv)
    items = test_items(args.data, args.start, args.before)
    kinds = {k: [it for it in items if it["kind"] == k] for k in ("fv", "heavy_backbone", "nanobody")}
    result: dict = {"test": {"from": args.start, "before": args.before, **{k: len(v) for k, v in kinds.items()}},
                    "tables": {}, "failed": {}}  # fmt: skip
    raw: dict = {}
    for spec in args.model:
        name, run = spec.split("=", 1)
        run_dir = model_dir(run)
        variants = [(name, "model", None)] + ([] if args.no_baseline else [(f"{name} identity template",
                                                                            "identity", None)])  # fmt: skip
        for label, pick, nb in variants:
            for kind, its in kinds.items():
                runs = [(label, nb)] + ([(f"{label} --no-nanobody", False)] if kind == "nanobody" else [])
                for row_name, nbv in runs:
                    rows, oracle, failed = run_model(f"{row_name} [{kind}]", run_dir, its, pick, nbv)
                    result["tables"].setdefault(kind, {})[row_name] = summarise(rows, oracle if pick == "model"
                                                                                else [])  # fmt: skip
                    result["failed"][f"{row_name} [{kind}]"] = failed
                    raw[f"{row_name} [{kind}]"] = rows
    result["raw"] = raw
    print(write_outputs(args.out, "recent", result, markdown(result)))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
