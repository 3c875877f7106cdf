#!/usr/bin/env bash
# Create .venv at the project root and install loopfold with its pinned dependencies
# (torch==2.13.0 CPU build). Re-installs when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
marker=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$marker" ] || [ pyproject.toml -nt "$marker" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import loopfold, torch, gemmi, anarcism" 
  touch "$marker"
fi
