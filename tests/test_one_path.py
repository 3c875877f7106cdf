"""One prediction path: a structure's chains, their sequences and the API give the same loops."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from loopfold.cli import app

runner = CliRunner()


def _same_choices(a: list[dict], b: list[dict]) -> None:
    """The same loops, templates, confidences and predicted errors, loop by loop."""
    keys = ("cdr", "chain", "sequence", "stem_n", "stem_c", "start", "template", "confidence", "error",
            "rmsd_predicted", "seen_in_training", "max_training_identity")  # fmt: skip
    a, b = sorted(a, key=lambda lp: lp["cdr"]), sorted(b, key=lambda lp: lp["cdr"])  # a file may hold L first
    assert [lp["cdr"] for lp in a] == [lp["cdr"] for lp in b]
    for x, y in zip(a, b, strict=True):
        assert {k: x.get(k) for k in keys} == {k: y.get(k) for k in keys}, x["cdr"]


def test_structure_sequences_and_api_give_the_same_loops(tmp_path, fab_pdb):
    """--structure reads the chains' numbering with their Fv context, as --heavy/--light does."""
    from loopfold import LoopFold
    from loopfold.io.pdb import read_structure

    seqs = {bb.chain_id: bb.sequence for bb in read_structure(fab_pdb).chains}
    r = runner.invoke(app, ["predict", "--structure", str(fab_pdb), "--json", str(tmp_path / "s.json"), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["predict", "--heavy", seqs["A"], "--light", seqs["B"], "--json", str(tmp_path / "q.json"),
                            "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    structure_record = json.loads((tmp_path / "s.json").read_text())["results"][0]
    sequence_record = json.loads((tmp_path / "q.json").read_text())["results"][0]
    from_structure, from_sequence = structure_record["loops"], sequence_record["loops"]
    _same_choices(from_structure, from_sequence)
    assert structure_record["antibodies"] == [{"chains": ["A", "B"], "mode": sequence_record["mode"]}] and \
        sequence_record["mode"] == "paired"  # fmt: skip
    lf = LoopFold()
    grafted, pred = lf.predict_structure(fab_pdb), lf.predict(heavy=seqs["A"], light=seqs["B"])
    _same_choices(grafted.record["loops"], pred.record["loops"])
    _same_choices(grafted.record["loops"], from_sequence)
    assert [lp["chain_id"] for lp in grafted.record["loops"]] == ["A"] * 3 + ["B"] * 3


def test_a_crystal_gives_the_loops_its_sequences_give(shared_data, tmp_path):
    import bz2

    from loopfold import LoopFold
    from loopfold.io.pdb import read_structure

    src = shared_data / "rosetta_antibody_db/antibody/antibody_database/pdb1n8z_chothia.pdb.bz2"
    if not src.is_file():
        pytest.skip(f"{src} is absent")
    path = tmp_path / "1n8z.pdb"
    path.write_bytes(bz2.decompress(src.read_bytes()))
    seqs = {bb.chain_id: bb.sequence for bb in read_structure(path).chains}
    lf = LoopFold()
    grafted = lf.predict_structure(path)
    _same_choices(grafted.record["loops"], lf.predict(heavy=seqs["H"], light=seqs["L"]).record["loops"])
    h3 = next(lp for lp in grafted.loops if lp.cdr == "H3")
    assert h3.coords.shape == (len(h3.sequence), 4, 3)


def test_failures_keep_their_type_in_readers_parquet_parts_and_across_processes(tmp_path):
    import pyarrow.parquet as pq

    from loopfold import errors
    from loopfold.errors import EmptyRecord, NotALocus, NumberingError, UnknownResidue, of_kind
    from loopfold.io.tables import antibodies_from_table
    from tests.conftest import TRASTUZUMAB_VH

    table = tmp_path / "t.csv"
    table.write_text(f"name,locus,sequence_alignment_aa\na,IGH,{TRASTUZUMAB_VH}\nb,TRB,{TRASTUZUMAB_VH}\nc,IGH,\n")
    got = {ab.name: ab.error for ab in antibodies_from_table(table)}
    assert got["a"] is None and type(got["b"]) is NotALocus and type(got["c"]) is NotALocus
    pair = tmp_path / "p.csv"
    pair.write_text(f"name,heavy,light\nx,{TRASTUZUMAB_VH},\ny,,\n")
    assert type({ab.name: ab.error for ab in antibodies_from_table(pair)}["y"]) is EmptyRecord
    fa = tmp_path / "in.fasta"
    fa.write_text(f">ok|H\n{TRASTUZUMAB_VH}\n>bad|H\n{TRASTUZUMAB_VH[:30]}B{TRASTUZUMAB_VH[31:]}\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--parquet", str(tmp_path / "run"), "--no-fv", "-q"])
    assert r.exit_code == 3, r.output
    failed = pq.read_table(tmp_path / "run" / "_errors/part-00000.parquet").to_pylist()
    assert [(e["id"], e["kind"]) for e in failed] == [("bad", "letter not an amino acid")]
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.LoopfoldError)]
    assert len({c.kind for c in classes}) == len(classes)  # a kind names one class
    assert all(type(of_kind(c.kind, "m")) is c for c in classes)
    assert type(of_kind(UnknownResidue.kind, "m")) is UnknownResidue and type(of_kind("print", "m")).__name__ == (
        "LoopfoldError")
    assert type(of_kind("not an antibody", "m")) is NumberingError and str(of_kind("nothing", "m")) == "m"
