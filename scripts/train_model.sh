#!/usr/bin/env bash
# Train a model from all the shared data and write it, ready to use, into OUT/model:
#   bash scripts/train_model.sh OUT [TEST_FROM]
# Data: the Rosetta antibody database and sabdab_extra (structures numbered from sequence with
# validation, the path predict uses), merged with duplicates across the two removed (same PDB id or
# the same chain sequence; the Rosetta copy kept). Excluded from training, templates and the
# framework library: RAB, DeepAb test and docking benchmark ids, and every loop >= 70% identical to
# one of their loops (same CDR, compared under the benchmark's own CDR definition).
# TEST_FROM (an ISO date): a time split for benchmarks (bench/recent.py). Structures released from
# then on are the test part; loops >= 70% identical to one of their loops, and framework entries
# whose CDR-H3 is, are left out; the rest is split by cluster (train/validation 7:2). Without it,
# every loop up to 2020 is train or validation (8:2 by cluster): the shipped model.
# Loops are placed in the Fv by their template's own framework where validation says so (bench/placement.py),
# and chosen among the network's best templates by a ranker (bench/ranker.py).
# The model is an FvNet (whole-Fv context, structural losses; no templates as input) with a LoopNet
# member; the per-CDR ensemble weights, the predicted-error model and the Fv error coefficients are
# fitted on validation loops and structures.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/train_model.sh OUT [TEST_FROM]}
TEST_FROM=${2:-}
D=${LOOPFOLD_SHARED_DATA:-../shared/data}
L=.venv/bin/loopfold
P=.venv/bin/python
mkdir -p out "$OUT"
$L data build "$D/rosetta_antibody_db/antibody/antibody_database" --out out/rosetta.parquet
$L data build "$D/sabdab_extra/structures" --out out/sabdab_extra.parquet
$L data build "$D/rab/rab_cdr_backbones.json" --out out/rab.parquet
$L data build "$D/docking_benchmark_5_5/pdbs" --out out/docking.parquet
$L data merge out/rosetta.parquet out/sabdab_extra.parquet --dedupe --out out/all.parquet
EXCLUDE=(--exclude-ids out/rab.parquet --exclude-ids out/docking.parquet --exclude-ids "$D/deepab/TestSetList.txt")
if [ -n "$TEST_FROM" ]; then
  SPLIT=(--test-from "$TEST_FROM"); LIBRARY=(--test-from "$TEST_FROM")
else
  SPLIT=(--fractions 0.8 0.2 0); LIBRARY=()
fi
rm -rf "$OUT/split" "$OUT/loopnet" "$OUT/fvnet" "$OUT/model"
$L data split out/all.parquet --by cluster --identity 0.7 --seed 0 "${SPLIT[@]}" "${EXCLUDE[@]}" --out "$OUT/split"
$L train --data out/all.parquet --split "$OUT/split" --out "$OUT/loopnet" --model loopnet --epochs 30
# FvNet without templates as input: on validation loops its H3 beat the variant with them (bench/ablations.py)
echo '{"use_templates": false}' > "$OUT/fvnet.json"
$L train --data out/all.parquet --split "$OUT/split" --out "$OUT/fvnet" --model fvnet --config "$OUT/fvnet.json"
mkdir -p "$OUT/model/members/loopnet"
cp "$OUT"/fvnet/{model.safetensors,config.json,training_loops.csv,templates.safetensors} "$OUT/model/"
cp "$OUT"/loopnet/{model.safetensors,config.json} "$OUT/model/members/loopnet/"
$P bench/tune_ensemble.py "$OUT/model" --data out/all.parquet --split "$OUT/split" --apply
# nanobody loops: the CDRs whose validation loops do better choosing among nanobody templates only
$P bench/tune_nanobody.py "$OUT/model" --data out/all.parquet --split "$OUT/split" --apply
# the framework library whole Fv models are built from (nanobody entries marked), and the
# per-residue error coefficients of an Fv, fitted on validation structures
$L data frameworks "$D/rosetta_antibody_db/antibody/antibody_database" "$D/sabdab_extra/structures" \
  --out "$OUT/model/frameworks.npz" "${EXCLUDE[@]}" "${LIBRARY[@]}"
# each template loop's own framework, and the CDRs (and the radius around their stems) whose loops
# are placed in the Fv by it rather than by their stems, chosen on validation structures
$L data template-frames "$OUT/model" "$D/rosetta_antibody_db/antibody/antibody_database" "$D/sabdab_extra/structures"
$P bench/placement.py "$OUT/model" --data "$D" --split "$OUT/split" --n 600 --apply --out "$OUT/bench"
# the ranker choosing each loop among the network's 20 best templates in the Fv: fitted on training
# loops predicted as if new, kept for the CDRs where it beats the first choice on validation loops
$P bench/ranker.py "$OUT/model" --data "$D" --split "$OUT/split" --train 5000 --validation 5000 --apply \
  --out "$OUT/bench"
$P bench/fv.py --model "$OUT/model" --split "$OUT/split" --fit-error 150 --apply
