"""Byte-identity check of loopfold's outputs across a refactor.

    python bench/identical.py run DIR [--n 500] [--data ../shared/data]
    python bench/identical.py compare OLD NEW

``run`` builds a FASTA of N real antibodies (the heavy and light chains of the first N Rosetta
antibody database structures, by id; 40 nanobodies of ``sabdab_extra`` after them) and writes, with
the installed loopfold: whole-Fv JSON lines with 3 samples per loop, loops-only JSON lines, Parquet
parts, one PDB and one mmCIF per antibody for the first 20, and ``--structure`` outputs (PDB and
JSON) for 5 crystals. ``compare`` lists every file that differs (exit 1) or says all are identical.
"""

from __future__ import annotations

import argparse
import bz2
import filecmp
import gzip
import re
import subprocess
import sys
from pathlib import Path

import gemmi

ROOT = Path(__file__).resolve().parents[1]
LOOPFOLD = str(Path(sys.executable).parent / "loopfold")


def _sequence(st: gemmi.Structure, chain: str) -> str:
    ch = st[0].find_chain(chain)
    if ch is None:
        return ""
    names = [r.name for r in ch if (t := gemmi.find_tabulated_residue(r.name)) is not None and t.is_amino_acid()]
    return gemmi.one_letter_code(names).upper()


def make_fasta(path: Path, data: Path, n: int) -> list[Path]:
    """N Rosetta Fvs and 40 nanobodies as FASTA; returns the first 5 Rosetta files (for --structure)."""
    db = data / "rosetta_antibody_db/antibody/antibody_database"
    files = sorted(db.glob("pdb*_chothia.pdb.bz2"))[:n]
    crystals: list[Path] = []
    with open(path, "w") as fh:
        for f in files:
            st = gemmi.read_pdb_string(bz2.decompress(f.read_bytes()).decode())
            h, light = _sequence(st, "H"), _sequence(st, "L")
            name = f.name[3:7]
            fh.write(f">{name}|H\n{h}\n" + (f">{name}|L\n{light}\n" if light else ""))
            if len(crystals) < 5:
                crystals.append(f)
        extra = data / "sabdab_extra"
        rows = [line.split(",") for line in (extra / "manifest.csv").read_text().splitlines()[1:]]
        nanobodies = [extra / "structures" / r[0] for r in sorted(rows, key=lambda r: r[0]) if r[3] == "nanobody"][:40]
        for f in nanobodies:
            st = gemmi.read_pdb_string(gzip.decompress(f.read_bytes()).decode())
            fh.write(f">{f.name.split('.')[0]}|H\n{_sequence(st, 'H')}\n")
    return crystals


def _loopfold(*args: str) -> None:
    r = subprocess.run([LOOPFOLD, "predict", "-q", *args], capture_output=True, text=True)
    if r.returncode not in (0, 3):
        raise SystemExit(f"loopfold predict {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")


def run(out: Path, data: Path, n: int) -> None:
    """Write every output kind for the N antibodies into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    fasta = out / "input.fasta"
    crystals = make_fasta(fasta, data, n)
    _loopfold("--fasta", str(fasta), "--jsonl", str(out / "fv.jsonl"), "--samples", "3")
    _loopfold("--fasta", str(fasta), "--jsonl", str(out / "loops.jsonl"), "--no-fv")
    _loopfold("--fasta", str(fasta), "--parquet", str(out / "parts"))
    head = out / "head.fasta"
    head.write_text(">" + ">".join(fasta.read_text().split(">")[1:41]))
    _loopfold("--fasta", str(head), "--pdb-dir", str(out / "pdb"), "--jsonl", str(out / "head.jsonl"))
    _loopfold("--fasta", str(head), "--pdb-dir", str(out / "cif"), "--format", "cif")
    for f in crystals:
        pdb = out / f.name.replace(".bz2", "")
        pdb.write_bytes(bz2.decompress(f.read_bytes()))
        _loopfold("--structure", str(pdb), "--json", str(out / f"{pdb.stem}.json"), "--pdb-dir", str(out / "grafted"))
        pdb.unlink()


def _text(path: Path, old: Path, new: Path) -> bytes:
    """A file's bytes with the old run's folder named as the new one's (messages name the input)."""
    return path.read_bytes().replace(str(old).encode(), str(new).encode())


def compare(old: Path, new: Path) -> int:
    """Every output file of ``old`` and ``new`` compared byte for byte (Parquet: the table's rows)."""
    import pyarrow.parquet as pq

    def files(root: Path) -> dict[Path, Path]:  # a 0.3 run folder's parts under the names parts have now
        out = {}
        for p in (p for p in root.rglob("*") if p.is_file()):
            rel = p.relative_to(root)
            m = re.fullmatch(r"(loops|errors)-(\d+)\.parquet", rel.name)
            if m:
                rel = rel.parent / ("loops" if m.group(1) == "loops" else "_errors") / f"part-{m.group(2)}.parquet"
            out[rel] = p
        return out

    fa, fb = files(old), files(new)
    names = sorted(set(fa) | set(fb))
    differ = []
    for name in names:
        a, b = fa.get(name, old / "absent"), fb.get(name, new / "absent")
        if not a.is_file() or not b.is_file():
            differ.append(f"{name}: only in {'new' if b.is_file() else 'old'}")
        elif name.suffix == ".parquet":  # the rows (an errors part of 0.3 lacks cdr: compared on its columns)
            ta, tb = pq.read_table(a), pq.read_table(b)
            shared = [c for c in ta.column_names if c in tb.column_names]
            if not ta.select(shared).equals(tb.select(shared)):
                differ.append(f"{name}: rows differ")
        elif name.name == "run.json" or name.name == "_run.json":
            continue  # times and hashes of the run
        elif not filecmp.cmp(a, b, shallow=False) and _text(a, old, new) != b.read_bytes():
            differ.append(f"{name}: bytes differ")
    print("\n".join(differ) if differ else f"all {len(names)} files identical")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--n", type=int, default=500)
    r.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args.out, args.data, args.n)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    raise SystemExit(main())
