"""``loopfold predict``: sequences or a structure in, loops out (JSON, JSONL, PDB)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer

from loopfold.cli import app, console, fail, out
from loopfold.errors import LoopfoldError


def _pdb_name(name: str, used: dict[str, str]) -> str:
    """A safe file name for a record, or a LoopfoldError naming it."""
    from loopfold.errors import InvalidFile

    bad = any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or "/" in name or "\\" in name
    if bad or name in ("", ".", "..") or ".." in name or name.startswith("~"):
        raise InvalidFile(f"record {name!r}: name cannot become a file name (path separator, '..' or control char)")
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    key = safe.lower()
    if key in used:
        raise InvalidFile(f"records {used[key]!r} and {name!r} would both be written to {safe}.pdb")
    used[key] = name
    return safe + ".pdb"


def _predict_structure_cmd(predictor, structure: Path, loops: str | None, json_out, pdb_dir, used) -> None:  # noqa: ANN001
    """--structure: predict, close onto the stems, write the whole structure (PDB) and/or JSON."""
    from loopfold.constants import CDRS
    from loopfold.io.atomic import write_text
    from loopfold.predict import predict_structure

    wanted = None
    if loops is not None:
        wanted = [x.strip().upper() for x in loops.split(",") if x.strip()]
        bad = [x for x in wanted if x not in CDRS]
        if bad or not wanted:
            fail(f"--loops {loops!r}: expected CDR names from {', '.join(CDRS)}")
    result, pdb_text = predict_structure(predictor, structure, wanted)
    if pdb_dir is not None:
        name = structure.name
        for suffix in (".gz", ".bz2", ".pdb", ".ent", ".cif", ".mmcif"):
            name = name.removesuffix(suffix)
        write_text(pdb_dir / _pdb_name(name, used), pdb_text)
    _emit(predictor.document([result]), json_out, [pdb_dir])


def _emit(doc: dict, json_out: Path | None, other_outputs: list[Path | None]) -> None:
    """Write the JSON document to ``json_out``, or print it when no output file was asked for;
    then say what was written."""
    from loopfold.io.atomic import write_text

    others = [p for p in other_outputs if p is not None]
    if json_out is not None:
        write_text(json_out, json.dumps(doc) + "\n")
    elif not others:
        out.print_json(json.dumps(doc))
    written = [str(p) for p in ([json_out] if json_out is not None else []) + others]
    if written:
        console.print(f"wrote {', '.join(written)}")


@app.command("predict")
def predict_cmd(
    loop: Annotated[str | None, typer.Option("--loop", help="A loop sequence alone (with --cdr).")] = None,
    cdr: Annotated[str, typer.Option("--cdr", help="CDR of --loop: H1..L3.")] = "H3",
    stems: Annotated[str | None, typer.Option("--stems", help="Stems of --loop as N,C (e.g. YYC,WGQ).")] = None,
    heavy: Annotated[str | None, typer.Option("--heavy", help="Heavy chain sequence.")] = None,
    light: Annotated[str | None, typer.Option("--light", help="Light chain sequence.")] = None,
    fasta: Annotated[Path | None, typer.Option("--fasta", help="FASTA of antibodies (NAME|H, NAME|L).")] = None,
    structure: Annotated[
        Path | None, typer.Option("--structure", help="PDB/mmCIF: replace its CDR loops, keep the framework.")
    ] = None,
    loops: Annotated[str | None, typer.Option("--loops", help="With --structure: e.g. H3,L1 (default all).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write one JSON document.")] = None,
    jsonl_out: Annotated[Path | None, typer.Option("--jsonl", help="Write one JSON result per line.")] = None,
    pdb_dir: Annotated[Path | None, typer.Option("--pdb-dir", help="Write one PDB per antibody here.")] = None,
    samples: Annotated[int, typer.Option(help="Also give K distinct conformations per loop.")] = 0,
    model: Annotated[Path | None, typer.Option("--model", help="Run folder (default: the shipped model).")] = None,
) -> None:
    """Predict CDR loop backbones from sequence."""
    from loopfold.io.atomic import atomic_path, write_text
    from loopfold.io.fasta import AntibodyInput, antibodies_from_fasta
    from loopfold.predict import Predictor, loops_pdb, predict_antibodies

    given = [x is not None for x in (loop, heavy or light, fasta, structure)]
    if sum(given) != 1:
        fail("give exactly one input: --loop, --heavy/--light, --fasta or --structure")
    if samples < 0 or samples > 100:
        fail(f"--samples {samples}: must be between 0 and 100")
    try:
        predictor = Predictor(model)
        if structure is not None:
            _predict_structure_cmd(predictor, structure, loops, json_out, pdb_dir, used={})
            return
        if loop is not None:
            stem_pair = None
            if stems is not None:
                parts = stems.split(",")
                if len(parts) != 2:
                    fail(f"--stems {stems!r}: expected two sequences separated by a comma")
                stem_pair = (parts[0], parts[1])
            q = predictor.loop_query(loop, cdr, stem_pair)
            results = iter([({"id": "query", "loops": predictor.predict_queries([q], samples)}, None)])
        else:
            abs_ = antibodies_from_fasta(fasta) if fasta else [AntibodyInput("query", heavy, light)]
            results = predict_antibodies(predictor, abs_, samples)
        used: dict[str, str] = {}
        collected = []
        stack = contextlib.ExitStack()
        with stack:
            jsonl_fh = None
            if jsonl_out is not None:
                jsonl_fh = stack.enter_context(open(stack.enter_context(atomic_path(jsonl_out)), "w"))
            pdbs = []
            for res, err in results:
                if err is not None:
                    fail(err)
                if pdb_dir is not None:
                    pdbs.append((_pdb_name(res["id"], used), res))
                if jsonl_fh is not None:
                    jsonl_fh.write(json.dumps(res) + "\n")
                if json_out is not None or (jsonl_out is None and pdb_dir is None):
                    collected.append(res)
        for fname, res in pdbs:  # written once every antibody succeeded
            write_text(pdb_dir / fname, loops_pdb(res, predictor))
        _emit(predictor.document(collected), json_out, [jsonl_out, pdb_dir])
    except LoopfoldError as exc:
        fail(str(exc))


