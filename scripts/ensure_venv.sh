#!/usr/bin/env bash
# Create .venv at the project root and install loopfold with the exact tested versions of its
# dependencies (constraints.txt; torch 2.13.0 CPU build), the test tools and the optional
# refinement packages (OpenMM, PDBFixer) and Ray (--ray runs). Re-installs when pyproject.toml or constraints.txt
# changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
marker=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$marker" ] || [ pyproject.toml -nt "$marker" ] || [ constraints.txt -nt "$marker" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,refine,cluster]' 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import loopfold, torch, gemmi, anarcism, openmm, pdbfixer, ray.data"
  touch "$marker"
fi
