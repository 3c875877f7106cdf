#!/usr/bin/env bash
# Run the whole test suite (sets up .venv first when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_venv.sh
.venv/bin/ruff check src tests bench
.venv/bin/python -m pytest -q "$@"
