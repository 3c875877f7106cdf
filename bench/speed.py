"""Speed benchmark: cold start, batch throughput, numbering share, peak memory.

    python bench/speed.py [--n 10000] [--model RUN] [--json]

Cold start: a fresh ``loopfold predict --heavy/--light --json`` process, wall time.
Batch: N antibodies (trastuzumab with random CDR-H3 mutations) from FASTA,
numbered with anarcism, predicted (whole Fv built) and written as JSON lines;
the same with ``--no-fv`` (loops only); N/5 of them end to end with one Fv PDB
file per antibody written (``--pdb-dir``, the issue-10 rate); the loop path
after numbering, in-process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VH = ("EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLR"
      "AEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS")  # fmt: skip
VL = "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"


def make_fasta(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    aa = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    i = VH.index("WGGDGFYAMDY")
    with open(path, "w") as fh:
        for k in range(n):
            h3 = "".join(rng.choice(aa, rng.integers(6, 16)))
            fh.write(f">ab{k}|H\n{VH[:i]}{h3}{VH[i + 11 :]}\n>ab{k}|L\n{VL}\n")


def peak_child_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_cli(*args: str) -> float:
    """Wall time of one ``loopfold`` process."""
    exe = Path(sys.executable).with_name("loopfold")
    t0 = time.perf_counter()
    subprocess.run([str(exe), *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a table (or JSON) and return the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--model", default=None, help="run folder (default: the shipped model)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model = ["--model", args.model] if args.model else []
    from loopfold.io.fasta import antibodies_from_fasta, antibody_chains
    from loopfold.numbering.anarci import number_sequences
    from loopfold.predict import Predictor

    res: dict = {"n_antibodies": args.n, "model": args.model or "shipped"}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        res["cold_start_s"] = round(min(run_cli("predict", "--heavy", VH, "--light", VL, "--json",
                                                str(d / "one.json"), *model) for _ in range(3)), 2)  # fmt: skip
        small, big = d / "small.fasta", d / "big.fasta"
        make_fasta(small, max(1, args.n // 5))
        make_fasta(big, args.n)
        run_cli("predict", "--fasta", str(small), "--jsonl", str(d / "small.jsonl"), *model)
        res["peak_rss_mb_n_div_5"] = round(peak_child_mb(), 1)
        total = run_cli("predict", "--fasta", str(big), "--jsonl", str(d / "big.jsonl"), *model)
        res["peak_rss_mb_n"] = round(peak_child_mb(), 1)
        res["end_to_end_s"] = round(total, 2)
        res["antibodies_per_s_end_to_end"] = round(args.n / total, 1)
        loops_only = run_cli("predict", "--fasta", str(big), "--jsonl", str(d / "lo.jsonl"), "--no-fv", *model)
        res["antibodies_per_s_loops_only"] = round(args.n / loops_only, 1)
        fv_pdb = run_cli("predict", "--fasta", str(small), "--pdb-dir", str(d / "pdb"), "--quiet", *model)
        res["fv_pdb_per_s_end_to_end"] = round(max(1, args.n // 5) / fv_pdb, 1)
        # the numbering step alone, and everything after it, in this process
        abs_ = list(antibodies_from_fasta(big))
        items = [(f"{ab.name} {label}", seq) for ab in abs_ for label, seq in antibody_chains(ab)]
        t0 = time.perf_counter()
        numbered = number_sequences(items, workers=2)
        t_num = time.perf_counter() - t0
        pred = Predictor(args.model)
        it = iter(numbered)
        per_ab = [{label: next(it) for label, _ in antibody_chains(ab)} for ab in abs_]
        t0 = time.perf_counter()
        with open(d / "after.jsonl", "w") as fh:
            for lo in range(0, len(abs_), 512):
                chunk = abs_[lo : lo + 512]
                queries, owners = [], []
                for k, ab in enumerate(chunk):
                    qs = pred.antibody_queries(ab, per_ab[lo + k])
                    queries += qs
                    owners += [k] * len(qs)
                loops = pred.predict_queries(queries)
                grouped: dict[int, list] = {}
                for k, lp in zip(owners, loops, strict=True):
                    grouped.setdefault(k, []).append(lp)
                for k, ab in enumerate(chunk):
                    fh.write(json.dumps({"id": ab.name, "loops": grouped.get(k, [])}) + "\n")
        t_after = time.perf_counter() - t0
    res.update({
        "numbering_s": round(t_num, 2), "chains_per_s_numbering": round(len(items) / t_num, 1),
        "after_numbering_s": round(t_after, 2), "antibodies_per_s_after_numbering": round(args.n / t_after, 1),
        "numbering_share": round(t_num / (t_num + t_after), 3),
    })  # fmt: skip
    print(json.dumps(res, indent=2) if args.json else "\n".join(f"{k:<34}{v}" for k, v in res.items()))
    return res


if __name__ == "__main__":
    main()
