"""Numbering benchmark: every CDR cut from sequence numbering against the files' own Chothia numbering.

    .venv/bin/python bench/numbering.py [--data ../shared/data] [--out out/bench] [--limit N]

For every chain of the Rosetta antibody database whose file numbering passes the
conserved-residue check, each CDR is cut under the North, Chothia and IMGT
definitions from the file's Chothia numbers (the reference) and from the IMGT
numbering of its sequence by each option: ``anarcism`` alone, ``anarcii``
alone, and ``validated`` (anarcism, checked, anarcii for domains that fail; the
path loopfold uses). A cut agrees when it starts and ends at the same residues
(so its stems agree too). Loops with a chain break in their window (3 stems each
side) are counted apart: residues missing from a structure shift a sequence
numbering but not the file's numbers, and such loops never reach training
(``has_chain_break``). Also counted: domains failing validation under each
option, loops cut from such domains, chains refused, and chains/s (2 workers
for anarcism; anarcii's own threads). Writes ``OUT/numbering.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tables import write_outputs

from loopfold.constants import CDRS, CHAIN_BREAK_DISTANCE, DEFINITIONS
from loopfold.data.extract import file_numbering, is_structure_file
from loopfold.errors import LoopfoldError
from loopfold.io.pdb import read_structure
from loopfold.numbering.anarci import ENGINES, number_sequences
from loopfold.numbering.cdr import locate_cdr
from loopfold.numbering.validate import check_domain
from loopfold.structure.backbone import peptide_distances

ROOT = Path(__file__).resolve().parents[1]
STEMS = 3


def read_chains(path: Path) -> list[tuple[str, str, str, list[int], list[int]]]:
    """(name, chain type, sequence, Chothia numbers, chain-break positions) of each chain whose file
    numbering passes its check (a break at i: residues i and i + 1 are not bonded)."""
    try:
        sf = read_structure(path)
    except LoopfoldError:
        return []
    out = []
    for bb in sf.chains:
        fn = file_numbering(bb)
        if not isinstance(fn, str):
            breaks = np.nonzero(peptide_distances(bb.coords) > CHAIN_BREAK_DISTANCE)[0].tolist()
            out.append((f"{sf.pdb_id}_{bb.chain_id}", fn[0], bb.sequence, fn[2], breaks))
    return out


def cuts(indices, numbers, ctype: str, scheme: str) -> dict:  # noqa: ANN001
    """(definition, CDR) -> (start, stop) or None."""
    out = {}
    for d in DEFINITIONS:
        for cdr in (c for c in CDRS if c[0] == ctype):
            sl = locate_cdr(indices, numbers, cdr, d, scheme)
            out[(d, cdr)] = None if sl is None else (sl.start, sl.stop)
    return out


def pyigclassify_loops(data: Path) -> dict[tuple[str, str], set[str]]:
    """North et al.'s own loop sequences per (PDB id, CDR) from PyIgClassify (empty if absent)."""
    path = data / "pyigclassify/database/csv/AbMatchToPaperClustersMay2012.csv"
    out: dict[tuple[str, str], set[str]] = {}
    if path.is_file():
        for line in path.read_text().splitlines()[1:]:
            key, seq = line.split(",")[:2]
            if "_" in key and seq:
                out.setdefault((key[:4].lower(), key.split("_")[1]), set()).add(seq)
    return out


def score(chains: list, engine: str, north_ref: dict[tuple[str, str], set[str]]) -> dict:
    """Agreement of one numbering option with the file numbering, per definition and CDR, and of its
    North loops with PyIgClassify's (chains of PDB entries that PyIgClassify holds)."""
    t0 = time.perf_counter()
    numbered = number_sequences([(c[0], c[2]) for c in chains], workers=2, engine=engine)
    seconds = time.perf_counter() - t0
    table: dict = {f"{d} {c}": {"agree": 0, "differ": 0, "not_cut": 0, "n_broken": 0, "broken_differ": 0}
                   for d in DEFINITIONS for c in CDRS}  # fmt: skip
    failed_domains = from_failed = 0
    refused: list[str] = []
    examples: list[str] = []
    north = {c: {"agree": 0, "n": 0, "file_agree": 0} for c in CDRS}
    for (name, ctype, seq, numbers, breaks), doms in zip(chains, numbered, strict=True):
        ref = cuts(list(range(len(seq))), numbers, ctype, "chothia")
        got: dict = {}
        if isinstance(doms, LoopfoldError):
            refused.append(str(doms))
        else:
            for dom in (d for d in doms if d.chain_type == ctype):
                bad = check_domain(seq, dom.indices, dom.positions) is not None
                failed_domains += bad
                these = cuts(dom.indices, [p for p, _ in dom.positions], ctype, "imgt")
                from_failed += bad * sum(v is not None for v in these.values())
                got.update({k: v for k, v in these.items() if v is not None and k not in got})
        for cdr in (c for c in CDRS if c[0] == ctype):
            known = north_ref.get((name[:4], cdr))
            r = ref[("north", cdr)]
            if known and r is not None and not any(r[0] - STEMS <= b < r[1] + STEMS - 1 for b in breaks):
                g = got.get(("north", cdr))
                north[cdr]["n"] += 1
                north[cdr]["agree"] += g is not None and seq[g[0] : g[1]] in known
                north[cdr]["file_agree"] += seq[r[0] : r[1]] in known
        for key, r in ref.items():
            if r is None:
                continue
            row = table[f"{key[0]} {key[1]}"]
            g = got.get(key)
            kind = "not_cut" if g is None else ("agree" if g == r else "differ")
            if any(r[0] - STEMS <= b < r[1] + STEMS - 1 for b in breaks):  # residues missing in the window
                row["n_broken"] += 1
                row["broken_differ"] += kind != "agree"
                continue
            row[kind] += 1
            if kind == "differ" and key[0] == "north" and len(examples) < 12:
                examples.append(f"{name} {key[1]}: {seq[g[0]:g[1]]} vs file {seq[r[0]:r[1]]}")
    for row in table.values():
        n = row["agree"] + row["differ"] + row["not_cut"]
        row["n"] = n  # loops whose window (3 stems each side) has no chain break
        row["agreement"] = round(row["agree"] / n, 4) if n else None
    return {"chains": len(chains), "seconds": round(seconds, 2), "chains_per_s": round(len(chains) / seconds, 1),
            "domains_failing_validation": failed_domains, "loops_cut_from_failed_domains": from_failed,
            "chains_refused": len(refused), "refused": refused[:20], "cdrs": table, "north_examples": examples,
            "north_vs_pyigclassify": north}  # fmt: skip


def markdown(res: dict) -> str:
    engines = [e for e in ENGINES if e in res["options"]]
    lines = [f"Chains: {res['chains']} (file numbering passing its check; {res['files']} files)\n",
             "| option | chains/s | domains failing validation | loops cut from them | chains refused |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for e in engines:
        r = res["options"][e]
        lines.append(f"| {e} | {r['chains_per_s']} | {r['domains_failing_validation']} | "
                     f"{r['loops_cut_from_failed_domains']} | {r['chains_refused']} |")  # fmt: skip
    lines += ["", "Agreement with the files' Chothia numbering (same first and last residue) over loops whose "
              "window (3 stems each side) has no chain break, % (differ / not cut); last columns: loops with a "
              "break in the window (residues missing from the structure, which a sequence cannot show), and how "
              "many of them each option cuts differently:", "",
              "| definition CDR | n | " + " | ".join(engines) + " | n with break | " + " | ".join(engines) + " |",
              "| --- | --- |" + " --- |" * (2 * len(engines) + 1)]  # fmt: skip
    for key in res["options"][engines[0]]["cdrs"]:
        rows = [res["options"][e]["cdrs"][key] for e in engines]
        cells = [f"{100 * r['agreement']:.2f} ({r['differ']}/{r['not_cut']})" if r["n"] else "-" for r in rows]
        broken = [str(r["broken_differ"]) for r in rows]
        lines.append(f"| {key} | {rows[0]['n']} | " + " | ".join(cells) + f" | {rows[0]['n_broken']} | "
                     + " | ".join(broken) + " |")  # fmt: skip
    lines += ["", "North loops against PyIgClassify's own (North et al.) loop sequences for the same PDB entry "
              "(chains without a break in the window), % identical; last column: the file's Chothia cut:", "",
              "| CDR | n | " + " | ".join(engines) + " | file numbering |",
              "| --- | --- |" + " --- |" * (len(engines) + 1)]
    for cdr in CDRS:
        rows = [res["options"][e]["north_vs_pyigclassify"][cdr] for e in engines]
        n = rows[0]["n"]
        cells = [f"{100 * r['agree'] / n:.2f}" if n else "-" for r in rows]
        lines.append(f"| {cdr} | {n} | " + " | ".join(cells) + f" | {100 * rows[0]['file_agree'] / max(n, 1):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"))
    ap.add_argument("--limit", type=int, default=0, help="first N files only (0: all)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    args = ap.parse_args(argv)
    folder = Path(args.data) / "rosetta_antibody_db/antibody/antibody_database"
    if not folder.is_dir():
        sys.exit(f"error: {folder}: Rosetta antibody database not found")
    files = sorted(p for p in folder.iterdir() if is_structure_file(p))
    files = files[: args.limit] if args.limit else files
    with ProcessPoolExecutor(2) as ex:
        chains = [c for part in ex.map(read_chains, files, chunksize=16) for c in part]
    res = {"files": len(files), "chains": len(chains), "options": {}}
    north_ref = pyigclassify_loops(Path(args.data))
    for engine in args.engines.split(","):
        res["options"][engine] = score(chains, engine, north_ref)
        print(f"{engine}: {res['options'][engine]['chains_per_s']} chains/s", flush=True)
    out = Path(args.out)
    write_outputs(out, "numbering", res, markdown(res))
    return res


if __name__ == "__main__":
    main()
