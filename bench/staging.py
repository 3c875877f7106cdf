"""Ray driver staging rate: how fast ``--ray`` turns a .fasta.gz into per-part input shards (no
prediction starts before the driver has read the whole input).

    python bench/staging.py [--n 100000] [--out out/bench]

Generates N antibodies (``bench/speed.py``'s ``make_fasta``), then times what the driver does
before handing parts to Ray: read the FASTA, cut it into parts of 512 and write each part's shard
(:func:`loopfold.pipeline.cluster.stage_shards`). Reports records/s and this process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from speed import make_fasta
from tables import write_outputs


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; write OUT/staging.json and .md and return the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("out/bench"))
    args = ap.parse_args(argv)
    from loopfold.io.fasta import antibodies_from_fasta
    from loopfold.io.parquet_parts import ParquetParts
    from loopfold.pipeline.cluster import stage_shards

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        make_fasta(d / "in.fasta.gz", args.n)
        t0 = time.perf_counter()
        parts = ParquetParts(d / "run", {"input": "in.fasta.gz"}, 512, False)
        todo, queue = parts.skip_done(antibodies_from_fasta(d / "in.fasta.gz"))
        staged = stage_shards(todo, queue, d / "run")
        seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in (d / "run" / ".input").glob("*.parquet"))
    res = {"antibodies": args.n, "parts": len(staged), "seconds": round(seconds, 2),
           "records_per_s": round(args.n / seconds), "shard_bytes_per_antibody": round(size / args.n),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip
    md = (f"# Ray driver staging: {args.n:,} antibodies\n\n{res['seconds']} s = {res['records_per_s']:,} records/s "
          f"into {res['parts']} shards ({res['shard_bytes_per_antibody']} bytes per antibody); peak memory "
          f"{res['peak_rss_mb']} MB\n")  # fmt: skip
    write_outputs(args.out, "staging", res, md)
    return res


if __name__ == "__main__":
    main()
