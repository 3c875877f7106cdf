"""Prediction with the shipped model: JSON schema, geometry, bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from loopfold import LoopFold
from loopfold.cli import app
from loopfold.constants import BOND_C_N, BOND_CA_C, BOND_N_CA
from loopfold.data.identity import identity_matrix
from loopfold.errors import InvalidSequence
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

runner = CliRunner()


@pytest.fixture(scope="module")
def loops_api():
    return LoopFold(fv=False)


def test_antibody_json_schema_and_geometry(tmp_path):
    out = tmp_path / "p.json"
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--light", TRASTUZUMAB_VL, "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == "2" and doc["model"]["name"]
    (res,) = doc["results"]
    assert res["id"] == "query"
    assert [lp["cdr"] for lp in res["loops"]] == ["H1", "H2", "H3", "L1", "L2", "L3"]
    h3 = res["loops"][2]
    assert h3["chain"] == "H" and h3["sequence"] == "SRWGGDGFYAMDY" and h3["definition"] == "north"
    assert h3["start"] == TRASTUZUMAB_VH.index("SRWGGDGFYAMDY")
    n = len(h3["sequence"])
    for key in ("phi", "psi", "omega", "confidence"):
        assert len(h3[key]) == n
    assert all(0 <= c <= 1 for c in h3["confidence"])
    assert isinstance(h3["seen_in_training"], bool)
    xyz = {k: np.array(h3["coords"][k]) for k in ("N", "CA", "C", "O")}
    assert all(v.shape == (n, 3) for v in xyz.values())
    assert np.allclose(np.linalg.norm(xyz["CA"] - xyz["N"], axis=1), BOND_N_CA, atol=0.05)
    assert np.allclose(np.linalg.norm(xyz["C"] - xyz["CA"], axis=1), BOND_CA_C, atol=0.05)
    assert np.allclose(np.linalg.norm(xyz["N"][1:] - xyz["C"][:-1], axis=1), BOND_C_N, atol=0.05)


def test_loop_alone_and_samples(loops_api):
    (loop,) = (p := loops_api.predict_loop("ARDYYGSSYFDY", "H3", samples=3)).loops
    (lp,) = p.record["loops"]
    assert loop.start is None and lp["start"] is None and len(lp["samples"]) == 3
    assert sum(s["probability"] for s in lp["samples"]) == pytest.approx(1.0, abs=1e-3)
    assert len({tuple(s["phi"]) + tuple(s["psi"]) for s in lp["samples"]}) == 3


def test_fasta_jsonl_and_pdb_dir(tmp_path):
    fa = tmp_path / "in.fasta"
    fa.write_text(f">ab1|H\n{TRASTUZUMAB_VH}\n>ab1|L\n{TRASTUZUMAB_VL}\n>nb 2|H\n{TRASTUZUMAB_VH}\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--jsonl", str(tmp_path / "o.jsonl"),
                            "--pdb-dir", str(tmp_path / "pdb")])  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["ab1", "nb 2"] and len(lines[1]["loops"]) == 3
    pdbs = sorted(p.name for p in (tmp_path / "pdb").iterdir())
    assert pdbs == ["ab1.pdb", "nb_2.pdb"]
    assert (tmp_path / "pdb" / "ab1.pdb").read_text().startswith("REMARK 250 loopfold")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loop", "ARDYZGSS", "--cdr", "H3"], "position 5 is 'Z'"),
        (["--loop", "A" * 60, "--cdr", "H3"], "exceeds the model's limit"),
        (["--loop", "ARDY", "--cdr", "H9"], "expected one of"),
        (["--heavy", "KVFGRCELAAAMKRHGLDNYRGYSLGNWVCAAKFESNFNTQATNRNTDGSTDYGILQINSRWW"], "no heavy chain|no antibody"),
        (["--loop", "ARDY", "--heavy", "EVQ"], "exactly one input"),
    ],
)
def test_bad_inputs_one_line_exit_2(args, message):
    r = runner.invoke(app, ["predict", *args])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1
    import re

    assert re.search(message, r.output), r.output


@pytest.mark.parametrize("name", ["../evil", "/abs/path", "a/b", "x\x01y"])
def test_unsafe_fasta_names_are_refused(tmp_path, name):
    fa = tmp_path / "in.fasta"
    fa.write_text(f">{name}|H\n{TRASTUZUMAB_VH}\n")
    out = tmp_path / "o.json"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--pdb-dir", str(tmp_path / "pdb"), "--json", str(out)])
    assert r.exit_code == 3 and "cannot become a file name" in r.output  # that record fails, nothing escapes
    (res,) = json.loads(out.read_text())["results"]
    assert "cannot become a file name" in res["error"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in.fasta", "o.json"]
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--pdb-dir", str(tmp_path / "pdb"), "--on-error", "fail"])
    assert r.exit_code == 2 and "cannot become a file name" in r.output


def test_colliding_names_and_bad_fasta(tmp_path):
    fa = tmp_path / "in.fasta"
    fa.write_text(f">a b|H\n{TRASTUZUMAB_VH}\n>a_b|H\n{TRASTUZUMAB_VH}\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--pdb-dir", str(tmp_path / "pdb")])
    assert r.exit_code == 3 and "failed: a_b: records 'a b' and 'a_b' would both be written to a_b.pdb" in r.output
    assert [p.name for p in (tmp_path / "pdb").iterdir()] == ["a_b.pdb"]
    assert "REMARK 250 H3 SRWGGDGFYAMDY" in (tmp_path / "pdb" / "a_b.pdb").read_text()
    fa.write_text("EVQLV\n>x\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa)])
    assert r.exit_code == 2 and "before the first '>'" in r.output


def test_corrupt_model_folder(tmp_path):
    (tmp_path / "config.json").write_text("{")
    r = runner.invoke(app, ["predict", "--loop", "ARDY", "--model", str(tmp_path)])
    assert r.exit_code == 2 and "config.json" in r.output


@pytest.mark.parametrize(
    ("where", "key", "value", "message"),
    [
        ("info", "bin_temperature", 0, "bin_temperature 0: expected a positive number"),
        ("info", "bin_temperature", -1.5, "bin_temperature -1.5: expected a positive number"),
        ("info", "stems", 5, "stems 5 but the typical N-stems have at most 3 residues"),
        ("info", "definition", "chothia", "definition 'chothia' but the template library was cut under 'north'"),
        ("info", "definition", "kabat", "definition 'kabat': expected one of"),
        ("config", "max_len", "40", "max_len must be an integer, got '40'"),
        ("config", "dropout", 1.5, "dropout 1.5 is outside"),
    ],
)
def test_run_config_is_validated_on_load(tmp_path, where, key, value, message):
    import shutil

    from loopfold.pipeline.predictor import SHIPPED

    run = tmp_path / "run"
    shutil.copytree(SHIPPED, run)
    doc = json.loads((run / "config.json").read_text())
    doc[where][key] = value
    (run / "config.json").write_text(json.dumps(doc))
    r = runner.invoke(app, ["predict", "--loop", "ARDYYGSSYFDY", "--model", str(run)])
    assert r.exit_code == 2 and message in r.output and "config.json" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_invalid_sequence_api(loops_api):
    with pytest.raises(InvalidSequence, match="position 2"):
        loops_api.predict_loop("A1C", "H3")


def test_structure_mode_keeps_framework_and_closes_loops(tmp_path, fab_pdb):
    from loopfold.io.pdb import read_structure

    out_dir = tmp_path / "out"
    out_json = tmp_path / "s.json"
    r = runner.invoke(app, ["predict", "--structure", str(fab_pdb), "--loops", "H3,L1", "--pdb-dir", str(out_dir),
                            "--json", str(out_json)])  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(out_json.read_text())
    loops = doc["results"][0]["loops"]
    assert sorted(lp["cdr"] for lp in loops) == ["H3", "L1"]
    before = {c.chain_id: c for c in read_structure(fab_pdb).chains}
    after = {c.chain_id: c for c in read_structure(out_dir / "fab.pdb").chains}
    for lp in loops:
        bb0, bb1 = before[lp["chain_id"]], after[lp["chain_id"]]
        assert bb0.sequence == bb1.sequence
        loop = np.zeros(len(bb0), bool)
        loop[lp["start"] : lp["start"] + len(lp["sequence"])] = True
        # framework (everything but the loop) unchanged to the file's precision
        np.testing.assert_allclose(bb1.coords[~loop], bb0.coords[~loop], atol=1e-3)
        assert not np.allclose(bb1.coords[loop], bb0.coords[loop], atol=0.01)
        assert lp["closure_rmsd"] < 0.1
        end = lp["start"] + len(lp["sequence"])
        gap = np.linalg.norm(bb1.coords[end - 1, 2] - bb1.coords[end, 0])  # last loop C to stem N
        assert abs(gap - BOND_C_N) < 0.1
        start = lp["start"]
        assert abs(np.linalg.norm(bb1.coords[start, 0] - bb1.coords[start - 1, 2]) - BOND_C_N) < 0.1


def test_structure_mode_bad_inputs(tmp_path, fab_pdb):
    r = runner.invoke(app, ["predict", "--structure", str(fab_pdb), "--loops", "H3,X9"])
    assert r.exit_code == 2 and "--loops" in r.output
    junk = tmp_path / "junk.pdb"
    junk.write_text("not a structure\n")
    r = runner.invoke(app, ["predict", "--structure", str(junk), "--pdb-dir", str(tmp_path / "o")])
    assert r.exit_code == 2 and "junk.pdb" in r.output and not (tmp_path / "o").exists()


def test_report_from_prediction_json(tmp_path):
    out = tmp_path / "p.json"
    assert runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--json", str(out)]).exit_code == 0
    r = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "ramachandran.png" in page and "<canvas" in page and "http" not in page  # offline: no CDN
    assert (tmp_path / "rep" / "ramachandran.png").stat().st_size > 5000
    assert "true grey" not in page and "no reference structure was given" in page
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    r = runner.invoke(app, ["report", str(bad), "--out", str(tmp_path / "rep2")])
    assert r.exit_code == 2 and "bad.json: line 1: not a loopfold prediction record" in r.output


def test_report_reads_jsonl_and_skips_failed_records(tmp_path):
    fa = tmp_path / "in.fasta"
    fa.write_text(f">a|H\n{TRASTUZUMAB_VH}\n>b|H\nNOTANANTIBODY\n>c|H\n{TRASTUZUMAB_VH}\n")
    out = tmp_path / "p.jsonl"
    assert runner.invoke(app, ["predict", "--fasta", str(fa), "--jsonl", str(out), "--no-fv"]).exit_code == 3
    r = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0 and "(6 loops)" in " ".join(r.output.split()), r.output  # two antibodies' H1-H3
    (tmp_path / "half.jsonl").write_text(out.read_text() + '{"id": "x", "loo')
    r = runner.invoke(app, ["report", str(tmp_path / "half.jsonl"), "--out", str(tmp_path / "rep2")])
    assert r.exit_code == 2 and "half.jsonl: line 4: not a loopfold prediction record" in " ".join(r.output.split())


def test_fasta_streaming_rules(tmp_path):
    from loopfold.io.fasta import antibodies_from_fasta

    fa = tmp_path / "in.fasta"
    fa.write_text(f">a|H\n{TRASTUZUMAB_VH}\n>b|H\n{TRASTUZUMAB_VH}\n>a|L\n{TRASTUZUMAB_VL}\n")
    abs_ = list(antibodies_from_fasta(fa))
    assert [a.error is None for a in abs_] == [True, True, False] and type(abs_[2].error).__name__ == "BadRecords"
    assert "records of antibody 'a' are not adjacent" in str(abs_[2].error)
    fa.write_text(f">a|H\n{TRASTUZUMAB_VH[:20]}B{TRASTUZUMAB_VH[21:]}\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--on-error", "fail"])
    assert r.exit_code == 2 and "record 'a|H': position 21 is 'B'" in r.output


def test_one_bad_record_is_reported_and_the_batch_goes_on(tmp_path):
    fa = tmp_path / "in.fasta"
    lyso = "KVFGRCELAAAMKRHGLDNYRGYSLGNWVCAAKFESNFNTQATNRNTDGSTDYGILQINSRWW"
    fa.write_text(f">ok|H\n{TRASTUZUMAB_VH}\n>lyso|H\n{lyso}\n>ok2|H\n{TRASTUZUMAB_VH}\n")
    out, doc = tmp_path / "o.jsonl", tmp_path / "o.json"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--jsonl", str(out), "--json", str(doc)])
    assert r.exit_code == 3 and "1 of 3 record(s) failed (lyso: lyso heavy" in r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["ok", "lyso", "ok2"]
    assert "error" in lines[1] and "loops" not in lines[1] and len(lines[2]["loops"]) == 3
    assert [x.get("error") is None for x in json.loads(doc.read_text())["results"]] == [True, False, True]
    # strict: the first failure ends the run; the record streamed before it stays
    out2 = tmp_path / "o2.jsonl"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--jsonl", str(out2), "--on-error", "fail"])
    assert r.exit_code == 2 and "lyso heavy" in r.output and "wrote 1 record(s)" in r.output
    assert [json.loads(x)["id"] for x in out2.read_text().splitlines()] == ["ok"]


def test_identity_weight_comes_from_the_run_config(tmp_path):
    import shutil

    from loopfold.pipeline.predictor import SHIPPED

    runs = {}
    for name, weight in (("probability_only", 0.0), ("identity_only", 1e6)):
        d = tmp_path / name
        shutil.copytree(SHIPPED, d)
        doc = json.loads((d / "config.json").read_text())
        doc["config"]["identity_weight"] = weight
        (d / "config.json").write_text(json.dumps(doc))
        runs[name] = LoopFold(d, fv=False)
        assert runs[name].predictor.cfg.identity_weight == weight
    lib = runs["identity_only"].predictor.templates
    picked = {}
    for seq in ("ARDYYGSSYFDY", "ARGGYYGSSPFAY", "AKDRGYSSGWYFDV"):
        for name, lf in runs.items():
            picked[name, seq] = lf.predict_loop(seq, "H3").loops[0].template
        # identity alone picks a training loop at least as identical as any other of that length
        seqs, ids = lib.groups[("H3", len(seq) + 6)].sequences, lib.groups[("H3", len(seq) + 6)].ids
        best = max(identity_matrix([seq], seqs)[0])
        assert identity_matrix([seq], [seqs[ids.index(picked["identity_only", seq])]])[0, 0] == pytest.approx(best)
    assert any(picked["identity_only", s] != picked["probability_only", s] for _, s in picked)


def test_templates_match_the_loop_length_whatever_the_stems(loops_api):
    lib = loops_api.predictor.templates
    loop = "ARDYYGSSYFDY"
    for stems in (("", ""), ("C", "WGQGT"), ("AVYYC", "W")):
        p = loops_api.predict_loop(loop, "H3", stems)
        (lp,) = p.record["loops"]
        assert p.loops[0].template in lib.groups[("H3", len(loop) + 6)].ids, stems  # a 12-residue H3 template
        assert len(p.loops[0].phi) == len(loop) and lp["stem_n"] == stems[0] and lp["stem_c"] == stems[1]
        assert lp["warnings"], stems
    assert "warnings" not in loops_api.predict_loop(loop, "H3", ("YYC", "WGQ")).record["loops"][0]
    # a heavy chain that starts two residues before H1: the N-stem is padded, the loop keeps its length
    p = loops_api.predict(heavy=TRASTUZUMAB_VH[20:], name="short")
    h1 = next(lp for lp in p.record["loops"] if lp["cdr"] == "H1")
    assert len(h1["stem_n"]) < 3 and p.loops[0].template in lib.groups[("H1", len(h1["sequence"]) + 6)].ids
    assert "N-stem has" in h1["warnings"][0]


def test_records_and_loops_never_vanish_silently(tmp_path):
    fa = tmp_path / "in.fasta"
    scfv = TRASTUZUMAB_VH + "GGGGSGGGGSGGGGS" + TRASTUZUMAB_VL
    no_fr4 = TRASTUZUMAB_VH[: TRASTUZUMAB_VH.index("WGQG")]  # a VH that stops after CDR-H3
    fa.write_text(f">mix\n{TRASTUZUMAB_VH}\n>mix|H\n{TRASTUZUMAB_VH}\n>mix|L\n{TRASTUZUMAB_VL}\n"
                  f">short|H\n{no_fr4}\n>scfv|H\n{scfv}\n")  # fmt: skip
    out = tmp_path / "o.jsonl"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--jsonl", str(out)])
    assert r.exit_code == 3, r.output
    res = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert "mixes unlabelled and |H/|L records" in res["mix"]["error"]  # not one antibody with 9 loops
    assert [lp["cdr"] for lp in res["short"]["loops"]] == ["H1", "H2"]
    assert res["short"]["missing"][0]["cdr"] == "H3" and "ends at IMGT position" in res["short"]["missing"][0]["reason"]
    assert [m["cdr"] for m in res["scfv"]["missing"]] == ["L1", "L2", "L3"]
    assert "scFv" in res["scfv"]["missing"][0]["reason"]


def test_structure_with_a_chain_break_in_h3_is_not_closed_over(tmp_path):
    from loopfold.io.pdb import read_structure
    from tests.conftest import IGG1_CH1, KAPPA_CL, make_backbone, write_pdb

    heavy = make_backbone(TRASTUZUMAB_VH + IGG1_CH1[:30], "H", seed=1)
    gap = TRASTUZUMAB_VH.index("SRWGGDGFYAMDY") + 5  # a disordered H3 residue, absent from the file
    keep = [i for i in range(len(heavy)) if i != gap]
    heavy = type(heavy)("".join(heavy.sequence[i] for i in keep), heavy.coords[keep],
                        tuple(heavy.residue_ids[i] for i in keep), "H")  # fmt: skip
    light = make_backbone(TRASTUZUMAB_VL + KAPPA_CL[:30], "L", seed=2)
    path = write_pdb(tmp_path / "gap.pdb", [heavy, light])
    out = tmp_path / "out"
    r = runner.invoke(app, ["predict", "--structure", path, "--pdb-dir", out, "--json", tmp_path / "r.json"])
    assert r.exit_code == 0, r.output
    assert "H H3 not replaced: chain break between residues" in r.output
    res = json.loads((tmp_path / "r.json").read_text())["results"][0]
    assert [m["cdr"] for m in res["missing"]] == ["H3"] and "H3" not in [lp["cdr"] for lp in res["loops"]]
    new = next(b for b in read_structure(out / "gap.pdb").chains if b.chain_id == "H")
    h3 = slice(gap - 5, gap + 7)
    np.testing.assert_allclose(new.coords[h3, :3], heavy.coords[h3, :3], atol=1e-3)  # H3 left as it was


def test_corrupt_coordinates_and_microheterogeneity(tmp_path, fab_pdb):
    lines = fab_pdb.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("ATOM"))
    bad = lines.copy()
    bad[k] = bad[k][:30] + "  abc.de" + bad[k][38:]
    (tmp_path / "bad.pdb").write_text("\n".join(bad) + "\n")
    r = runner.invoke(app, ["predict", "--structure", str(tmp_path / "bad.pdb")])
    assert r.exit_code == 2 and f"bad.pdb: line {k + 1}: coordinate 'abc.de' is not a number" in r.output
    # microheterogeneity: a second residue type at the number of the first residue, lower occupancy
    first = [line for line in lines if line.startswith("ATOM") and line[22:26] == lines[k][22:26]
             and line[21] == lines[k][21]]  # fmt: skip
    backbone = [line for line in first if line[12:16].strip() in ("N", "CA", "C", "O")]
    twin = [line[:17] + "GLY" + line[20:54] + "  0.30" + line[60:] for line in backbone]
    micro = lines[:k] + [line[:54] + "  0.70" + line[60:] for line in first] + twin + lines[k + len(first):]
    (tmp_path / "micro.pdb").write_text("\n".join(micro) + "\n")
    r = runner.invoke(app, ["predict", "--structure", str(tmp_path / "micro.pdb"), "--pdb-dir", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    atoms = [line for line in (tmp_path / "o" / "micro.pdb").read_text().splitlines() if line.startswith("ATOM")]
    ids = {(line[21], line[22:27]) for line in atoms if line[12:16].strip() == "CA"}
    assert len(ids) == sum(1 for line in atoms if line[12:16].strip() == "CA")  # no residue number twice
    kept = [line[17:20] for line in atoms if line[21] == lines[k][21] and line[22:27] == lines[k][22:27]]
    assert kept and "GLY" not in kept and kept[0] == lines[k][17:20]  # the better-occupied residue

