"""Issue 18: odd-but-valid input gives the right output (chain ids PDB cannot hold); misuse and bad
records give the project's own errors (one per record in a batch)."""

import json

import gemmi
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from loopfold.cli import app
from loopfold.errors import InvalidInput
from loopfold.io.pdb import pdb_chain_ids
from tests.conftest import TRASTUZUMAB_VH

runner = CliRunner()


def test_two_character_chain_ids_are_mapped_never_merged(tmp_path, fab_pdb):
    st = gemmi.read_structure(str(fab_pdb))
    for ch, name in zip(st[0], ("CA", "CB"), strict=True):  # PDB keeps one character: both would be "C"
        ch.name = name
    st.setup_entities()
    cif = tmp_path / "fab.cif"
    st.make_mmcif_document().write_file(str(cif))
    out = tmp_path / "models"
    r = runner.invoke(app, ["predict", "--structure", str(cif), "--pdb-dir", str(out),
                            "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "written CA as A, CB as B" in " ".join(r.output.split())
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["results"][0]["pdb_chain_ids"] == {"CA": "A", "CB": "B"}
    model = gemmi.read_structure(str(out / "fab.pdb"))
    assert [ch.name for ch in model[0]] == ["A", "B"]
    assert len(model[0]["A"]) == len(st[0]["CA"]) and len(model[0]["B"]) == len(st[0]["CB"])
    # the new loops' checks read the renamed chains: the same as for the file with one-letter ids
    r = runner.invoke(app, ["predict", "--structure", str(fab_pdb), "--json", str(tmp_path / "p.json")])
    assert r.exit_code == 0, r.output
    same = json.loads((tmp_path / "p.json").read_text())["results"][0]
    got = doc["results"][0]
    assert got["geometry"]["residues"] == same["geometry"]["residues"] > 0
    assert got["new_loop_contacts"] == same["new_loop_contacts"] and got["geometry"] == same["geometry"]


def test_pdb_chain_ids_keep_one_letter_ids_and_fill_free_ones():
    assert pdb_chain_ids(["H", "L"]) == {}
    assert pdb_chain_ids(["A", "AB", "AC"]) == {"AB": "B", "AC": "C"}


@pytest.fixture(scope="module")
def lf():
    from loopfold import LoopFold

    return LoopFold(fv=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"heavy": None}, "give a heavy or a light chain"),
    ({"heavy": 123}, "heavy is a int, expected the sequence as text"),
    ({"heavy": list("EVQLVESGGG")}, "heavy is a list"),
    ({"light": b"DIQMTQSPSS"}, "light is a bytes"),
    ({"heavy": TRASTUZUMAB_VH, "name": 7}, "name 7: expected text"),
])  # fmt: skip
def test_api_misuse_raises_invalid_input(lf, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        lf.predict(**kwargs)


@pytest.mark.parametrize("chunk", [0, -1, 1.5, True])
def test_predict_many_refuses_a_bad_chunk_at_the_call(lf, chunk):
    with pytest.raises(InvalidInput, match="expected a positive number"):
        lf.predict_many([("a", TRASTUZUMAB_VH, None)], chunk=chunk)


def test_predict_many_reports_a_record_of_the_wrong_kind_and_goes_on(lf):
    out = list(lf.predict_many([("a", TRASTUZUMAB_VH, None), "EVQL", ("c", 5, None), ["d", TRASTUZUMAB_VH, None],
                                ("e", "", None), ("f", "  ", None)]))  # fmt: skip
    assert [p.id for p, _ in out] == ["a", "antibodies[1]", "c", "d", "e", "f"]
    assert out[0][1] is None and out[3][1] is None and len(out[3][0].loops) == 3  # a list works as a tuple
    assert isinstance(out[1][1], InvalidInput) and isinstance(out[2][1], InvalidInput)
    assert "expected an AntibodyInput or a (name, heavy, light) tuple, got str" in str(out[1][1])
    assert "heavy is a int" in str(out[2][1])
    assert "empty sequence" in str(out[4][1]) and "empty sequence" in str(out[5][1])


def test_empty_records_are_per_record_errors_in_every_mode(tmp_path):
    fa = tmp_path / "in.fasta"
    fa.write_text(f">a|H\n{TRASTUZUMAB_VH}\n>empty|H\n\n>blank\n   \n>b|H\n{TRASTUZUMAB_VH}\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--no-fv", "--jsonl", str(tmp_path / "o.jsonl"), "-q"])
    assert r.exit_code == 3, r.output
    ids = [json.loads(x)["id"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert ids == ["a", "empty", "blank", "b"]
    assert "empty sequence" in r.output
    run = tmp_path / "run"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--parquet", str(run), "--part-size", "2", "-q"])
    assert r.exit_code == 3, r.output
    errors = [e for k in (0, 1) for e in pq.read_table(run / f"_errors/part-0000{k}.parquet").to_pylist()]
    assert sorted(e["id"] for e in errors) == ["blank", "empty"]
    loops = pq.read_table(run / "loops/part-00000.parquet").column("id").to_pylist()
    second = pq.read_table(run / "loops/part-00001.parquet").column("id").to_pylist()
    assert set(loops) == {"a"} and set(second) == {"b"}


@pytest.mark.parametrize("column", [pa.array([1, 2]), pa.array([b"EVQL", b"DIQM"]), pa.array([["EV"], ["DI"]])])
def test_parquet_table_columns_must_be_text(tmp_path, column):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": ["x", "y"], "heavy": column}), path)
    r = runner.invoke(app, ["predict", "--table", str(path), "--no-fv", "--jsonl", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "column 'heavy' is" in r.output and "expected text" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


@pytest.mark.parametrize("model", ["loopnet", "fvnet"])
def test_config_hidden_not_a_multiple_of_the_heads_is_one_line(tmp_path, model):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"model": model, "hidden": 7}))
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "d.parquet"), "--split", str(tmp_path / "split"),
                            "--out", str(tmp_path / "run"), "--config", str(cfg)])  # fmt: skip
    assert r.exit_code == 2 and "hidden 7 must be a multiple of 4" in r.output, r.output
    assert not (tmp_path / "run").exists()


def test_report_escapes_record_ids_everywhere_in_the_page(tmp_path):
    evil = '</script><!--<script>alert("x")</script>&amp;'
    fa = tmp_path / "in.fasta"
    fa.write_text(f">{evil}|H\n{TRASTUZUMAB_VH}\n")
    out = tmp_path / "p.jsonl"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--jsonl", str(out), "--no-fv", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "<!--" not in page and 'alert("x")</script>' not in page and page.count("</script>") == 2
    assert "&amp;amp;" not in page.split('id="loops">')[1]  # the JSON keeps the id's own text (escaped as JSON)
    data = page.split('id="loops">')[1].split("</script>")[0]
    assert json.loads(data)[0]["label"] == f"{evil} H1"  # the viewer reads the id back unchanged


def test_parquet_table_categorical_text_columns_are_read(tmp_path):
    path = tmp_path / "t.parquet"
    heavy = pa.array([TRASTUZUMAB_VH]).dictionary_encode()
    pq.write_table(pa.table({"id": ["x"], "heavy": heavy}), path)
    r = runner.invoke(app, ["predict", "--table", str(path), "--no-fv", "--jsonl", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o.jsonl").read_text())["id"] == "x"
