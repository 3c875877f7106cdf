#!/usr/bin/env bash
# Train the shipped model from the shared data and copy it into src/loopfold/weights.
# Loops are numbered from sequence with validation (the path predict uses). Excluded from
# training: RAB ids, DeepAb test ids, docking benchmark ids, and every loop >= 70% identical to
# one of their loops (same CDR, compared under the benchmark's own CDR definition). The template
# score's identity weight is then tuned on validation loops.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${LOOPFOLD_SHARED_DATA:-../shared/data}
L=.venv/bin/loopfold
mkdir -p out
$L data build "$D/rosetta_antibody_db/antibody/antibody_database" --out out/rosetta.parquet
$L data build "$D/rab/rab_cdr_backbones.json" --out out/rab.parquet
$L data build "$D/docking_benchmark_5_5/pdbs" --out out/docking.parquet
$L data split out/rosetta.parquet --by cluster --identity 0.7 --seed 0 \
  --exclude-ids out/rab.parquet --exclude-ids out/docking.parquet --exclude-ids "$D/deepab/TestSetList.txt" \
  --out out/rosetta_split
$L train --data out/rosetta.parquet --split out/rosetta_split --out out/shipped --model loopnet --epochs 30
.venv/bin/python bench/tune_identity.py out/shipped --data out/rosetta.parquet --split out/rosetta_split --apply
mkdir -p src/loopfold/weights
cp out/shipped/model.safetensors out/shipped/config.json out/shipped/training_loops.csv \
   out/shipped/templates.safetensors src/loopfold/weights/
