"""Outputs never destroy a user's data: inputs, special files, interrupts, late failures."""

import json
import os
import shutil
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
from loopfold.errors import InvalidFile
from loopfold.pipeline.predictor import SHIPPED
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
    assert r.exit_code == 2 and "fab.pdb is the --structure file; refusing to write over it" in r.output
    assert fab_pdb.read_bytes() == before
    out = tmp_path / "x.json"
    r = predict("--fasta", fa, "--json", out, "--jsonl", out)
    assert r.exit_code == 2 and "name the same path" in r.output and not out.exists()
    hard = tmp_path / "hard.fasta"
    os.link(fa, hard)  # another name for the same inode
    r = predict("--fasta", fa, "--json", hard)
    assert r.exit_code == 2 and "is the input --fasta" in r.output and fa.read_text() == FASTA
    r = predict("--fasta", fa, "--json", "-", "--jsonl", "-")
    assert r.exit_code == 2 and "name the same path -" in r.output
    run = tmp_path / "run"
    shutil.copytree(SHIPPED, run)
    config = (run / "config.json").read_text()
    r = predict("--fasta", fa, "--model", run, "--json", run / "config.json")
    assert r.exit_code == 2 and "is the input --model" in r.output and (run / "config.json").read_text() == config
    (tmp_path / "pd").mkdir()
    r = predict("--fasta", fa, "--pdb-dir", tmp_path / "pd", "--json", tmp_path / "pd" / "tz.pdb")
    assert r.exit_code == 3 and "tz.pdb is the --json file" in r.output  # the JSON holds the record's error
    assert "error" in json.loads((tmp_path / "pd" / "tz.pdb").read_text())["results"][0]


def test_jsonl_is_untouched_until_a_record_is_ready(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("KEEP\n")
    r = predict("--fasta", tmp_path / "missing.fasta", "--jsonl", out)
    assert r.exit_code == 2 and "missing.fasta" in r.output and out.read_text() == "KEEP\n"
    r = predict("--heavy", "EVQLVXB", "--jsonl", out)
    assert r.exit_code == 2 and out.read_text() == "KEEP\n"


def test_pdb_set_is_all_or_nothing_and_never_replaces_links(tmp_path):
    from loopfold.io.outputs import write_file_set

    folder = tmp_path / "pdbs"
    folder.mkdir()
    (tmp_path / "elsewhere.pdb").write_text("theirs")
    (folder / "b.pdb").symlink_to(tmp_path / "elsewhere.pdb")
    with pytest.raises(InvalidFile, match="b.pdb: exists and is not a regular file"):
        write_file_set(folder, [("a.pdb", "A"), ("b.pdb", "B")])
    assert sorted(p.name for p in folder.iterdir()) == ["b.pdb"]
    assert (tmp_path / "elsewhere.pdb").read_text() == "theirs"
    with pytest.raises(OSError, match="File name too long") as err:  # the second file cannot be written
        write_file_set(folder, [("a.pdb", "A"), ("x" * 300 + ".pdb", "X")])
    assert str(folder) in str(err.value.filename) and ".loopfold-" not in str(err.value.filename)
    assert sorted(p.name for p in folder.iterdir()) == ["b.pdb"]  # nothing moved, no staging left
    moved = []
    assert write_file_set(folder, [("a.pdb", "A"), ("c.pdb", "C")], done=moved.append) == 2 and moved == [1, 2]
    assert (folder / "a.pdb").read_text() == "A"


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
    for option in ("--jsonl", "--json"):
        fifo = tmp_path / f"pipe{option}"
        os.mkfifo(fifo)
        got: list[str] = []
        reader = threading.Thread(target=lambda f=fifo, g=got: g.append(Path(f).read_text()), daemon=True)
        reader.start()
        assert predict("--fasta", fa, option, fifo).exit_code == 0
        reader.join(10)
        line = json.loads(got[0])
        assert stat.S_ISFIFO(os.stat(fifo).st_mode) and (line.get("id") or line["results"][0]["id"]) == "tz"
    r = predict("--fasta", fa, "--jsonl", "-")
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[0])["id"] == "tz"


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_keeps_streamed_records_and_leaves_no_temporary_files(tmp_path, sig, code):
    fa = tmp_path / "many.fasta"
    fa.write_text("".join(FASTA.replace("tz", f"ab{i}") for i in range(1100)))
    out, pdbs = tmp_path / "o.jsonl", tmp_path / "pdbs"
    loopfold = Path(sys.executable).with_name("loopfold")
    # SIGINT at its default in the child: a suite started in the background (nohup, `&`) has it ignored,
    # and a process that starts with SIGINT ignored keeps ignoring it, as a user's `nohup loopfold` should
    proc = subprocess.Popen([str(loopfold), "predict", "--fasta", str(fa), "--jsonl", str(out), "--pdb-dir", str(pdbs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
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
    assert leftovers == [] and not pdbs.exists()  # the PDB set is written only at the end: none of it yet


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fasta", "X", "--loops", "H3"], "--loops goes with --structure"),
        (["--structure", "X", "--samples", "2"], "--samples does not go with --structure"),
        (["--heavy", TRASTUZUMAB_VH, "--cdr", "H3"], "--cdr and --stems go with --loop"),
        (["--heavy", TRASTUZUMAB_VH, "--stems", "YYC,WGQ"], "--cdr and --stems go with --loop"),
        (["--heavy", TRASTUZUMAB_VH, "--on-error", "report"], "--on-error goes with --fasta"),
    ],
)
def test_options_that_would_be_ignored_are_refused(args, message):
    r = predict(*args)
    assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1


def test_batch_rounding_gives_the_per_loop_json_values():
    """loops_json (one NumPy call per kind of value for many loops and their samples) must give what
    rounded()/coords_json() give loop by loop, NaN as None; loops_features must give residue_features
    loop by loop."""
    import numpy as np

    from loopfold.model.error_model import loops_features, residue_features
    from loopfold.pipeline.results import LoopArrays, LoopResult, Sample, loops_json, rounded

    def coords_json(xyz: np.ndarray) -> dict:
        return dict(zip(("N", "CA", "C", "O"), np.round(xyz, 3).transpose(1, 0, 2).tolist(), strict=True))

    rng = np.random.default_rng(3)
    conf = rng.random((3, 12)).astype(np.float32)  # a single network's confidence is float32
    sizes = (6, 5, 5)
    found = []
    for k, n in enumerate(sizes):
        ang = rng.uniform(-180, 180, (n, 3))
        if k == 1:
            ang[2, 0] = np.nan
        err = rng.random(n) * 3 if k != 2 else None
        samples = tuple(Sample(rng.random(), f"t{j}", rng.uniform(-180, 180, (n, 3)), rng.normal(size=(n, 4, 3)) * 9,
                               None if j else 0.12345) for j in range(k))  # fmt: skip
        found.append(LoopResult("H3", "H", "north", "A" * n, "ARC", "WGQ", None, None,
                                LoopArrays(rng.normal(size=(n, 4, 3)) * 9, ang, conf[k, :n], err), False, 0.51234,
                                "t", rmsd_predicted=1.23456, samples=samples or None))  # fmt: skip
    entries = loops_json(found)
    for lp, r in zip(entries, found, strict=True):
        v = r.values
        assert lp["coords"] == coords_json(v.coords)
        assert lp["confidence"] == rounded(v.confidence.astype(np.float64), 3)  # its value, not float32 noise
        assert [lp[k] for k in ("phi", "psi", "omega")] == [rounded(v.angles[:, j], 1) for j in range(3)]
        assert ("error" in lp) == (v.error is not None) and lp["max_training_identity"] == 0.512
        if v.error is not None:
            assert lp["error"] == rounded(v.error, 2) and lp["rmsd_predicted"] == 1.23
        assert len(lp.get("samples", [])) == len(r.samples or ())
        for got, s in zip(lp.get("samples", []), r.samples or (), strict=True):
            assert got["coords"] == coords_json(s.coords) and got["phi"] == rounded(s.angles[:, 0], 1)
            assert got["probability"] == round(s.probability, 3) and got.get("closure_rmsd") == (
                None if s.closure_rmsd is None else 0.123)
    assert entries[1]["phi"][2] is None and "samples" not in entries[0]
    order = ["cdr", "chain", "definition", "sequence", "stem_n", "stem_c", "start", "phi", "psi", "omega",
             "confidence", "coords", "seen_in_training", "max_training_identity", "template"]  # as 0.3 wrote them
    assert list(entries[0]) == [*order, "error", "rmsd_predicted"] and list(entries[2]) == [*order, "samples"]
    from dataclasses import replace

    from loopfold.pipeline.results import StructureSite

    site = StructureSite("B", ("95", "96"), ("94", "97"), 1.33333, 0.51234)
    placed = loops_json([replace(found[0], closure_rmsd=0.0123, site=site, warnings=("w",)),
                         replace(found[0], closure_rmsd=0.0456)])  # fmt: skip
    assert list(placed[0]) == [*order, "warnings", "closure_rmsd", "c_n_gap", "rmsd_to_input", "error",
                               "rmsd_predicted", "chain_id", "file_residue_ids", "file_flank_ids"]  # fmt: skip
    assert placed[0]["c_n_gap"] == 1.333 and placed[0]["file_flank_ids"] == ["94", "97"]
    assert list(placed[1]) == [*order, "error", "rmsd_predicted", "closure_rmsd"] and placed[1]["closure_rmsd"] == 0.046
    probs = rng.dirichlet(np.ones(5), 16)
    sizes, cdrs, ident = [6, 5, 5], ["H3", "L1", "XX"], [0.9, None, 0.4]
    cut = np.cumsum([0, *sizes])
    each = [residue_features(conf.ravel()[cut[k] : cut[k + 1]], probs[cut[k] : cut[k + 1]], ident[k], cdrs[k])
            for k in range(3)]  # fmt: skip
    x = loops_features(conf.ravel()[:16], probs, ident, cdrs, sizes)
    assert np.array_equal(x, np.concatenate(each))
    assert np.allclose(x[:6, 5], [0.1, 0.2, 0.3, 0.3, 0.2, 0.1]) and np.allclose(x[6:11, 5], [0.1, 0.2, 0.3, 0.2, 0.1])
    assert np.allclose(x[:, 4], [0.6] * 6 + [0.5] * 10) and np.allclose(x[:, 3], [0.7] * 6 + [0.0] * 5 + [0.4] * 5)
    assert x[:6, 6:].sum(1).tolist() == [1.0] * 6 and x[11:, 6:].sum() == 0  # one-hot CDR; unknown: none
