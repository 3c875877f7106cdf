#!/usr/bin/env bash
# Quick start: set everything up, then run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_venv.sh
mkdir -p out
.venv/bin/loopfold data build ../shared/data/seed/pdb_martin_02.pickle --out out/seed.parquet
.venv/bin/loopfold data info out/seed.parquet
