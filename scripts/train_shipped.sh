#!/usr/bin/env bash
# Train a model on all the shared data up to 2020 (scripts/train_model.sh, no time split) and copy it
# into src/loopfold/weights: the shipped model (docs/model.md). Run end to end on 2026-12-03 in
# 45 minutes on 2 cores (the shipped library's per-CDR error scales were then fitted by the same
# `bench/fv.py --fit-error 150 --apply` step as train_model.sh ends with now).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/train_model.sh out/shipped_all
rm -rf src/loopfold/weights && mkdir -p src/loopfold/weights
cp -r out/shipped_all/model/. src/loopfold/weights/
