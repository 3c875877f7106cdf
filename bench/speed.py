"""Speed benchmark: cold start, batch throughput, numbering share, peak memory.

    python bench/speed.py [--n 10000] [--json]

Cold start: a fresh ``loopfold predict --heavy/--light --json`` process, wall time.
Batch: N antibodies (trastuzumab with random CDR-H3 mutations) from FASTA,
numbered with anarcism, predicted and written as JSON lines, in-process.
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


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import anarcism

    from loopfold.io.fasta import antibodies_from_fasta
    from loopfold.predict import Predictor

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        exe = Path(sys.executable).with_name("loopfold")
        t0 = time.perf_counter()
        subprocess.run([str(exe), "predict", "--heavy", VH, "--light", VL, "--json", str(d / "one.json")], check=True)
        cold = time.perf_counter() - t0
        make_fasta(d / "in.fasta", args.n)
        t0 = time.perf_counter()
        abs_ = antibodies_from_fasta(d / "in.fasta")
        items = [(f"{a.name}|{c}", s) for a in abs_ for c, s in (("H", a.heavy), ("L", a.light))]
        t1 = time.perf_counter()
        numbered = anarcism.number_sequences(items, workers=2, allowed_chains=["H", "K", "L"])
        t_num = time.perf_counter() - t1
        pred = Predictor()
        from loopfold.numbering.anarci import _domains

        t2 = time.perf_counter()
        queries, owners = [], []
        for (name, seq), res in zip(items, numbered, strict=True):
            qs = pred.chain_queries(seq, _domains(res))
            queries += qs
            owners += [name.split("|")[0]] * len(qs)
        with open(d / "out.jsonl", "w") as fh:
            step = 6 * 512
            for i in range(0, len(queries), step):
                loops = pred.predict_queries(queries[i : i + step])
                by: dict[str, list] = {}
                for o, lp in zip(owners[i : i + step], loops, strict=True):
                    by.setdefault(o, []).append(lp)
                for o, lps in by.items():
                    fh.write(json.dumps({"id": o, "loops": lps}) + "\n")
        t_after = time.perf_counter() - t2
        total = time.perf_counter() - t0
    res = {
        "n_antibodies": args.n, "cold_start_s": round(cold, 2), "numbering_s": round(t_num, 2),
        "after_numbering_s": round(t_after, 2), "total_s": round(total, 2),
        "antibodies_per_s_end_to_end": round(args.n / total, 1),
        "antibodies_per_s_after_numbering": round(args.n / t_after, 1),
        "numbering_share": round(t_num / total, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }  # fmt: skip
    print(json.dumps(res, indent=2) if args.json else "\n".join(f"{k:<34}{v}" for k, v in res.items()))
    return res


if __name__ == "__main__":
    main()
