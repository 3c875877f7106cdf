#!/usr/bin/env bash
# Run the whole test suite (sets up .venv first when needed): ruff, the import-layer contract
# (import-linter, pyproject.toml), mypy on src/, then pytest. Arguments go to pytest: for a quick run
# while developing, `bash scripts/test.sh -m "not slow"` (Ray, OpenMM, signals, training resumes left out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_venv.sh
.venv/bin/ruff check src tests bench
.venv/bin/lint-imports --no-cache
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
