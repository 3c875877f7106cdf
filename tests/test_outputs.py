"""Outputs never destroy a user's data: inputs, special files, interrupts, late failures."""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopfold.cli import app
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

runner = CliRunner()
FASTA = f">tz|H\n{TRASTUZUMAB_VH}\n>tz|L\n{TRASTUZUMAB_VL}\n"


def predict(*args):
    return runner.invoke(app, ["predict", *map(str, args)])


def test_output_over_an_input_is_refused_before_any_work(tmp_path, fab_pdb):
    fa = tmp_path / "ab.fasta"
    fa.write_text(FASTA)
    r = predict("--fasta", fa, "--json", fa)
    assert r.exit_code == 2 and "--json" in r.output and "is the input --fasta" in r.output
    assert fa.read_text() == FASTA
    link = tmp_path / "link.fasta"
    link.symlink_to(fa)
    r = predict("--fasta", link, "--jsonl", fa)  # the same file through a symlink
    assert r.exit_code == 2 and "is the input --fasta" in r.output and fa.read_text() == FASTA
    before = fab_pdb.read_bytes()
    r = predict("--structure", fab_pdb, "--pdb-dir", fab_pdb.parent)  # would write fab.pdb over fab.pdb
    assert r.exit_code == 2 and "fab.pdb is the input --structure" in r.output
    assert fab_pdb.read_bytes() == before
    out = tmp_path / "x.json"
    r = predict("--fasta", fa, "--json", out, "--jsonl", out)
    assert r.exit_code == 2 and "name the same path" in r.output and not out.exists()


def test_unwritable_outputs_fail_before_work(tmp_path):
    fa = tmp_path / "ab.fasta"
    fa.write_text(FASTA)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("keep")
    cases = [
        (["--json", tmp_path / "adir"], "is a folder"),
        (["--pdb-dir", tmp_path / "afile"], "exists and is not a folder"),
        (["--jsonl", tmp_path / "missing" / "x.jsonl"], "does not exist or is not writable"),
    ]
    for args, message in cases:
        r = predict("--fasta", fa, *args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1
    assert (tmp_path / "afile").read_text() == "keep"


def test_devices_symlinks_and_fifos_are_written_in_place(tmp_path):
    fa = tmp_path / "ab.fasta"
    fa.write_text(FASTA)
    r = predict("--fasta", fa, "--json", "/dev/full")
    assert r.exit_code == 2 and "/dev/full" in r.output and "No space left" in r.output
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert predict("--fasta", fa, "--json", link).exit_code == 0
    assert link.is_symlink() and json.loads(target.read_text())["results"][0]["id"] == "tz"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(Path(fifo).read_text()))
    reader.start()
    assert predict("--fasta", fa, "--jsonl", fifo).exit_code == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and json.loads(got[0])["id"] == "tz"
    r = predict("--fasta", fa, "--jsonl", "-")
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[0])["id"] == "tz"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_keeps_streamed_records_and_leaves_no_temporary_files(tmp_path, sig, code):
    fa = tmp_path / "many.fasta"
    fa.write_text("".join(FASTA.replace("tz", f"ab{i}") for i in range(1100)))
    out, pdbs = tmp_path / "o.jsonl", tmp_path / "pdbs"
    loopfold = Path(sys.executable).with_name("loopfold")
    proc = subprocess.Popen([str(loopfold), "predict", "--fasta", str(fa), "--jsonl", str(out), "--pdb-dir", str(pdbs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        time.sleep(0.2)
    assert out.exists(), "no record was streamed in time"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = out.read_text().splitlines()
    assert lines and all(json.loads(x)["id"] for x in lines)  # every line a whole record
    assert f"interrupted by {signal.Signals(sig).name}" in err and f"wrote {len(lines)} record(s)" in err
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == [] and (not pdbs.exists() or not any(pdbs.iterdir()))  # the PDB set: all or nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fasta", "X", "--loops", "H3"], "--loops goes with --structure"),
        (["--structure", "X", "--samples", "2"], "--samples does not go with --structure"),
        (["--heavy", TRASTUZUMAB_VH, "--cdr", "H3"], "--cdr and --stems go with --loop"),
        (["--heavy", TRASTUZUMAB_VH, "--stems", "YYC,WGQ"], "--cdr and --stems go with --loop"),
    ],
)
def test_options_that_would_be_ignored_are_refused(args, message):
    r = predict(*args)
    assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1
