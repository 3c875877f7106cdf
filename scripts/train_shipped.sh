#!/usr/bin/env bash
# Train the shipped model on all the shared data up to 2020 (scripts/train_model.sh, no time split)
# and copy it into src/loopfold/weights. About 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/train_model.sh out/shipped_all
rm -rf src/loopfold/weights && mkdir -p src/loopfold/weights
cp -r out/shipped_all/model/. src/loopfold/weights/
