#!/usr/bin/env bash
# Quick start: set everything up, then run the main job: summarise the seed data (when
# ../shared/data is there) and predict the example antibody's CDR loops with the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_venv.sh
mkdir -p out
if [ -f ../shared/data/seed/pdb_martin_02.pickle ]; then
  .venv/bin/loopfold data build ../shared/data/seed/pdb_martin_02.pickle --out out/seed.parquet
  .venv/bin/loopfold data info out/seed.parquet
fi
.venv/bin/loopfold predict --fasta examples/trastuzumab.fasta --json out/example.json --pdb-dir out/example_pdb
echo "predictions: $(pwd)/out/example.json and $(pwd)/out/example_pdb/trastuzumab.pdb"
.venv/bin/python - <<'PY'
import json
for lp in json.load(open("out/example.json"))["results"][0]["loops"]:
    print(f"  {lp['cdr']} {lp['sequence']}: predicted rmsd_loop {lp.get('rmsd_predicted')} A, "
          f"seen_in_training={lp['seen_in_training']}, highest identity to a training loop "
          f"{lp['max_training_identity']}")
PY
