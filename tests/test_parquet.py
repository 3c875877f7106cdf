"""--parquet: loops as Parquet parts, failed records in errors parts, --resume after a kill."""

import os

import pyarrow.parquet as pq
from typer.testing import CliRunner

from loopfold.cli import app
from loopfold.io.parquet_parts import read_loops
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
    assert sorted(p.name for p in full.glob("loops-*")) == ["loops-00000.parquet", "loops-00001.parquet",
                                                            "loops-00002.parquet"]  # fmt: skip
    rows = read_loops(full)
    assert rows.num_rows == 30 and set(rows.column("id").to_pylist()) == {f"ab{k}" for k in range(5)}
    assert len(rows.column("coords")[0].as_py()) == len(rows.column("sequence")[0].as_py())  # one entry per residue
    assert len(rows.column("coords")[0].as_py()[0]) == 12  # N, CA, C, O x, y, z
    assert pq.read_table(full / "errors-00002.parquet").to_pylist()[0]["id"] == "bad"
    # a run killed after part 0: part 1 and 2 are missing; --resume writes them and keeps part 0
    assert runner.invoke(app, [*args, "--parquet", str(cut)]).exit_code == 3
    for k in (1, 2):
        (cut / f"loops-0000{k}.parquet").unlink()
    before = os.stat(cut / "loops-00000.parquet").st_mtime_ns
    r = runner.invoke(app, [*args, "--parquet", str(cut)])
    assert r.exit_code == 2 and "holds an earlier run; give --resume" in r.output
    r = runner.invoke(app, [*args, "--parquet", str(cut), "--resume"])
    assert r.exit_code == 3 and "1 finished part(s) kept" in " ".join(r.output.split()), r.output
    assert os.stat(cut / "loops-00000.parquet").st_mtime_ns == before
    assert read_loops(cut).equals(rows)  # the same rows as the uninterrupted run
    r = runner.invoke(app, [*args, "--part-size", "3", "--parquet", str(cut), "--resume"])
    assert r.exit_code == 2 and "--resume with other settings" in " ".join(r.output.split())


def test_parquet_refuses_other_outputs_and_resume_alone(tmp_path):
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--resume"])
    assert r.exit_code == 2 and "--resume goes with --parquet" in r.output
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--parquet", str(tmp_path / "p"), "--jsonl",
                            str(tmp_path / "x.jsonl")])  # fmt: skip
    assert r.exit_code == 2 and "--parquet writes the run's results itself" in " ".join(r.output.split())
    assert not (tmp_path / "p").exists()
