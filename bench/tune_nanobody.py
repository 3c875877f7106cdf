"""Tune which nanobody CDRs choose among nanobody templates only, on validation loops.

    .venv/bin/python bench/tune_nanobody.py RUN --data DS.parquet --split SPLITDIR [--apply] [--json]

Nanobody loops are heavy-chain loops whose structure has no light chain and
whose FR2 hallmarks are a VHH's (:mod:`loopfold.numbering.vhh`); the nanobody
templates are the run's templates cut from such chains (the training part).
For H1, H2 and H3, the unique validation nanobody loops are scored
(``rmsd_loop``) when their template is chosen among all templates and among
the nanobody templates only. ``--apply`` writes the nanobody template ids
(``info.nanobody_templates``) and the CDRs where the nanobody templates gave
the lower validation ``rmsd_loop`` (``info.nanobody_cdrs``) into RUN's config.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from tables import tuning_parser, update_config

from loopfold.errors import LoopfoldError
from loopfold.evaluate.metrics import evaluate_angles
from loopfold.evaluate.scores import unique_loops
from loopfold.model.dataset import load_part
from loopfold.model.decode import run_network
from loopfold.model.ensemble import member_weights
from loopfold.model.fv_inputs import frame_batch
from loopfold.model.templates import choose_conformations, template_ids
from loopfold.numbering.anarci import number_sequences
from loopfold.numbering.vhh import is_vhh
from loopfold.pipeline.predictor import Predictor

CDRS = ("H1", "H2", "H3")


def nanobody_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Heavy-chain rows with no partner chain whose chain is a VHH by its hallmarks."""
    h = df[(df["chain_type"] == "H") & df["partner_sequence"].isna() & df["chain_sequence"].notna()]
    seqs = sorted(set(h["chain_sequence"]))
    found = number_sequences([(f"chain{i}", s) for i, s in enumerate(seqs)])
    vhh = {s for s, d in zip(seqs, found, strict=True) if not isinstance(d, Exception) and d and is_vhh(s, d[0])}
    return h[h["chain_sequence"].isin(vhh)]


def tune(run, data, split) -> dict:  # noqa: ANN001
    """Validation ``rmsd_loop`` of nanobody loops per CDR, all templates against nanobody templates."""
    p = Predictor(run)
    max_len = p.cfg.max_len
    train_nb = nanobody_rows(load_part(data, split, "train", max_len))
    ids = sorted(set(train_nb["loop_id"]) & template_ids(p.templates))
    nb_lib = p.templates.subset(set(ids))
    val = unique_loops(nanobody_rows(load_part(data, split, "validation", max_len)))
    val = val[val["cdr"].isin(CDRS)].reset_index(drop=True)
    if not len(val) or not ids:
        raise LoopfoldError(f"{run}: no nanobody validation loops or templates")
    batch = frame_batch(val, max_len, p.templates)[0] if p.reads_fv else None
    preds = [run_network(p.model, batch, temperature=p.temperature)]
    preds += [run_network(m.model, batch, temperature=m.temperature) for m in p.members]
    cdrs, seqs, lengths = val["cdr"].tolist(), val["sequence"].tolist(), batch.lengths.numpy()
    w = member_weights(p.info.ensemble_weights, cdrs, len(preds)) if p.members else None
    table = {}
    for label, alt in (("all templates", None), ("nanobody templates", (nb_lib, np.ones(len(val), bool)))):
        ang, xyz, _ = choose_conformations(preds, cdrs, seqs, lengths, p.templates, p.cfg.identity_weight, w, alt)
        res = evaluate_angles(val, ang, preds[0]["sincos"], xyz)
        table[label] = {c: round(m["rmsd_loop"], 3) for c, m in res["by_cdr"].items()}
    better = [c for c in CDRS if c in table["all templates"]
              and table["nanobody templates"][c] < table["all templates"][c]]  # fmt: skip
    counts = val["cdr"].value_counts().to_dict()
    return {"run": str(run), "validation_loops": {c: int(counts.get(c, 0)) for c in CDRS},
            "nanobody_templates": len(ids), "rmsd_loop": table, "nanobody_cdrs": better, "ids": ids}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    args = tuning_parser(__doc__).parse_args(argv)
    try:
        res = tune(args.run, args.data, args.split)
    except LoopfoldError as exc:
        sys.exit(f"error: {exc}")
    if args.apply:
        update_config(args.run, lambda doc: doc["info"].update(nanobody_templates=res["ids"],
                                                               nanobody_cdrs=res["nanobody_cdrs"]))  # fmt: skip
    shown = {k: v for k, v in res.items() if k != "ids"}
    print(json.dumps(shown, indent=2) if args.json else
          f"{res['nanobody_templates']} nanobody templates; validation loops {res['validation_loops']}\n"
          + "\n".join(f"{k:<20}" + " ".join(f"{c} {v:.3f}" for c, v in row.items())
                      for k, row in res["rmsd_loop"].items())
          + f"\nnanobody templates for: {res['nanobody_cdrs']}")  # fmt: skip
    return res


if __name__ == "__main__":
    main()
