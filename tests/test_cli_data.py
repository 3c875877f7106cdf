import json
import pickle

import numpy as np
from typer.testing import CliRunner

from loopfold.cli import app
from tests.data.test_seed_pickle import seed_arrays

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_build_info_split_on_fixture(tmp_path, fab_pdb):
    src = tmp_path / "structures"
    src.mkdir()
    fab_pdb.rename(src / fab_pdb.name)
    out = tmp_path / "ds.parquet"  # beside the input folder (inside it is refused: tests/io/test_guard.py)
    r = run("data", "build", src, "--out", out, "--workers", 1, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["loops_kept"] == 6
    r = run("data", "info", out, "--json")
    info = json.loads(r.stdout)
    assert info["n_loops"] == 6 and info["n_unique_sequences"] == 6 and info["by_cdr"]["H3"] == 1


def test_seed_build_and_split_json(tmp_path):
    pk = tmp_path / "seed.pickle"
    pk.write_bytes(pickle.dumps(seed_arrays(n=10)))
    ds = tmp_path / "seed.parquet"
    assert run("data", "build", pk, "--out", ds).exit_code == 0
    r = run(
        "data",
        "split",
        ds,
        "--by",
        "cluster",
        "--identity",
        0.7,
        "--fractions",
        0.6,
        0.2,
        0.2,
        "--seed",
        3,
        "--out",
        tmp_path / "split",
        "--json",
    )
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert sum(rep["sizes"].values()) == 30 and rep["max_test_train_identity"] < 0.7
    assert (tmp_path / "split" / "manifest.csv").is_file() and (tmp_path / "split" / "split.json").is_file()


def test_errors_are_one_line_with_exit_2(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.pdb").write_text("")
    out = tmp_path / "o.parquet"
    r = run("data", "build", bad, "--out", out, "--strict")
    assert r.exit_code == 2 and "a.pdb: empty file" in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []
    r = run("data", "build", bad, "--out", out)
    assert r.exit_code == 2 and "no loops found" in r.output and not out.exists()
    r = run("data", "info", tmp_path / "missing.parquet")
    assert r.exit_code == 2 and "missing.parquet" in r.output
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps((np.zeros(1), print)))
    r = run("data", "build", evil, "--out", out)
    assert r.exit_code == 2 and "refused to unpickle global builtins.print" in r.output


def test_train_evaluate_resume_cli(tmp_path):
    pk = tmp_path / "seed.pickle"
    pk.write_bytes(pickle.dumps(seed_arrays(n=12)))
    ds = tmp_path / "seed.parquet"
    assert run("data", "build", pk, "--out", ds).exit_code == 0
    assert (
        run("data", "split", ds, "--by", "random", "--fractions", 0.6, 0.2, 0.2, "--out", tmp_path / "sp").exit_code
        == 0
    )
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"hidden": 16, "epochs": 2, "n_bins": 4, "max_len": 31, "batch_size": 8}))
    r = run("train", "--data", ds, "--split", tmp_path / "sp", "--out", tmp_path / "run", "--config", cfg)
    assert r.exit_code == 0, r.output
    for name in ("model.safetensors", "config.json", "metrics.jsonl", "curve.png", "state.pt", "training_loops.csv"):
        assert (tmp_path / "run" / name).is_file(), name
    r = run("evaluate", "--model", tmp_path / "run", "--data", ds, "--split", tmp_path / "sp", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["part"] == "test" and res["model"]["n_loops"] == res["n_loops"] > 0
    assert set(res["baselines"]) == {"residue-mean", "identity template"} and "max_test_train_identity" in res
    for key in ("seed_mse", "phi_mae", "psi_mae", "rmsd_loop", "rmsd_stem", "rmsd_local", "by_cdr", "by_length"):
        assert key in res["model"]
    cfg.write_text(json.dumps({"hidden": 16, "epochs": 3, "n_bins": 4, "max_len": 31, "batch_size": 8}))
    r = run("train", "--data", ds, "--split", tmp_path / "sp", "--out", tmp_path / "run", "--config", cfg, "--resume")
    assert r.exit_code == 2 and "different config" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"hiddn": 3}')
    r = run("train", "--data", ds, "--split", tmp_path / "sp", "--out", tmp_path / "r2", "--config", bad)
    assert r.exit_code == 2 and "unknown keys ['hiddn']" in r.output


def test_version_and_short_help():
    from loopfold import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"loopfold {__version__}"
    for args, shown in ((["-h"], "predict"), (["predict", "-h"], "--heavy"), (["data", "build", "-h"], "--out")):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Usage:" in r.output and shown in r.output, args
