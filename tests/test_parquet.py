"""--parquet: a run folder that reads as the loop table, failed records and missing loops in _errors, --resume after
a kill and of a 0.3 folder."""

import json
import os
import shutil

import pyarrow.parquet as pq
from typer.testing import CliRunner

from loopfold.cli import app
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

runner = CliRunner()


def _fasta(path):
    i = TRASTUZUMAB_VH.index("WGGDGFYAMDY")
    h3s = ["WGGDGFYAMDY", "ARDYYGSSY", "WGGDGFYAMDY", "SRWGGDGFY", "DYYGSSYFDY"]
    text = "".join(f">ab{k}|H\n{TRASTUZUMAB_VH[:i]}{h3}{TRASTUZUMAB_VH[i + 11:]}\n>ab{k}|L\n{TRASTUZUMAB_VL}\n"
                   for k, h3 in enumerate(h3s))  # fmt: skip
    path.write_text(text + ">bad|H\nNOTANANTIBODY\n")
    return path


def test_parts_rows_errors_and_resume_after_a_lost_part(tmp_path):
    fa = _fasta(tmp_path / "in.fasta")
    full, cut = tmp_path / "full", tmp_path / "cut"
    args = ["predict", "--fasta", str(fa), "--part-size", "2", "--quiet"]
    r = runner.invoke(app, [*args, "--parquet", str(full)])
    assert r.exit_code == 3, r.output  # one record failed, the others written
    out = " ".join(r.output.split())
    assert "summary: 5 of 6 record(s) predicted; failed: 1 letter not an amino acid;" in out, out
    assert sorted(p.name for p in (full / "loops").iterdir()) == ["part-00000.parquet", "part-00001.parquet",
                                                                  "part-00002.parquet"]  # fmt: skip
    rows = pq.read_table(full)  # the run folder reads as the loop table
    assert rows.num_rows == 30 and set(rows.column("id").to_pylist()) == {f"ab{k}" for k in range(5)}
    assert len(rows.column("coords")[0].as_py()) == len(rows.column("sequence")[0].as_py())  # one entry per residue
    assert len(rows.column("coords")[0].as_py()[0]) == 12  # N, CA, C, O x, y, z
    assert pq.read_table(full / "_errors/part-00002.parquet").to_pylist()[0]["id"] == "bad"
    # a run killed after part 0: part 1 and 2 are missing; --resume writes them and keeps part 0
    assert runner.invoke(app, [*args, "--parquet", str(cut)]).exit_code == 3
    for k in (1, 2):
        (cut / f"loops/part-0000{k}.parquet").unlink()
    (cut / "loops/.part-00001.parquet.k1ll3d.tmp").write_bytes(b"PAR1 half")  # what a SIGKILL mid-write leaves
    (cut / ".my-notes.parquet.x.tmp").write_text("not ours")
    before = os.stat(cut / "loops/part-00000.parquet").st_mtime_ns
    r = runner.invoke(app, [*args, "--parquet", str(cut)])
    assert r.exit_code == 2 and "holds an earlier run; give --resume" in r.output
    r = runner.invoke(app, [*args, "--parquet", str(cut), "--resume"])
    assert r.exit_code == 3 and "1 finished part(s) kept" in " ".join(r.output.split()), r.output
    assert os.stat(cut / "loops/part-00000.parquet").st_mtime_ns == before
    assert not (cut / "loops/.part-00001.parquet.k1ll3d.tmp").exists() and (cut / ".my-notes.parquet.x.tmp").exists()
    assert pq.read_table(cut).equals(rows)  # the same rows as the uninterrupted run
    r = runner.invoke(app, [*args, "--part-size", "3", "--parquet", str(cut), "--resume"])
    assert r.exit_code == 2 and "--resume with other settings" in " ".join(r.output.split())


def test_parquet_refuses_other_outputs_and_resume_alone(tmp_path):
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--resume"])
    assert r.exit_code == 2 and "--resume goes with --parquet" in r.output
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--parquet", str(tmp_path / "p"), "--jsonl",
                            str(tmp_path / "x.jsonl")])  # fmt: skip
    assert r.exit_code == 2 and "--parquet writes the run's results itself" in " ".join(r.output.split())
    assert not (tmp_path / "p").exists()


def test_table_and_gzip_inputs_give_the_same_loops_as_fasta(tmp_path):
    import gzip
    import json

    import pandas as pd

    fa = _fasta(tmp_path / "in.fasta")
    (tmp_path / "in.fasta.gz").write_bytes(gzip.compress(fa.read_bytes()))
    i = TRASTUZUMAB_VH.index("WGGDGFYAMDY")
    heavy = [f"{TRASTUZUMAB_VH[:i]}{h3}{TRASTUZUMAB_VH[i + 11:]}"
             for h3 in ["WGGDGFYAMDY", "ARDYYGSSY", "WGGDGFYAMDY", "SRWGGDGFY", "DYYGSSYFDY"]]  # fmt: skip
    paired = pd.DataFrame({"sequence_id": [f"ab{k}" for k in range(5)] + ["bad"],
                           "sequence_alignment_aa_heavy": heavy + ["NOTANANTIBODY"],
                           "sequence_alignment_aa_light": [TRASTUZUMAB_VL] * 5 + [""]})  # fmt: skip
    paired.to_csv(tmp_path / "paired.tsv", sep="\t", index=False)
    paired.to_parquet(tmp_path / "paired.parquet")
    out = {}
    for name, opt in (("in.fasta", "--fasta"), ("in.fasta.gz", "--fasta"), ("paired.tsv", "--table"),
                      ("paired.parquet", "--table")):  # fmt: skip
        r = runner.invoke(app, ["predict", opt, str(tmp_path / name), "--no-fv", "--jsonl", str(tmp_path / "o.jsonl")])
        assert r.exit_code == 3, (name, r.output)  # "bad" fails, the rest are written
        recs = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
        assert [x["id"] for x in recs] == ["ab0", "ab1", "ab2", "ab3", "ab4", "bad"] and "error" in recs[-1]
        out[name] = [[lp["coords"] for lp in x["loops"]] for x in recs[:-1]]
    assert out["in.fasta"] == out["in.fasta.gz"] == out["paired.tsv"] == out["paired.parquet"]
    # unpaired AIRR rows: each chain alone, by locus
    airr = pd.DataFrame({"sequence_id": ["h", "l", "x"], "locus": ["IGH", "IGK", "TRB"],
                         "sequence_alignment_aa": [heavy[0], TRASTUZUMAB_VL, "CASS"]})  # fmt: skip
    airr.to_csv(tmp_path / "airr.csv", index=False)
    r = runner.invoke(app, ["predict", "--table", str(tmp_path / "airr.csv"), "--no-fv", "--jsonl",
                            str(tmp_path / "a.jsonl")])  # fmt: skip
    recs = {x["id"]: x for x in map(json.loads, (tmp_path / "a.jsonl").read_text().splitlines())}
    assert [lp["cdr"] for lp in recs["h"]["loops"]] == ["H1", "H2", "H3"]
    assert [lp["cdr"] for lp in recs["l"]["loops"]] == ["L1", "L2", "L3"] and "locus 'TRB'" in recs["x"]["error"]
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    r = runner.invoke(app, ["predict", "--table", str(tmp_path / "cols.csv")])
    assert r.exit_code == 2 and "no heavy/light" in " ".join(r.output.split())
    (tmp_path / "broken.fasta.gz").write_bytes(b"\x1f\x8b not gzip")
    r = runner.invoke(app, ["predict", "--fasta", str(tmp_path / "broken.fasta.gz")])
    assert r.exit_code == 2 and "broken.fasta.gz" in r.output


def test_resume_refuses_another_model_or_a_changed_input_and_redoes_a_cut_part(tmp_path):
    fa = _fasta(tmp_path / "in.fasta")
    run = tmp_path / "run"
    args = ["predict", "--fasta", str(fa), "--part-size", "2", "--quiet", "--parquet", str(run)]
    assert runner.invoke(app, args).exit_code == 3
    whole = pq.read_table(run)
    settings = json.loads((run / "_run.json").read_text())
    assert len(settings["model_sha256"]) == 64 and settings["input_file"]["size"] == fa.stat().st_size
    # another model with the same info.name: a copy of the shipped one with other weights
    from loopfold.pipeline.predictor import SHIPPED

    other = tmp_path / "other"
    shutil.copytree(SHIPPED, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["info"]["bin_temperature"] = 1.5
    (other / "config.json").write_text(json.dumps(cfg))
    r = runner.invoke(app, [*args, "--resume", "--model", str(other)])
    assert r.exit_code == 2 and "model_sha256" in r.output, r.output
    # the input replaced at the same path by one of the same size: the head/tail hash tells
    fa.write_text(fa.read_text().replace(">ab0|H", ">abX|H"))
    assert fa.stat().st_size == settings["input_file"]["size"]
    r = runner.invoke(app, [*args, "--resume"])
    assert r.exit_code == 2 and "input_file" in r.output, r.output
    _fasta(fa)  # the same content again, a new modification time: resumes (time is not compared)
    # a finished part cut short (what a full disk or a partial copy leaves) is predicted again
    part = run / "loops/part-00001.parquet"
    part.write_bytes(part.read_bytes()[:100])
    r = runner.invoke(app, [*args, "--resume"])
    assert r.exit_code == 0 and "did not read back whole and were predicted again: 1" in " ".join(r.output.split())
    assert pq.read_table(run).equals(whole)


def test_a_run_folder_reads_as_the_loop_table_with_errors_and_model_beside_it(tmp_path):
    """pandas and pyarrow read DIR as the loops; DIR/_errors holds the failed record and the loops a
    record that worked lacks (with its CDR); every part names the model and loopfold version."""
    import pandas as pd
    import pyarrow.dataset as ds

    from loopfold import __version__

    fa = _fasta(tmp_path / "in.fasta")
    no_fr4 = TRASTUZUMAB_VH[: TRASTUZUMAB_VH.index("WGQG")]  # a VH that stops after CDR-H3: no H3 cut
    fa.write_text(fa.read_text() + f">short|H\n{no_fr4}\n>short|L\n{TRASTUZUMAB_VL}\n")
    run = tmp_path / "run"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--part-size", "4", "--quiet", "--parquet", str(run)])
    assert r.exit_code == 3, r.output
    loops = pd.read_parquet(run)
    table = ds.dataset(run).to_table()
    assert len(loops) == table.num_rows == 5 * 6 + 5 and list(loops.columns) == table.column_names
    assert sorted(set(loops["id"])) == ["ab0", "ab1", "ab2", "ab3", "ab4", "short"] and "reason" not in loops
    errors = pd.read_parquet(run / "_errors").sort_values(["id", "cdr"], na_position="first")
    assert list(errors.columns) == ["id", "cdr", "reason", "kind"]
    bad = errors[errors["id"] == "bad"].iloc[0]
    assert pd.isna(bad["cdr"]) and bad["kind"] == "letter not an amino acid" and "'bad|H'" in bad["reason"]
    short = errors[errors["id"] == "short"]
    assert list(short["cdr"]) == ["H3"] and list(short["kind"]) == ["missing loop"] and short["reason"].iloc[0]
    h3 = loops[(loops["id"] == "short") & (loops["cdr"] == "H3")]
    assert h3.empty  # the missing loop is in the error table, not a loop row
    for part in sorted((run / "loops").glob("part-*.parquet")) + sorted((run / "_errors").glob("part-*.parquet")):
        meta = pq.read_schema(part).metadata
        assert meta[b"loopfold_version"] == __version__.encode() and meta[b"model"]
        assert len(meta[b"model_sha256"]) == 64
    assert json.loads((run / "_run.json").read_text())["part_size"] == 4 and not (run / "run.json").exists()


def test_a_0_3_run_folder_resumes_into_the_new_layout(tmp_path):
    """A folder as loopfold 0.3 left it (loops-k / errors-k parts and run.json side by side, no hashes,
    errors without cdr and kind, part 1 unfinished) resumes: its parts move into loops/ and _errors/,
    the missing part is predicted, and the folder reads as the uninterrupted run's loops."""
    import pyarrow as pa

    fa = _fasta(tmp_path / "in.fasta")
    fresh, run = tmp_path / "fresh", tmp_path / "run"
    args = ["predict", "--fasta", str(fa), "--part-size", "2", "--quiet"]
    assert runner.invoke(app, [*args, "--parquet", str(fresh)]).exit_code == 3
    shutil.copytree(fresh, run)
    for k in range(3):  # back to 0.3's layout
        (run / f"loops/part-0000{k}.parquet").rename(run / f"loops-0000{k}.parquet")
        old = pq.read_table(run / f"_errors/part-0000{k}.parquet").select(["id", "reason"])
        pq.write_table(pa.Table.from_pylist(old.to_pylist()), run / f"errors-0000{k}.parquet")
        (run / f"_errors/part-0000{k}.parquet").unlink()
    (run / "loops").rmdir()
    (run / "_errors").rmdir()
    settings = json.loads((run / "_run.json").read_text())
    (run / "run.json").write_text(json.dumps({k: v for k, v in settings.items()
                                              if k not in ("model_sha256", "input_file")}))  # fmt: skip
    (run / "_run.json").unlink()
    (run / "loops-00001.parquet").unlink()
    r = runner.invoke(app, [*args, "--parquet", str(run)])
    assert r.exit_code == 2 and "holds an earlier run; give --resume" in r.output
    (run / "loops-00007.parquet").symlink_to(run / "loops-00000.parquet")  # a part as a symlink: not replaced
    r = runner.invoke(app, [*args, "--parquet", str(run), "--resume"])
    assert r.exit_code == 2 and "loops-00007.parquet (a 0.3 part) is a symlink" in " ".join(r.output.split())
    (run / "loops-00007.parquet").unlink()
    assert not (run / "loops").exists() and not (run / "_errors").exists()  # the refused resume made nothing
    (run / "_errors").mkdir()  # a move cut short by a kill: part 0's errors written anew, the old file still there
    shutil.copy(run / "errors-00000.parquet", run / "_errors" / "part-00000.parquet")
    r = runner.invoke(app, [*args, "--parquet", str(run), "--resume"])
    assert r.exit_code == 0 and "2 finished part(s) kept" in " ".join(r.output.split()), r.output
    assert not list(run.glob("*-0000*.parquet")) and not (run / "run.json").exists()
    assert pq.read_table(run).equals(pq.read_table(fresh))
    moved = pq.read_table(run / "_errors/part-00002.parquet")
    assert moved.schema.names == ["id", "cdr", "reason", "kind"]
    assert moved.schema.metadata[b"loopfold_version"].startswith(b"0.3 (moved into this layout")
    assert moved.schema.metadata[b"model_sha256"] == b"unknown"  # 0.3 kept no hash to check it against
    (bad,) = pq.read_table(fresh / "_errors").to_pylist()  # part 2's failed record, kept from the 0.3 folder:
    assert pq.read_table(run / "_errors").to_pylist() == [{**bad, "kind": None}]  # 0.3 wrote no kind


def test_a_part_is_written_as_soon_as_it_is_whole(tmp_path):
    """A killed run keeps every part that finished: part k is on disk before part k + 1 is predicted."""
    from loopfold import LoopFold
    from loopfold.cli.predict import _Outputs
    from loopfold.cli.runs import parquet_run
    from loopfold.io.fasta import antibodies_from_fasta
    from loopfold.io.parquet_parts import ParquetParts

    run = tmp_path / "run"
    o = _Outputs(None, None, None, {}, quiet=True, parquet=run)
    parts = ParquetParts(run, {"model": "m", "model_sha256": "x"}, 2, resume=False)
    todo, parts.queue = parts.skip_done(antibodies_from_fasta(_fasta(tmp_path / "in.fasta")))
    on_disk = []

    def results():
        for p, e in LoopFold(fv=False).predictions(todo, chunk=2, first_chunk=None):
            on_disk.append(sorted(p.name for p in (run / "loops").glob("part-*")))  # when record k was predicted
            yield p.record, e

    assert parquet_run(o, parts, results(), "report") == 3
    assert on_disk[2] == on_disk[3] == ["part-00000.parquet"]  # part 1's records came after part 0 was written
    assert on_disk[4] == ["part-00000.parquet", "part-00001.parquet"]
