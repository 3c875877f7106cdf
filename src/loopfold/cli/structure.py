"""``loopfold predict --structure``: a structure's CDR loops replaced by predictions."""

from __future__ import annotations

from pathlib import Path

from loopfold.cli import console, fail
from loopfold.cli.predict import _as_format, _finish, _Outputs


def structure_command(api, o: _Outputs, structure: Path, loops: str | None, pdb_name: str | None) -> int:  # noqa: ANN001
    """--structure: predict, close onto the stems, write the whole structure (PDB) and/or JSON."""
    from loopfold.constants import CDRS
    from loopfold.pipeline.graft import structure_output

    wanted = None
    if loops is not None:
        wanted = [x.strip().upper() for x in loops.split(",") if x.strip()]
        bad = [x for x in wanted if x not in CDRS]
        if bad or not wanted:
            fail(f"--loops {loops!r}: expected CDR names from {', '.join(CDRS)}")
    grafted = api.predict_structure(structure, wanted)
    result, pdb_text = grafted.record, grafted.text
    pdb_text, warnings = structure_output(result, pdb_text, str(structure), bool(o.refine and pdb_name))
    for w in warnings:
        console.print(f"warning: {structure}: {w}", highlight=False, soft_wrap=True)
    pdb_text = _as_format(pdb_text, o.fmt, result["id"])
    for m in result.get("missing", []):
        console.print(f"warning: {structure}: chain {m['chain_id']} {m['cdr']} not replaced: {m['reason']}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    if result.get("pdb_chain_ids") and pdb_name:
        ids = ", ".join(f"{a} as {b}" for a, b in result["pdb_chain_ids"].items())
        console.print(f"warning: {structure}: chain ids longer than one character written {ids} (the JSON "
                      "has pdb_chain_ids)", highlight=False, soft_wrap=True)  # fmt: skip
    o.done = 1
    return _finish(o, api.document([result]), [(pdb_name, pdb_text)] if pdb_name else [])
