"""Repertoire-scale run: generated antibodies through ``--parquet`` from a .fasta.gz at two sizes (memory
must stay flat), a run killed mid-way and resumed (its rows must equal the uninterrupted run's), and a
bad record that is reported while every other record is written.

    python bench/repertoire.py [--n 100000] [--small 10000] [--kill-at 0.5] [--out out/bench]

Each run is a fresh ``loopfold predict --fasta X.fasta.gz --parquet DIR --quiet``
process with default settings (all species, validated numbering). The killed run
gets SIGKILL (no clean-up of any kind) once ``--kill-at`` of its parts are on disk.
Writes ``OUT/repertoire.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import tempfile
from pathlib import Path

from speed import make_fasta, rate, run_cli
from tables import write_outputs


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; write OUT/repertoire.json and .md and return the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of parts written when the run is killed")
    ap.add_argument("--out", type=Path, default=Path("out/bench"))
    args = ap.parse_args(argv)
    import pyarrow.parquet as pq

    res: dict = {"n": args.n, "small": args.small}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        runs = {}
        for name, n in (("small", args.small), ("big", args.n)):
            fasta = d / f"{name}.fasta.gz"
            make_fasta(fasta, n, bad=n // 3)
            runs[name] = run_cli("predict", "--fasta", str(fasta), "--parquet", str(d / name), "--quiet")
            r = runs[name]
            res[name] = {"antibodies": n, "exit": r["rc"], "seconds": round(r["s"], 1), "per_s": rate(n, r),
                         "peak_rss_mb": r["peak_rss_mb"], "rss_trace": r["rss_trace"],
                         "summary": r["stderr"].strip().splitlines()[-1] if r["stderr"].strip() else ""}  # fmt: skip
            print(name, res[name]["per_s"], "/s, peak", r["peak_rss_mb"], "MB", flush=True)
        total = math.ceil(args.n / json.loads((d / "big" / "_run.json").read_text())["part_size"])
        killed = d / "killed"

        def enough() -> bool:
            return len(list(killed.glob("loops/part-*.parquet"))) >= args.kill_at * total if killed.is_dir() else False

        args_big = ["predict", "--fasta", str(d / "big.fasta.gz"), "--parquet", str(killed), "--quiet"]
        k = run_cli(*args_big, kill_when=enough)
        kept = len(list(killed.glob("loops/part-*.parquet")))
        stale = len(list(killed.glob("**/.*.tmp")))
        if k["rc"] != -signal.SIGKILL or kept >= total:
            raise SystemExit(f"the run was not killed mid-way (exit {k['rc']}, {kept} of {total} parts)")
        r = run_cli(*args_big, "--resume")
        same = pq.read_table(killed).equals(pq.read_table(d / "big"))  # a run folder reads as its loop table

        def errors(folder: Path) -> list[dict]:
            return pq.read_table(folder / "_errors").to_pylist()

        res["kill_resume"] = {
            "parts": total, "killed_exit": k["rc"], "killed_after_s": round(k["s"], 1), "parts_kept": kept,
            "temporary_files_left_by_kill": stale, "resume_exit": r["rc"], "resume_s": round(r["s"], 1),
            "rows": pq.read_table(killed).num_rows, "rows_equal_uninterrupted": bool(same),
            "errors_equal_uninterrupted": errors(killed) == errors(d / "big"), "errors": errors(killed),
            "temporary_files_after_resume": len(list(killed.glob("**/.*.tmp"))),
            "resume_summary": r["stderr"].strip().splitlines()[-1] if r["stderr"].strip() else "",
        }  # fmt: skip
    s, b, kr = res["small"], res["big"], res["kill_resume"]
    md = "\n".join([
        f"# Repertoire run: {args.n:,} and {args.small:,} generated antibodies (.fasta.gz -> --parquet)", "",
        "| run | antibodies/s | peak RSS (MB) | exit | summary |", "|---|---|---|---|---|",
        f"| {args.small:,} | {s['per_s']} | {s['peak_rss_mb']} | {s['exit']} | {s['summary']} |",
        f"| {args.n:,} | {b['per_s']} | {b['peak_rss_mb']} | {b['exit']} | {b['summary']} |", "",
        f"Killed (SIGKILL) after {kr['killed_after_s']} s with {kr['parts_kept']} of {kr['parts']} parts on disk "
        f"(exit {kr['killed_exit']}, {kr['temporary_files_left_by_kill']} temporary file(s) left); `--resume` took "
        f"{kr['resume_s']} s (exit {kr['resume_exit']}: {kr['resume_summary']}), removed them "
        f"({kr['temporary_files_after_resume']} left). Rows equal to the uninterrupted run: "
        f"{kr['rows_equal_uninterrupted']} ({kr['rows']:,} rows); failed records equal: "
        f"{kr['errors_equal_uninterrupted']} ({kr['errors']}).", ""])  # fmt: skip
    write_outputs(args.out, "repertoire", res, md)
    return res


if __name__ == "__main__":
    main()
