"""VH-VL orientation averaging, chosen on validation structures (``ORIENT_AVERAGE``).

    .venv/bin/python bench/tune_orientation.py [--data ../shared/data] [--split out/rosetta_split] [--n 150]

Fv framework RMSD (both chains superposed) of the frameworks alone on up to N validation structures
(their own and related entries left out of the library), averaging the VH-VL orientation of the k
best entries, for several k. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from fv import ROOT, true_antibodies, without_relatives

from loopfold.fv.assemble import FrameworkBuilder
from loopfold.fv.library import LIBRARY_FILE, load_library
from loopfold.pipeline.predictor import SHIPPED
from loopfold.structure.superpose import superposed_rmsd


def tune_orientation(builder: FrameworkBuilder, data: Path, n: int, split: Path) -> dict:
    """Fv framework RMSD (both chains superposed; Å) of the frameworks alone on up to n validation
    structures (their own and related entries left out of the library), averaging the VH-VL orientation of the
    k best entries, for several k: the choice of ``orient_average`` is made here, not on benchmarks."""
    parts = pd.read_csv(split / "manifest.csv")
    ids = sorted({lid.split(":")[-1].split("_")[0] for lid in parts.loc[parts["part"] == "validation", "loop_id"]})
    ids = list(np.random.default_rng(0).choice(ids, size=min(n, len(ids)), replace=False))
    folder = data / "rosetta_antibody_db/antibody/antibody_database"
    items = true_antibodies([p for i in ids if (p := folder / f"pdb{i}_chothia.pdb.bz2").exists()])
    lib = without_relatives(builder.library, items, ids)
    out = {}
    for k in (1, 3, 5, 10, 20):
        b = FrameworkBuilder(lib, orient_average=k)
        rms = []
        for it in items:
            chains = {c: (it["chains"][c][0].sequence, it["chains"][c][1]) for c in ("H", "L")}
            fr = b.frame(it["name"], chains)
            ps, ts = [], []
            for c in ("H", "L"):
                t = it["chains"][c][0].coords
                ok = np.isfinite(fr.coords[c]).all((1, 2)) & np.isfinite(t).all((1, 2))
                ps.append(fr.coords[c][ok].reshape(-1, 3))
                ts.append(t[ok].reshape(-1, 3))
            rms.append(superposed_rmsd(np.concatenate(ps), np.concatenate(ts)))
        out[k] = {"fw_fv_mean": round(float(np.mean(rms)), 3), "fw_fv_median": round(float(np.median(rms)), 3)}
        print(k, out[k], flush=True)
    return {"structures": len(items), "by_k": out}


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison and print it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--split", type=Path, default=ROOT / "out" / "rosetta_split")
    ap.add_argument("--model", type=Path, default=SHIPPED)
    ap.add_argument("--n", type=int, default=150)
    args = ap.parse_args(argv)
    res = tune_orientation(FrameworkBuilder(load_library(args.model / LIBRARY_FILE)), args.data, args.n, args.split)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
