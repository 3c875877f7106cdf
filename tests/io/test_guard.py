"""Issue 18: outputs never land on what a run reads, run folders are not reused silently, outputs are
locked, JSONL lines are whole, checkpoints run no code, names reach the terminal as text."""

import errno
import fcntl
import hashlib
import json
import os
import pickle

import pytest
from typer.testing import CliRunner

from loopfold.cli import app, shown
from loopfold.cli.predict import _pdb_name
from loopfold.errors import InvalidFile
from loopfold.io.locks import lock_path, release_all
from loopfold.io.outputs import JsonlStream, check_outputs, installed_weights
from tests.conftest import TRASTUZUMAB_VH

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_inside_an_input_folder_is_refused_and_the_input_kept(tmp_path, fab_pdb):
    before = fab_pdb.read_bytes()
    for args in (("data", "build", tmp_path, "--out", fab_pdb),
                 ("data", "build", tmp_path, "--out", tmp_path / "sub" / "ds.parquet"),
                 ("data", "frameworks", tmp_path, "--out", tmp_path / "x.pdb")):  # fmt: skip
        r = invoke(*args)
        assert r.exit_code == 2 and "inside the input folder SOURCE" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    assert fab_pdb.read_bytes() == before and not (tmp_path / "sub").exists() and not (tmp_path / "x.pdb").exists()


def test_run_folder_holding_an_input_table_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "_errors").mkdir()
    table = run / "_errors" / "part-00000.parquet"
    table.write_bytes(b"PAR1 the user's table")
    r = invoke("predict", "--table", table, "--parquet", run, "--resume")
    assert r.exit_code == 2 and "holds the input --table" in r.output, r.output
    assert table.read_bytes() == b"PAR1 the user's table"


def test_installed_weights_are_never_an_output(tmp_path):
    weights = installed_weights()
    before = _digest(weights)
    r = invoke("train", "--data", tmp_path / "d.parquet", "--split", tmp_path, "--out", weights, "--epochs", 1,
               "--force")  # fmt: skip
    assert r.exit_code == 2 and "is the installed model" in r.output, r.output
    r = invoke("predict", "--heavy", TRASTUZUMAB_VH, "--jsonl", weights / "x.jsonl")
    assert r.exit_code == 2 and "is the installed model" in r.output, r.output
    assert _digest(weights) == before and not (weights / "x.jsonl").exists()


def test_non_empty_run_folder_needs_resume_or_force(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    r = invoke("train", "--data", tmp_path / "none.parquet", "--split", tmp_path / "split", "--out", run)
    assert r.exit_code == 2 and "holds an earlier run; give --resume or --force" in r.output, r.output
    r = invoke("train", "--data", tmp_path / "none.parquet", "--split", tmp_path / "split", "--out", run, "--force")
    assert r.exit_code == 2 and "holds an earlier run" not in r.output and "none.parquet" in r.output, r.output
    r = invoke("train", "--data", tmp_path / "none.parquet", "--split", tmp_path, "--out", run, "--force", "--resume")
    assert r.exit_code == 2 and "give one" in r.output
    r = invoke("predict", "--heavy", TRASTUZUMAB_VH, "--parquet", run)
    assert r.exit_code == 2 and "holds an earlier run; give --resume or --force" in r.output, r.output
    assert (run / "notes.txt").read_text() == "mine"


def test_parquet_force_replaces_the_earlier_run_only(tmp_path):
    run = tmp_path / "run"
    assert invoke("predict", "--heavy", TRASTUZUMAB_VH, "--parquet", run, "--part-size", 1, "--quiet").exit_code == 0
    (run / "loops/part-00007.parquet").write_bytes(b"an earlier, bigger run's part")
    (run / "loops-00009.parquet").write_bytes(b"a 0.3 run's part")
    (run / "notes.txt").write_text("mine")
    r = invoke("predict", "--heavy", TRASTUZUMAB_VH, "--parquet", run, "--force", "--quiet")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (run / "loops").iterdir()) == ["part-00000.parquet"]
    assert not (run / "loops-00009.parquet").exists() and (run / "notes.txt").read_text() == "mine"
    assert json.loads((run / "_run.json").read_text())["part_size"] == 512


def test_an_output_locked_by_another_run_is_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    fd = os.open(lock_path(out), os.O_RDWR | os.O_CREAT)  # another run's lock (its own open file)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        r = invoke("predict", "--heavy", TRASTUZUMAB_VH, "--jsonl", out)
        assert r.exit_code == 2 and "another loopfold run is writing it" in r.output, r.output
        assert not out.exists()
    finally:
        os.close(fd)
    r = invoke("predict", "--heavy", TRASTUZUMAB_VH, "--jsonl", out, "--no-fv")  # free again: runs, lock removed
    assert r.exit_code == 0 and out.read_text().count("\n") == 1 and not lock_path(out).exists()


def test_jsonl_line_is_whole_or_absent_when_a_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "o.jsonl"
    stream = JsonlStream(path)
    stream.write({"id": "a"})
    real = os.write

    def half_then_full(fd, data):  # a full disk: part of the line goes out, then ENOSPC
        if len(data) > 4:
            real(fd, bytes(data[:4]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        stream.write({"id": "b", "loops": ["x" * 50]})
    monkeypatch.setattr(os, "write", real)
    stream.write({"id": "c"})
    stream.close()
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["a", "c"] and stream.written == 2


def test_crafted_checkpoint_runs_no_code(tmp_path):
    from loopfold.errors import CheckpointError
    from loopfold.model.config import TrainConfig
    from loopfold.train.loop import train_model
    from tests.model.test_model import frame

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    run = tmp_path / "run"
    run.mkdir()
    (run / "state.pt").write_bytes(pickle.dumps({"model": Evil()}))
    cfg = TrainConfig(hidden=16, max_len=12, n_bins=4, epochs=1, batch_size=2)
    with pytest.raises(CheckpointError, match="cannot resume"):
        train_model(cfg, frame(n=4, seed=1), frame(n=2, seed=2), run, resume=True)
    assert not marker.exists()


def test_names_reach_the_terminal_as_text(tmp_path):
    for name in ("[/red]x.fasta", "a[/b]b.fasta", "\x1b]0;owned\x07.fasta"):  # paths in an error line
        r = invoke("predict", "--fasta", tmp_path / name)
        assert r.exit_code == 2 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
        assert "\x1b" not in r.output and "\x07" not in r.output and shown(name) in r.output, r.output
    fa = tmp_path / "in.fasta"  # record names in per-record failures and warnings
    fa.write_text(">[/red]x|H\nNOTANANTIBODY\n>\x1b]0;t\x07|H\nNOTANANTIBODY\n>[bold]ok|H\n" + TRASTUZUMAB_VH + "\n")
    r = invoke("predict", "--fasta", fa, "--no-fv", "--jsonl", tmp_path / "o.jsonl")
    assert r.exit_code == 3, r.output
    assert "([/red]x: " in r.output and "\\x1b]0;t\\x07" in r.output and "\x1b" not in r.output, r.output
    assert shown("a\x1b[31mb\x9bc\td") == "a\\x1b[31mb\\x9bc\td"


def test_file_names_are_cut_by_bytes():
    name = "抗体" * 48  # 96 characters, 288 bytes in UTF-8
    safe = _pdb_name(name, {})
    assert len(safe.encode()) <= 104 and safe.endswith(".pdb")
    assert _pdb_name("ab_1", {}) == "ab_1.pdb"


def test_check_outputs_refuses_and_locks_in_one_call(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    with pytest.raises(InvalidFile, match="inside the input folder"):
        check_outputs({"SOURCE": data}, {"--out": data / "x"}, {})
    check_outputs({"SOURCE": data}, {"--out": tmp_path / "x"}, {})
    assert lock_path(tmp_path / "x").exists()
    release_all()
    assert not lock_path(tmp_path / "x").exists()


def test_run_folders_refuse_only_inputs_under_names_they_write(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "in.fasta").write_text(">a\nEVQL\n")
    (run / "errors-00000.parquet").write_bytes(b"PAR1")
    check_outputs({"--fasta": run / "in.fasta"}, {}, {}, {"--parquet": (run, True, ("errors-*.parquet",))})
    with pytest.raises(InvalidFile, match="holds the input --table"):
        check_outputs({"--table": run / "errors-00000.parquet"}, {}, {},
                      {"--parquet": (run, True, ("errors-*.parquet",))})  # fmt: skip
    # a folder above the installed package (a project with its .venv, a home folder) is a fine output
    check_outputs({}, {}, {"--pdb-dir": installed_weights().parent.parent})
    release_all()


def test_train_force_removes_the_earlier_runs_files_only(tmp_path):
    run = tmp_path / "run"
    (run / "members" / "loopnet").mkdir(parents=True)
    for name in ("members/loopnet/config.json", "templates.safetensors", "frameworks.npz", "notes.txt"):
        (run / name).write_text("old")
    r = invoke("train", "--data", tmp_path / "none.parquet", "--split", tmp_path / "split", "--out", run, "--force")
    assert r.exit_code == 2 and "none.parquet" in r.output, r.output  # it went on to read the data
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
