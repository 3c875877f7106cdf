"""Geometry round trip on every CDR-H3 loop of the Rosetta antibody database.

Each loop window (H3 + stems) is rebuilt from its own torsions (NeRF) twice:
with its own bond lengths and angles (must give < 0.01 Å RMSD), and with
Engh & Huber ideal geometry (mean and 95th percentile RMSD reported).

    python bench/geometry.py [--data ../shared/data] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from loopfold.data.build import build_dataset
from loopfold.data.extract import ExtractOptions
from loopfold.structure.geometry import backbone_torsions, internal_geometry
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.superpose import superposed_rmsd


def round_trip(coords: np.ndarray) -> tuple[float, float]:
    """(RMSD with own geometry, RMSD with ideal geometry) of one window [W, 4, 3]."""
    tors = backbone_torsions(coords)
    own = rebuild_backbone(tors, internal_geometry(coords), first_residue=coords[0, :3])
    ideal = rebuild_backbone(tors, None, first_residue=coords[0, :3])
    return superposed_rmsd(own, coords), superposed_rmsd(ideal, coords)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a table (or JSON) and return the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    ap.add_argument("--json", action="store_true", help="print a JSON object")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    folder = Path(args.data) / "rosetta_antibody_db" / "antibody" / "antibody_database"
    if not folder.is_dir():
        sys.exit(f"error: {folder}: Rosetta antibody database not found")
    t0 = time.perf_counter()
    records, _ = build_dataset(folder, "pdb", ExtractOptions(source="rosetta"), workers=args.workers)
    build_s = time.perf_counter() - t0
    own, ideal = [], []
    for rec in records:
        if rec.cdr != "H3" or rec.has_chain_break or rec.has_missing_atoms:
            continue
        a, b = round_trip(rec.coords)
        own.append(a)
        ideal.append(b)
    own_a, ideal_a = np.array(own), np.array(ideal)
    result = {
        "n_loops": len(own),
        "rmsd_own_geometry_max": float(own_a.max()),
        "rmsd_own_geometry_mean": float(own_a.mean()),
        "rmsd_ideal_mean": float(ideal_a.mean()),
        "rmsd_ideal_p95": float(np.percentile(ideal_a, 95)),
        "rmsd_ideal_max": float(ideal_a.max()),
        "build_seconds": round(build_s, 2),
        "definition": "north", "stems": 3,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"H3 windows (North H3 + 3 stems each side), Rosetta antibody database: {len(own)} loops")
        print(f"{'geometry':<10} {'mean Å':>9} {'p95 Å':>9} {'max Å':>9}")
        print(f"{'own':<10} {own_a.mean():9.5f} {np.percentile(own_a, 95):9.5f} {own_a.max():9.5f}")
        print(f"{'ideal':<10} {ideal_a.mean():9.3f} {np.percentile(ideal_a, 95):9.3f} {ideal_a.max():9.3f}")
        print(f"dataset build: {build_s:.1f} s")
    return result


if __name__ == "__main__":
    main()
