"""All the data as one dataset: release dates, sabdab_extra metadata, duplicates across sources,
the time split, the framework library's time split and nanobody entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopfold.data.dedupe import dedupe_sources
from loopfold.data.splits import make_split
from loopfold.io.pdb import read_structure
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL, backbones_to_pdb, make_backbone

VHH = ("QVQLQESGGGLVQAGGSLRLSCAASGRTFSSYAMGWFRQAPGKEREFVAAINWSGGSTYYADSVKGRFTISRDNAKNTVYLQMNSLKPEDTAVYYC"
       "AAGRYGSSWYPDSYDYWGQGTQVTVSS")  # fmt: skip


def _structure(path: Path, chains: list[tuple[str, str]], released: str | None, seed: int = 0) -> Path:
    text = backbones_to_pdb([make_backbone(seq, cid, seed=seed + k) for k, (cid, seq) in enumerate(chains)])
    if released is not None:
        text = f"REMARK 999 SOURCE PDB XXXX RELEASED {released} CHAINS H->H\n" + text
    path.write_text(text)
    return path


def test_release_date_comes_from_remark_999(tmp_path):
    p = _structure(tmp_path / "pdb9abc_H.pdb", [("H", VHH)], "2019-11-05")
    assert read_structure(p).date == "2019-11-05"
    q = _structure(tmp_path / "pdb9abd_H.pdb", [("H", VHH)], None)
    assert read_structure(q).date is None


def test_sabdab_layout_gives_source_date_resolution_and_pdb_id(tmp_path):
    from loopfold.data.build import build_dataset

    folder = tmp_path / "extra" / "structures"
    folder.mkdir(parents=True)
    _structure(folder / "pdb7xyz_H-L.pdb", [("H", TRASTUZUMAB_VH), ("L", TRASTUZUMAB_VL)], "2020-03-01")
    (tmp_path / "extra" / "manifest.csv").write_text(
        "file,pdb,release,kind,resolution,source,atoms\npdb7xyz_H-L.pdb.gz,7XYZ,2020-02-28,fv,2.1,x,all\n"
    )
    records, report = build_dataset(folder)
    assert report.loops_kept == 6
    assert {r.source for r in records} == {"extra"}  # the folder above "structures" names the source
    assert {r.pdb_id for r in records} == {"7xyz"}
    assert {r.date for r in records} == {"2020-02-28"}  # the manifest wins over the file's remark
    assert {r.resolution for r in records} == {2.1}
    assert all(r.loop_id.startswith("extra:7xyz_") for r in records)
    from loopfold.data.info import dataset_info

    rows = pd.DataFrame([r.to_row() for r in records])
    assert dataset_info(rows)["by_source_year"] == {"extra": {"2020": 1}}  # one structure, six loops


def test_dedupe_keeps_the_first_source_and_drops_copies_by_id_or_chain_sequence():
    df = pd.DataFrame({
        "pdb_id": ["1abc", "1abc", "2xyz", "1abc", "3new", "3new", "4own"],
        "chain_sequence": ["HHH", "LLL", "HH2", "HHH", "LLL", "HX", "HY"],
    })  # fmt: skip
    keep, report = dedupe_sources(df, [0, 0, 0, 1, 1, 1, 1])
    # 1abc again (same id) and 3new (shares the light chain LLL) go; 4own stays
    assert keep.tolist() == [True, True, True, False, False, False, True]
    assert report.dropped_structures == {"same_pdb_id": 1, "same_chain_sequence": 1}
    assert report.kept_loops == 4 and report.dropped_loops == 3
    keep_rev, _ = dedupe_sources(df, [1, 1, 1, 0, 0, 0, 0])  # the order of the inputs decides
    assert keep_rev.tolist()[:3] == [False, False, True] and keep_rev[3]


def _loops(n: int, rng: np.random.Generator) -> list[str]:
    aa = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    return ["".join(rng.choice(aa, 12)) for _ in range(n)]


def test_time_split_tests_on_recent_loops_and_drops_their_older_relatives():
    rng = np.random.default_rng(0)
    seqs = _loops(60, rng)
    dates = ["2015-01-01"] * 40 + ["2020-06-01"] * 20
    seqs[0] = seqs[45][:11] + ("A" if seqs[45][11] != "A" else "C")  # an older loop 11/12 identical to a 2020 loop
    df = pd.DataFrame({"loop_id": [f"s:{i:04d}_H_H3" for i in range(60)], "cdr": "H3", "sequence": seqs,
                       "date": dates, "pdb_id": [f"{i:04d}" for i in range(60)], "definition": "north"})  # fmt: skip
    split = make_split(df, "cluster", 0.7, (0.7, 0.2, 0.1), 0, None, "2020-01-01")
    parts = split["part"].to_numpy()
    assert (parts[40:] == "test").all()
    assert parts[0] == "excluded"
    assert set(parts[1:40]) == {"train", "validation"}
    assert (parts[1:40] == "validation").sum() == pytest.approx(39 * 2 / 9, abs=2)
    with pytest.raises(ValueError, match="test_from"):
        make_split(df, "random", 0.7, (0.7, 0.2, 0.1), 0, None, "2020-01-01")


def test_vhh_hallmarks_tell_a_nanobody_from_a_vh():
    from loopfold.numbering.anarci import number_sequence
    from loopfold.numbering.vhh import hallmarks, is_vhh

    vhh, vh = number_sequence(VHH)[0], number_sequence(TRASTUZUMAB_VH)[0]
    assert hallmarks(VHH, vhh) == "FERF" and is_vhh(VHH, vhh)
    assert hallmarks(TRASTUZUMAB_VH, vh) == "VGLW" and not is_vhh(TRASTUZUMAB_VH, vh)
    humanised = TRASTUZUMAB_VH.replace("GKGLEW", "GKGPEW")  # P50: a conventional variant, one change
    assert not is_vhh(humanised, number_sequence(humanised)[0])


def test_library_time_split_multiple_folders_and_nanobody_entries(tmp_path):
    from loopfold.fv.library import load_library
    from loopfold.fv.library_build import build_library

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _structure(a / "pdb1old_H-L.pdb", [("H", TRASTUZUMAB_VH), ("L", TRASTUZUMAB_VL)], "2015-01-01", seed=3)
    _structure(b / "pdb2nbd_H.pdb", [("H", VHH)], "2016-01-01", seed=5)
    _structure(b / "pdb1old_H.pdb", [("H", VHH)], "2016-01-01", seed=7)  # same id as in a/: skipped
    # the same antibody family, later, with another framework residue (not a copy of 1old's entry)
    new_vh = "Q" + TRASTUZUMAB_VH[1:].replace("SRWGGDGFYAMDY", "SRWGGDGFYAMDV")
    _structure(b / "pdb3new_H-L.pdb", [("H", new_vh), ("L", TRASTUZUMAB_VL)], "2020-05-01", seed=9)
    lib, rep = build_library([a, b], None, workers=1, min_contact=0.0, max_bond_deviation=1.0)
    assert rep["same_pdb_id"] == 1 and set(lib.ids) == {"1old", "2nbd", "3new"}
    assert dict(zip(lib.ids, lib.nanobody, strict=True)) == {"1old": False, "2nbd": True, "3new": False}
    timed, rep2 = build_library([a, b], None, workers=1, min_contact=0.0, max_bond_deviation=1.0,
                                test_from="2020-01-01")  # fmt: skip
    # 3new is recent; 1old's H3 is >= 70% identical to 3new's, so it goes too
    assert rep2["recent"] == 1 and rep2["excluded_similar_loop"] == 1 and set(timed.ids) == {"2nbd"}
    lib.save(tmp_path / "lib.npz")
    assert load_library(tmp_path / "lib.npz").nanobody.tolist() == lib.nanobody.tolist()


def test_a_heavy_chain_alone_runs_in_the_mode_its_hallmarks_or_the_flags_say():
    import json

    from typer.testing import CliRunner

    from loopfold.cli import app

    runner = CliRunner()

    def mode(*args: str) -> dict:
        r = runner.invoke(app, ["predict", *args, "--no-fv", "--json", "-", "--quiet"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["results"][0]

    got = mode("--heavy", VHH)
    assert got["mode"] == "nanobody" and got["vhh_hallmarks"] == "FERF"
    assert mode("--heavy", VHH, "--no-nanobody")["mode"] == "heavy"
    assert mode("--heavy", TRASTUZUMAB_VH)["mode"] == "heavy"
    assert mode("--heavy", TRASTUZUMAB_VH, "--nanobody")["mode"] == "nanobody"
    paired = mode("--heavy", TRASTUZUMAB_VH, "--light", TRASTUZUMAB_VL)
    assert paired["mode"] == "paired" and "vhh_hallmarks" not in paired
    r = runner.invoke(app, ["predict", "--loop", "ARDYYGSSYFDY", "--nanobody"])
    assert r.exit_code == 2 and "--nanobody/--no-nanobody go with" in r.output


def test_nanobody_mode_takes_the_vh_from_nanobody_entries():
    from dataclasses import replace

    from loopfold.fv.assemble import FrameworkBuilder
    from loopfold.fv.library import LIBRARY_FILE, load_library
    from loopfold.numbering.anarci import number_sequence
    from loopfold.pipeline.predictor import SHIPPED

    lib = load_library(SHIPPED / LIBRARY_FILE)
    vh_only = (lib.residues[:, 1] == 0).all(1)
    marked = np.zeros(len(lib), dtype=bool)
    marked[np.nonzero(vh_only)[0][::2]] = True  # every other VH-only entry marked a nanobody here
    b = FrameworkBuilder(replace(lib, nanobody=marked))
    chains = {"H": (VHH, number_sequence(VHH)[0])}
    ids = {str(i): m for i, m in zip(lib.ids, marked, strict=True)}
    assert ids[b.frame("q", chains, nanobody=True).templates["H"]]
    assert not ids[b.frame("q", chains, nanobody=False).templates["H"]]
    free = b.frame("q", chains).templates["H"]  # no mode: the best entry, whatever it is
    assert free == FrameworkBuilder(lib).frame("q", chains).templates["H"]


def test_cli_merge_dedupe_and_time_split(tmp_path):
    from typer.testing import CliRunner

    from loopfold.cli import app
    from loopfold.data.store import read_dataset

    runner = CliRunner()
    a, b = tmp_path / "a" / "structures", tmp_path / "b"
    a.mkdir(parents=True)
    b.mkdir()
    _structure(a / "pdb1aaa_H-L.pdb", [("H", TRASTUZUMAB_VH), ("L", TRASTUZUMAB_VL)], "2012-01-01")
    _structure(b / "pdb2bbb_H.pdb", [("H", TRASTUZUMAB_VH)], "2020-01-01")  # the same heavy chain again
    _structure(b / "pdb3ccc_H.pdb", [("H", VHH)], "2020-02-01")
    for src, out in ((a, "a.parquet"), (b, "b.parquet")):
        r = runner.invoke(app, ["data", "build", str(src), "--out", str(tmp_path / out), "--workers", "1"])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "merge", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--dedupe",
                            "--out", str(tmp_path / "all.parquet")])  # fmt: skip
    said = " ".join(r.output.split())  # the console wraps long lines
    assert r.exit_code == 0 and "3 loops of 1 duplicate structures dropped" in said and "same_chain_sequence 1" in said
    df = read_dataset(tmp_path / "all.parquet")
    assert sorted(df["pdb_id"].unique()) == ["1aaa", "3ccc"] and len(df) == 9
    r = runner.invoke(app, ["data", "split", str(tmp_path / "all.parquet"), "--test-from", "2020-13-01",
                            "--out", str(tmp_path / "s")])  # fmt: skip
    assert r.exit_code == 2 and "--test-from '2020-13-01': expected an ISO date" in r.output
    r = runner.invoke(app, ["data", "split", str(tmp_path / "all.parquet"), "--test-from", "2020-01-01",
                            "--out", str(tmp_path / "s"), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    parts = pd.read_csv(tmp_path / "s" / "manifest.csv").set_index("loop_id")["part"]
    assert all(parts[i] == "test" for i in parts.index if "3ccc" in i)
    assert all(parts[i] in ("train", "validation", "excluded") for i in parts.index if "1aaa" in i)
