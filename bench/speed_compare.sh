#!/usr/bin/env bash
# Whole-Fv throughput of several code trees / models on the same input, fresh process each, alternating:
#   bash bench/speed_compare.sh N REPEATS "name|SRC_DIR|extra predict args" ...
# SRC_DIR goes first on PYTHONPATH (a checkout's src/, e.g. a `git worktree` of an older commit);
# the input is N antibodies from bench/speed.py's make_fasta. Prints antibodies/s per run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: bench/speed_compare.sh N REPEATS CONFIG...}; REPEATS=${2:?}; shift 2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
.venv/bin/python -c "import sys, pathlib; sys.path.insert(0, 'bench'); from speed import make_fasta; make_fasta(pathlib.Path('$TMP/in.fasta'), $N)"
for _ in $(seq "$REPEATS"); do
  for cfg in "$@"; do
    IFS='|' read -r name src extra <<< "$cfg"
    rm -f "$TMP/out.jsonl"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086  # extra holds several arguments
    PYTHONPATH=$src .venv/bin/loopfold predict --fasta "$TMP/in.fasta" --jsonl "$TMP/out.jsonl" -q $extra > /dev/null
    t1=$(date +%s.%N)
    .venv/bin/python -c "print('$name', round($N / ($t1 - $t0), 1), 'antibodies/s')"
  done
done
