"""Speed benchmark: cold start, throughput of every output path, numbering, peak memory, Ray.

    python bench/speed.py [--n 5000] [--model RUN] [--ray] [--out out/bench] [--json]

Input: N generated antibodies (trastuzumab's frameworks with real CDR-H3 and CDR-L3
loops, each changed at a few positions, see :func:`make_fasta`: every chain is new
to the run's numbering cache unless said). Each row is a fresh ``loopfold
predict`` process (wall time, model loading included; peak resident memory of
the process and every process under it, a local Ray cluster's too, polled from
/proc): JSON lines with the whole Fv, loops only, Parquet parts (the repertoire
path) with default settings, with ``--species human``, and with one light chain
shared by all antibodies (the numbering cache); N/5 antibodies with one Fv PDB
file each. In this process: the numbering step alone (chains/s) and everything
after it on the Parquet path (parts written). With ``--ray`` the Parquet run
again on a Ray cluster started on this machine, 1 and 2 workers.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from tables import write_outputs

VH = ("EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLR"
      "AEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS")  # fmt: skip
VL = "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"


def real_cdr3s() -> dict[str, list[str]]:
    """The shipped model's training CDR-H3 and CDR-L3 sequences (North), distinct."""
    import csv

    from loopfold.pipeline.predictor import MANIFEST, SHIPPED

    with open(SHIPPED / MANIFEST, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {c: sorted({r["sequence"] for r in rows if r["cdr"] == c}) for c in ("H3", "L3")}


def make_fasta(path: Path, n: int, vary_light: bool = True, bad: int | None = None) -> None:
    """N antibodies ``ab0..``, trastuzumab's frameworks with CDR-H3 and (``vary_light``) CDR-L3 taken from
    real ones (the shipped training loops) with 3 and 2 positions changed to letters drawn from all
    those loops' composition, so chains are realistic and (nearly) all distinct. ``bad``: the index of a
    record written with a letter that is not an amino acid. A ``.gz`` path is gzipped."""
    rng = np.random.default_rng(0)
    real = real_cdr3s()
    letters = {c: np.array(list("".join(real[c]))) for c in real}
    i, j = VH.index("SRWGGDGFYAMDY"), VL.index("QQHYTTPPT")

    def variant(cdr: str, changes: int) -> str:
        seq = list(real[cdr][rng.integers(len(real[cdr]))])
        for p in rng.choice(len(seq), min(changes, len(seq)), replace=False):
            seq[p] = rng.choice(letters[cdr])
        return "".join(seq)

    with (gzip.open(path, "wt") if path.suffix == ".gz" else open(path, "w")) as fh:
        for k in range(n):
            heavy = VH[:i] + variant("H3", 3) + VH[i + 13 :]
            light = VL[:j] + variant("L3", 2) + VL[j + 9 :] if vary_light else VL
            if k == bad:
                heavy = heavy[:40] + "X" + heavy[41:]
            fh.write(f">ab{k}|H\n{heavy}\n>ab{k}|L\n{light}\n")


def _rss_mb(pid: int) -> float:
    """Resident memory (MB) of ``pid`` and every process under it (a Ray run's raylet and workers too)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = {pid}, [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        todo += kids
    total = 0
    for p in tree:
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1024


def run_cli(*args: str, kill_when=None) -> dict:  # noqa: ANN001 - kill_when: () -> bool
    """One ``loopfold`` process: wall time, exit code, stderr, peak and sampled resident memory (MB).
    ``kill_when``: polled every 0.2 s; when it returns True the process gets SIGKILL."""
    exe = Path(sys.executable).with_name("loopfold")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    trace: list[tuple[float, float]] = []
    while proc.poll() is None:
        trace.append((round(time.perf_counter() - t0, 1), round(_rss_mb(proc.pid), 1)))
        if kill_when is not None and kill_when():
            proc.kill()
        time.sleep(0.2)
    reader.join()
    return {"s": time.perf_counter() - t0, "rc": proc.returncode, "stderr": "".join(err),
            "peak_rss_mb": max((m for _, m in trace), default=0.0), "rss_trace": trace[:: max(1, len(trace) // 20)]}


def rate(n: int, run: dict) -> float:
    """Antibodies per second of a run (n records)."""
    return round(n / run["s"], 1)


def in_process(fasta: Path, model: str | None) -> dict:
    """In this process (2 threads): numbering alone (anarcism, then validated, all species and human
    only), then the Parquet path after numbering: every chain already numbered (a warm
    ChainNumberer), records predicted by ``predict_antibodies`` in parts of 512 and written as parts."""
    from loopfold.io.fasta import antibodies_from_fasta, antibody_chains
    from loopfold.io.parquet_parts import part_metadata, write_part
    from loopfold.numbering.anarci import number_sequences
    from loopfold.numbering.cache import ChainNumberer
    from loopfold.numbering.validate import check_domain
    from loopfold.pipeline.batch import predict_antibodies
    from loopfold.pipeline.predictor import Predictor

    abs_ = list(antibodies_from_fasta(fasta))
    items = [(f"{ab.name} {label}", seq) for ab in abs_ for label, seq in antibody_chains(ab)]
    out: dict = {"chains": len(items)}
    for species, key in ((["human"], "_human"), (None, "")):
        t0 = time.perf_counter()
        raw = number_sequences(items, workers=2, species=species, engine="anarcism")
        out[f"chains_per_s_anarcism_alone{key}"] = round(len(items) / (time.perf_counter() - t0), 1)
        out[f"domains_failing_validation_anarcism{key}"] = sum(
            check_domain(seq, d.indices, d.positions) is not None
            for (_, seq), doms in zip(items, raw, strict=True) if isinstance(doms, list) for d in doms)  # fmt: skip
        warm = ChainNumberer(species, size=len(items))
        t0 = time.perf_counter()
        warm.number(items, workers=2)
        out[f"chains_per_s_numbering{key}"] = round(len(items) / (time.perf_counter() - t0), 1)
    pred = Predictor(model)  # the last loop's numberer (all species) is warm: prediction numbers nothing
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        results = predict_antibodies(pred, abs_, chunk=512, workers=2, numberer=warm)
        for k in range(0, len(abs_), 512):
            part = [(r.result, r.error) for r in itertools.islice(results, 512)]
            write_part(Path(d), k // 512, part, part_metadata(pred.name, ""))
        out["antibodies_per_s_after_numbering"] = round(len(abs_) / (time.perf_counter() - t0), 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; write OUT/speed.json and .md and return the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--model", default=None, help="run folder (default: the shipped model)")
    ap.add_argument("--ray", action="store_true", help="also the Parquet run on a local Ray cluster, 1 and 2 workers")
    ap.add_argument("--out", type=Path, default=Path("out/bench"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model = ["--model", args.model] if args.model else []
    n, res = args.n, {"n_antibodies": args.n, "model": args.model or "shipped", "cores": os.cpu_count()}
    rows: list[tuple[str, dict, int]] = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        res["cold_start_s"] = round(min(run_cli("predict", "--heavy", VH, "--light", VL, "--json", str(d / "one.json"),
                                                *model)["s"] for _ in range(3)), 2)  # fmt: skip
        big, same_light, small = d / "big.fasta.gz", d / "same_light.fasta", d / "small.fasta"
        make_fasta(big, n)
        make_fasta(same_light, n, vary_light=False)
        make_fasta(small, max(1, n // 5))
        q = ["--quiet", *model]
        runs = [("JSON lines, whole Fv", ["--fasta", str(big), "--jsonl", str(d / "fv.jsonl")], n),
                ("JSON lines, loops only (--no-fv)", ["--fasta", str(big), "--jsonl", str(d / "lo.jsonl"),
                                                      "--no-fv"], n),
                ("Parquet parts", ["--fasta", str(big), "--parquet", str(d / "pq")], n),
                ("Parquet parts, --species human", ["--fasta", str(big), "--parquet", str(d / "pqh"), "--species",
                                                    "human"], n),
                ("Parquet parts, one light chain for all", ["--fasta", str(same_light), "--parquet",
                                                            str(d / "pqs")], n),
                ("one Fv PDB file per antibody (N/5)", ["--fasta", str(small), "--pdb-dir", str(d / "pdb")],
                 max(1, n // 5))]  # fmt: skip
        if args.ray:
            runs += [(f"Parquet parts on Ray, {w} worker(s)", ["--fasta", str(big), "--parquet", str(d / f"ray{w}"),
                                                               "--ray", "local", "--workers", str(w)], n)
                     for w in (1, 2)]  # fmt: skip
        for label, extra, count in runs:
            r = run_cli("predict", *extra, *q)
            if r["rc"] not in (0, 3):
                raise SystemExit(f"{label}: exit {r['rc']}: {r['stderr'][-2000:]}")
            rows.append((label, r, count))
            print(f"{label}: {rate(count, r)}/s, peak {r['peak_rss_mb']} MB", file=sys.stderr)
        res["parquet_bytes_per_antibody"] = round(sum(f.stat().st_size for f in (d / "pq").rglob("*.parquet")) / n)
        res.update(in_process(big, args.model))
    res["runs"] = [{"run": label, "antibodies": count, "seconds": round(r["s"], 1), "per_s": rate(count, r),
                    "peak_rss_mb": r["peak_rss_mb"]} for label, r, count in rows]  # fmt: skip
    md = "\n".join([f"# Speed: {n} generated antibodies, {res['cores']} cores", "",
                    f"Cold start (one antibody, JSON): {res['cold_start_s']} s; Parquet output "
                    f"{res['parquet_bytes_per_antibody']} bytes per antibody", "",
                    "| run (fresh process, model loading included) | antibodies/s | peak RSS (MB) |", "|---|---|---|",
                    *[f"| {r['run']} | {r['per_s']} | {r['peak_rss_mb']} |" for r in res["runs"]], "",
                    f"In process ({res['chains']} chains): validated numbering {res['chains_per_s_numbering']} "
                    f"chains/s with all species, {res['chains_per_s_numbering_human']} with human only (anarcism "
                    f"alone {res['chains_per_s_anarcism_alone']} and {res['chains_per_s_anarcism_alone_human']}; "
                    f"domains failing validation {res['domains_failing_validation_anarcism']} and "
                    f"{res['domains_failing_validation_anarcism_human']}); after numbering "
                    f"{res['antibodies_per_s_after_numbering']} antibodies/s (Parquet parts written)", ""])  # fmt: skip
    write_outputs(args.out, "speed", res, md) if not args.json else print(__import__("json").dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
