"""The geometry check of written models and of crystal structures (issue 19's table).

    .venv/bin/python bench/model_geometry.py [--data ../shared/data] [--rosetta 500] [--refine 3]
        [--out out/bench]

Sets: crystal structures of the Rosetta antibody database (the first ``--rosetta`` files, read as
files: all their atoms, and N, CA, C, O, CB alone as in an unrefined model; the check must pass
them), and models predicted from sequence with the shipped
model for the docking benchmark 5.5 and RAB antibodies and for the same Rosetta structures (whole Fv,
no refinement; ``--refine K``: the first K docking models also refined, and checked again). Each
model set is run twice: as shipped, and with the peptide-bond correction switched off
(``loopfold.structure.planar.planarize`` replaced by the identity, no framework stretch taken from
another template for its peptide bonds, loop templates with a cis bond before a non-proline not
passed over): the templates' bonds as 0.3 wrote them (FvNet's omega is
snapped to cis/trans in both).
Per set: models, and per kind of defect the number of models with one and the total. Writes
``OUT/model_geometry.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from fv import true_antibodies
from tables import write_outputs

import loopfold.fv.assemble
import loopfold.model.templates as templates
import loopfold.pipeline.predictor
from loopfold.api import LoopFold
from loopfold.io.fasta import AntibodyInput
from loopfold.io.model_check import check_text, read_model, structure_chains
from loopfold.io.pdb import read_text
from loopfold.pipeline.batch import predict_antibodies
from loopfold.structure.validate import check

KINDS = ("d_residues", "cis_nonpro", "twisted_omega", "chain_gaps", "clashes", "bond_outliers", "angle_outliers",
         "cis_pro", "ramachandran_outliers")  # fmt: skip


def summary(name: str, checks: list[dict], seconds: float | None = None) -> dict:
    """Models, and per kind: models with at least one, total count."""
    row: dict = {"set": name, "models": len(checks), "passed": sum(bool(c["passed"]) for c in checks)}
    for k in KINDS:
        vals = [c.get(k, 0) for c in checks]
        row[f"{k}_models"], row[f"{k}_total"] = sum(v > 0 for v in vals), sum(vals)
    if seconds is not None:
        row["seconds_per_model"] = round(seconds / max(len(checks), 1), 2)
    return row


@contextlib.contextmanager
def without_planarize():  # noqa: ANN201
    """Models built as 0.3 built them: template peptide bonds kept as they were."""
    builder = loopfold.fv.assemble.FrameworkBuilder
    saved = (loopfold.pipeline.predictor.planarize, loopfold.fv.assemble.planarize, builder._bad_bonds,
             templates.CIS_PENALTY)
    loopfold.pipeline.predictor.planarize = loopfold.fv.assemble.planarize = lambda x, letters: (x, [])
    builder._bad_bonds = staticmethod(lambda xyz, pos, idx, seq, have: np.zeros(len(pos), dtype=bool))
    templates.CIS_PENALTY = 0.0
    try:
        yield
    finally:
        loopfold.pipeline.predictor.planarize, loopfold.fv.assemble.planarize, bad, templates.CIS_PENALTY = saved
        builder._bad_bonds = staticmethod(bad)


def model_checks(lf: LoopFold, items: list[dict]) -> tuple[list[dict], list]:
    """Every item's whole-Fv model from its sequences: geometry JSON and the results."""
    abs_ = [AntibodyInput(it["name"], it["chains"]["H"][0].sequence, it["chains"]["L"][0].sequence) for it in items]
    res = list(predict_antibodies(lf.predictor, abs_, fv=lf.builder))
    return [r.fv.geometry.json() for r in res if r.fv is not None], res


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; write the tables and return them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--rosetta", type=int, default=500)
    ap.add_argument("--refine", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/bench"))
    args = ap.parse_args(argv)
    folder = args.data / "rosetta_antibody_db/antibody/antibody_database"
    if not folder.is_dir():
        sys.exit(f"error: {folder}: Rosetta antibody database not found")
    lf = LoopFold()
    rama = lf.builder.rama
    ros = sorted(folder.glob("*.pdb.bz2"))[: args.rosetta]
    rows, examples = [], {}
    models = [read_model(read_text(p)) for p in ros]
    crystal = [check(structure_chains(m), rama) for m in models]
    rows.append(summary("Rosetta crystal structures (files, all atoms)", [c.json() for c in crystal]))
    rows.append(summary("the same without chain gaps", [c.json() for c in crystal if not c.gaps]))
    bb = [check(structure_chains(m, side_chains=False), rama) for m in models]
    rows.append(summary("the same, N CA C O CB only (a model's atoms)", [c.json() for c in bb if not c.gaps]))
    dock = sorted((args.data / "docking_benchmark_5_5/pdbs").glob("*_r_b.pdb"))
    rab_ids = [r["pdb"].lower() for r in json.loads((args.data / "rab/rab_cdr_backbones.json").read_text())]
    rab = [p for i in rab_ids if (p := folder / f"pdb{i}_chothia.pdb.bz2").exists()]
    sets = (("docking 5.5 + RAB", true_antibodies(dock) + true_antibodies(rab)), ("Rosetta Fvs", true_antibodies(ros)))
    first = None
    for name, items in sets:
        runs = (("", contextlib.nullcontext()), (" (correction off: bonds as in templates)", without_planarize()))
        for label, ctx in runs:
            with ctx:
                t0 = time.perf_counter()
                checks, res = model_checks(lf, items)
                rows.append(summary(f"{name} models{label}", checks, time.perf_counter() - t0))
            examples[f"{name}{label}"] = [
                {"id": r.result["id"], "problems": r.fv.geometry.problems()} for r in res
                if r.fv is not None and not r.fv.geometry.passed][:10]  # fmt: skip
            if first is None:
                first = res
    if args.refine:
        from loopfold.fv.refine import refine_pdb
        from loopfold.pipeline.fv_file import fv_text

        done, t0 = [], time.perf_counter()
        for r in [r for r in first if r.fv is not None][: args.refine]:
            text = refine_pdb(fv_text(r.fv), r.result["id"])
            done.append(check_text(text, rama).json())
        rows.append(summary("docking models refined", done, time.perf_counter() - t0))
    out = {"rows": rows, "failing_examples": examples}
    write_outputs(args.out, "model_geometry", out, markdown(rows))
    return out


def markdown(rows: list[dict]) -> str:
    """The table: per set, models passing, and per defect ``models with one / total``."""
    kinds = [k for k in KINDS if k != "cis_pro"]
    head = "| set | models | passed | " + " | ".join(kinds) + " | cis_pro | s/model |"
    lines = [head, "|" + " --- |" * (len(kinds) + 5)]
    for r in rows:
        cells = [f"{r[f'{k}_models']} / {r[f'{k}_total']}" for k in kinds]
        lines.append(f"| {r['set']} | {r['models']} | {r['passed']} | " + " | ".join(cells)
                     + f" | {r['cis_pro_total']} | {r.get('seconds_per_model', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
