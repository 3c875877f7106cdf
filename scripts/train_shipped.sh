#!/usr/bin/env bash
# Train the shipped model from the shared data and copy it into src/loopfold/weights.
# Loops are numbered from sequence with validation (the path predict uses). Excluded from
# training: RAB ids, DeepAb test ids, docking benchmark ids, and every loop >= 70% identical to
# one of their loops (same CDR, compared under the benchmark's own CDR definition).
# The shipped model is an FvNet (whole-Fv context, structural losses; no templates as input) with a
# LoopNet member; the per-CDR ensemble weights and the predicted-error model are fitted on validation
# loops (the identity weight, 20, was tuned on validation loops for LoopNet by bench/tune_identity.py).
# About 17 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${LOOPFOLD_SHARED_DATA:-../shared/data}
L=.venv/bin/loopfold
P=.venv/bin/python
mkdir -p out
$L data build "$D/rosetta_antibody_db/antibody/antibody_database" --out out/rosetta.parquet
$L data build "$D/rab/rab_cdr_backbones.json" --out out/rab.parquet
$L data build "$D/docking_benchmark_5_5/pdbs" --out out/docking.parquet
$L data split out/rosetta.parquet --by cluster --identity 0.7 --seed 0 \
  --exclude-ids out/rab.parquet --exclude-ids out/docking.parquet --exclude-ids "$D/deepab/TestSetList.txt" \
  --out out/rosetta_split
$L train --data out/rosetta.parquet --split out/rosetta_split --out out/shipped_loopnet --model loopnet --epochs 30
# FvNet without templates as input: on validation loops its H3 beat the variant with them (bench/ablations.py)
echo '{"use_templates": false}' > out/shipped_fvnet.json
$L train --data out/rosetta.parquet --split out/rosetta_split --out out/shipped_fvnet --model fvnet \
  --config out/shipped_fvnet.json
rm -rf out/shipped && mkdir -p out/shipped/members/loopnet
cp out/shipped_fvnet/{model.safetensors,config.json,training_loops.csv,templates.safetensors} out/shipped/
cp out/shipped_loopnet/{model.safetensors,config.json} out/shipped/members/loopnet/
$P bench/tune_ensemble.py out/shipped --data out/rosetta.parquet --split out/rosetta_split --apply
rm -rf src/loopfold/weights && mkdir -p src/loopfold/weights
cp -r out/shipped/. src/loopfold/weights/
# the framework library whole Fv models are built from (benchmark antibodies left out), and the
# per-residue error coefficients of an Fv, fitted on validation structures
$L data frameworks "$D/rosetta_antibody_db/antibody/antibody_database" --out src/loopfold/weights/frameworks.npz \
  --exclude-ids out/rab.parquet --exclude-ids out/docking.parquet --exclude-ids "$D/deepab/TestSetList.txt"
$P bench/fv.py --fit-error 150 --apply
