"""Time to the first written record and throughput of a JSON-lines run, for one or more code trees.

    .venv/bin/python bench/first_record.py N "name|SRC_DIR|extra predict args" [...] [--repeats 2] [--out out/bench]

Each configuration runs ``loopfold predict --fasta IN --jsonl OUT`` on the same N antibodies
(``bench/speed.py``'s ``make_fasta``) in a fresh process, with SRC_DIR first on ``PYTHONPATH`` (a
``git worktree``'s ``src/``; empty: this checkout), configurations alternating; OUT is polled every
50 ms. Reported per run: seconds from the start of the process to the first whole line on disk,
the records on disk 10 s after that, and antibodies/s over the whole run. Writes
``OUT/first_record.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speed import make_fasta
from tables import write_outputs

ROOT = Path(__file__).resolve().parents[1]
LOOPFOLD = str(Path(sys.executable).with_name("loopfold"))


def one_run(fasta: Path, n: int, src: str, extra: list[str]) -> dict:
    """One run's time to the first record, records at 10 s after it, and throughput."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.jsonl"
        env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
        t0 = time.monotonic()
        proc = subprocess.Popen([LOOPFOLD, "predict", "--fasta", str(fasta), "--jsonl", str(out), "-q", *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
        first = later = None
        while proc.poll() is None:
            lines = out.read_bytes().count(b"\n") if out.exists() else 0
            now = time.monotonic() - t0
            if first is None and lines:
                first = now
            if first is not None and later is None and now >= first + 10:
                later = lines
            time.sleep(0.05)
        total = time.monotonic() - t0
        if proc.returncode not in (0, 3):
            raise SystemExit(f"loopfold exited {proc.returncode}")
        lines = out.read_bytes().count(b"\n")
    return {"first_record_s": round(first if first is not None else total, 2),
            "records_10_s_after_first": later if later is not None else lines,
            "seconds": round(total, 1), "antibodies_per_s": round(n / total, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("configs", nargs="+", help='"name|SRC_DIR|extra args"')
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        fasta = Path(d) / "in.fasta"
        make_fasta(fasta, args.n)
        for rep in range(args.repeats):
            for cfg in args.configs:
                name, src, extra = (cfg.split("|") + ["", ""])[:3]
                row = {"config": name, "repeat": rep + 1, **one_run(fasta, args.n, src, extra.split())}
                print(row, flush=True)
                rows.append(row)
    md = [f"# First record and throughput, {args.n} antibodies, JSON lines", "",
          "| config | run | first record (s) | records 10 s later | total (s) | antibodies/s |",
          "| --- | --- | --- | --- | --- | --- |",
          *(f"| {r['config']} | {r['repeat']} | {r['first_record_s']} | {r['records_10_s_after_first']} | "
            f"{r['seconds']} | {r['antibodies_per_s']} |" for r in rows)]  # fmt: skip
    res = {"n": args.n, "runs": rows}
    write_outputs(args.out, "first_record", res, "\n".join(md) + "\n")
    return res


if __name__ == "__main__":
    main()
