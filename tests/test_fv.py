"""Whole-Fv models: framework library, closure, assembly, files, the Python API and the CLI."""

import json
import os
from pathlib import Path

import gemmi
import numpy as np
import pytest
from typer.testing import CliRunner

from bench.measures import geometry_report
from loopfold import LoopFold
from loopfold.cli import app
from loopfold.errors import CheckpointError, InvalidFile, InvalidSequence, NumberingError
from loopfold.fv.library import FrameworkLibrary, framework_positions, load_library
from loopfold.io.fasta import AntibodyInput
from loopfold.structure.closure import close_windows
from loopfold.structure.geometry import backbone_torsions
from loopfold.structure.rebuild import rebuild_backbone
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

runner = CliRunner()
#: a camelid VHH (nanobody): FR2 hallmarks E44 R45 F47 (Kabat), long CDR3
VHH = ("QVQLQESGGGLVQAGGSLRLSCAASGRTFSSYAMGWFRQAPGKEREFVAAINWSGGSTYYADSVKGRFTISRDNAKNTVYLQMNSLKPEDTAVYYC"
       "AAGRYGSSWYPDSYDYWGQGTQVTVSS")  # fmt: skip


@pytest.fixture(scope="module")
def lf():
    return LoopFold()


@pytest.fixture(scope="module")
def trastuzumab(lf):
    return lf.predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL, name="trastuzumab")


def test_framework_positions_leave_out_exactly_the_north_cdrs():
    h = framework_positions("H")
    assert h[22] and h[40] and h[103] and h[117]  # IMGT 23 (Cys), 41 (Trp), 104 (Cys), 118 (Trp)
    assert not h[23] and not h[39] and not h[104] and not h[116]  # IMGT 24, 40 (H1), 105, 117 (H3)


def test_library_round_trip_and_corrupt_file(tmp_path):
    rng = np.random.default_rng(0)
    coords = rng.normal(0, 20, (2, 2, 128, 4, 3)).astype(np.float32)
    coords[0, 1] = np.nan  # an entry without VL
    res = np.full((2, 2, 128), ord("A"), dtype=np.uint8)
    lib = FrameworkLibrary(np.array(["1abc", "2xyz"]), res, coords, np.array([2.0, np.nan], dtype=np.float32))
    lib.save(tmp_path / "lib.npz")
    back = load_library(tmp_path / "lib.npz")
    assert list(back.ids) == ["1abc", "2xyz"] and np.isnan(back.resolution[1])
    np.testing.assert_array_equal(back.coords, coords)  # float32 kept exactly (NaN where absent)
    assert back.present()[0, 0].all() and not back.present()[0, 1].any()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="bad.npz: not a loopfold framework library"):
        load_library(tmp_path / "bad.npz")


def _window(seed: int, n_loop: int = 8):
    """A true window (3 + loop + 3 residues) and a prediction of it with noisy loop torsions."""
    rng = np.random.default_rng(seed)
    w = 6 + n_loop
    ang = np.column_stack([rng.uniform(-150, -60, w), rng.uniform(-60, 160, w), np.full(w, 180.0)])
    true = rebuild_backbone(ang)
    noisy = ang.copy()
    noisy[3 : 3 + n_loop, :2] += rng.normal(0, 12, (n_loop, 2))
    return true, rebuild_backbone(noisy)


@pytest.mark.parametrize("placement", ["stems", "n_stem"])
def test_closure_bonds_the_loop_to_both_fixed_stems(placement):
    pairs = [_window(s, n) for s, n in ((0, 8), (1, 14), (2, 5))]
    moved = []
    for k, (_, pred) in enumerate(pairs):  # predictions in an arbitrary frame
        rot = np.linalg.qr(np.random.default_rng(k).normal(size=(3, 3)))[0]
        moved.append(pred @ rot.T + 10.0 * k)
    out = close_windows(moved, [t[:3] for t, _ in pairs], [t[-3:] for t, _ in pairs], placement=placement)
    for (true, _), res in zip(pairs, out, strict=True):
        x = res.coords
        cn = np.linalg.norm(x[1:, 0] - x[:-1, 2], axis=-1)
        assert np.abs(cn - 1.329).max() < 0.05, cn  # every peptide bond, both junctions included
        assert res.anchor_rmsd < 0.1
        # the closed loop stays near the true one (the prediction was the truth with 12° noise)
        loop_true = true[3:-3]
        assert np.sqrt(((x[3:-3] - loop_true) ** 2).sum(-1).mean()) < 3.0


def test_framework_placement_keeps_the_given_direction_that_stem_placement_discards():
    true, _ = _window(4, 10)
    centre = true[[0, 1, 2, -3, -2, -1], 1].mean(0)
    c, s = np.cos(np.radians(12.0)), np.sin(np.radians(12.0))
    tilt = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    tilted = (true - centre) @ tilt.T + centre  # where a template's framework put it: tilted off the stems
    out = {p: close_windows([tilted], [true[:3]], [true[-3:]], placement=p)[0] for p in ("stems", "framework")}
    loop = slice(3, -3)

    def dist(a, b):
        return float(np.sqrt(((a[loop] - b[loop]) ** 2).sum(-1).mean()))

    for res in out.values():  # either way the loop is bonded to both stems
        assert res.anchor_rmsd < 0.1
    assert dist(out["stems"].coords, true) < 0.3  # the stems put it back where they say
    assert dist(out["framework"].coords, tilted) < dist(out["stems"].coords, tilted) - 0.2
    with pytest.raises(ValueError, match="placement must be one of"):
        close_windows([tilted], [true[:3]], [true[-3:]], placement=["stems", "framework"])


def test_closure_keeps_an_exact_prediction():
    true, _ = _window(3)
    (res,) = close_windows([true + 5.0], [true[:3]], [true[-3:]])
    assert np.sqrt(((res.coords - true) ** 2).sum(-1).mean()) < 0.05
    np.testing.assert_allclose(backbone_torsions(res.coords)[3:-3, :2], backbone_torsions(true)[3:-3, :2], atol=1.0)


def test_fv_from_sequence_is_a_sane_whole_fv(trastuzumab):
    fv = trastuzumab.fv
    assert [c.chain_id for c in fv.chains] == ["H", "L"]
    h, light = fv.chains
    ids = dict(zip(h.residue_ids, h.sequence, strict=True))
    assert ids["23"] == "C" and ids["104"] == "C" and ids["41"] == "W"  # IMGT numbering
    assert dict(zip(light.residue_ids, light.sequence, strict=True))["23"] == "C"
    assert h.sequence in TRASTUZUMAB_VH and light.sequence in TRASTUZUMAB_VL
    geo = geometry_report(fv)
    assert geo["max_peptide_bond"] < 1.4  # no chain gap anywhere
    assert geo["max_bond_deviation"] <= 0.05 and geo["min_nonbonded"] >= 2.2 and fv.clashes == 0
    for ch in fv.chains:
        gly = np.array([a == "G" for a in ch.sequence])
        assert np.isnan(ch.cb[gly]).all() and np.isfinite(ch.cb[~gly]).all()
        assert np.all(ch.error_frame > 0) and set(ch.region) == {"FR", *(f"{ch.chain_id}{i}" for i in (1, 2, 3))}
    # the loops in the record are the loops of the Fv, in its frame
    h3 = next(lp for lp in trastuzumab.loops if lp.cdr == "H3")
    np.testing.assert_allclose(h3.coords, h.coords[np.array(h.region) == "H3"], atol=0.001)
    assert h3.coords.shape == (len(h3.sequence), 4, 3) and h3.error.shape == (len(h3.sequence),)


def test_saved_files_read_back_with_errors_as_b_factors(trastuzumab, tmp_path):
    trastuzumab.save(tmp_path / "t.pdb")
    trastuzumab.save(tmp_path / "t.cif")
    for name in ("t.pdb", "t.cif"):
        st = gemmi.read_structure(str(tmp_path / name))
        assert [ch.name for ch in st[0]] == ["H", "L"]
        for model_chain, chain in zip(trastuzumab.fv.chains, st[0], strict=True):
            ids = [f"{r.seqid.num}{r.seqid.icode.strip()}" for r in chain]
            assert ids == list(model_chain.residue_ids)  # IMGT numbers with insertion codes
            for r, err, seq in zip(chain, model_chain.error_frame, model_chain.sequence, strict=True):
                assert {a.name for a in r} == ({"N", "CA", "C", "O"} if seq == "G" else {"N", "CA", "C", "O", "CB"})
                assert all(a.b_iso == pytest.approx(err, abs=0.006) for a in r)  # every atom: its residue's error
    h = trastuzumab.fv.chains[0]
    loop, frame = h.error_frame[np.array(h.region) == "H3"], h.error_frame[np.array(h.region) == "FR"]
    assert loop.mean() > frame.mean()  # the H3 is predicted less certain than the framework
    record = json.loads(trastuzumab.to_json())
    assert record["id"] == "trastuzumab"
    assert len(record["fv"]["chains"][0]["error_frame"]) == len(trastuzumab.fv.chains[0].sequence)
    os.symlink(tmp_path / "t.pdb", tmp_path / "link.pdb")
    with pytest.raises(InvalidFile, match="not a regular file"):
        trastuzumab.save(tmp_path / "link.pdb")


def test_long_h3_insertion_codes_survive_in_the_file(lf, tmp_path):
    i = TRASTUZUMAB_VH.index("WGGDGFYAMDY")
    heavy = TRASTUZUMAB_VH[:i] + "WGGDGFYRRSSYGAMDY" + TRASTUZUMAB_VH[i + 11 :]  # a 19-residue North H3
    p = lf.predict(heavy=heavy, light=TRASTUZUMAB_VL, name="long")
    ids = list(p.fv.chains[0].residue_ids)
    assert "111A" in ids and "112A" in ids
    p.save(tmp_path / "long.pdb")
    st = gemmi.read_structure(str(tmp_path / "long.pdb"))
    assert [f"{r.seqid.num}{r.seqid.icode.strip()}" for r in st[0]["H"]] == ids
    assert geometry_report(p.fv)["max_peptide_bond"] < 1.4


def test_nanobody_gives_a_heavy_chain_fv(lf):
    p = lf.predict(heavy=VHH, name="vhh")
    assert [c.chain_id for c in p.fv.chains] == ["H"] and [lp.cdr for lp in p.loops] == ["H1", "H2", "H3"]
    assert "L" not in p.fv.templates and geometry_report(p.fv)["max_peptide_bond"] < 1.4
    assert "ATOM" in p.text("pdb") and " L " not in p.text("pdb")[-2000:]


def test_predict_many_streams_and_reports_a_bad_record(lf):
    got = list(lf.predict_many([("a", TRASTUZUMAB_VH, TRASTUZUMAB_VL), ("bad", "NOTANANTIBODY", None),
                                ("vhh", VHH, None)]))  # fmt: skip
    assert [p.id for p, _ in got] == ["a", "bad", "vhh"]
    assert got[0][1] is None and got[2][1] is None and got[0][0].fv is not None
    assert isinstance(got[1][1], InvalidSequence) and got[1][0].fv is None and "bad" in str(got[1][1])
    assert got[1][0].record == {"id": "bad", "error": str(got[1][1])}
    with pytest.raises(NumberingError):
        lf.predict(heavy="MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ")


def test_predict_many_yields_the_exceptions_by_type(lf):
    from loopfold.errors import LoopTooLong, NumberingRefused, UnknownResidue

    long_h3 = TRASTUZUMAB_VH.replace("WGGDGFYAMDY", "W" + "G" * 40 + "Y")
    x_vh = TRASTUZUMAB_VH[:50] + "X" + TRASTUZUMAB_VH[51:]
    records = [("ok", TRASTUZUMAB_VH, None), ("x", x_vh, None), ("not", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", None),
               ("long", long_h3, None)]  # fmt: skip
    got = {p.id: e for p, e in lf.predict_many(records)}
    assert got["ok"] is None
    assert type(got["x"]) is UnknownResidue and isinstance(got["x"], InvalidSequence)
    assert type(got["not"]) is NumberingError and not isinstance(got["not"], NumberingRefused)
    assert type(got["long"]) is LoopTooLong and "long heavy: H3: window of" in str(got["long"])


def test_cli_writes_the_fv_and_rounded_json(tmp_path):
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--light", TRASTUZUMAB_VL, "--pdb-dir",
                            str(tmp_path / "pdb"), "--format", "cif", "--json", str(tmp_path / "o.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    st = gemmi.read_structure(str(tmp_path / "pdb" / "query.cif"))
    assert [c.name for c in st[0]] == ["H", "L"]
    assert "B-factor: predicted backbone error in A" in (tmp_path / "pdb" / "query.cif").read_text()
    doc = json.loads((tmp_path / "o.json").read_text())

    def decimals(values) -> int:  # noqa: ANN001
        flat = np.array([v for v in np.ravel(values) if v is not None], dtype=float)
        return max(len(repr(float(v)).split(".")[1].rstrip("0")) for v in flat)

    for lp in doc["results"][0]["loops"]:
        assert decimals(lp["coords"]["CA"]) <= 3  # coordinates 0.001 Å
        assert max(decimals(lp[k]) for k in ("phi", "psi", "omega")) <= 1  # angles 0.1°
        assert decimals(lp["confidence"]) <= 3 and decimals(lp["error"]) <= 2  # probabilities 0.001, errors 0.01
    assert decimals(doc["results"][0]["fv"]["chains"][0]["error_frame"]) <= 2
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--no-fv", "--pdb-dir", str(tmp_path / "lo")])
    assert r.exit_code == 0
    assert "CDR loops predicted from sequence; each loop placed" in (tmp_path / "lo" / "query.pdb").read_text()


def test_progress_line_shows_rate_on_a_terminal_only_and_not_when_quiet():
    import io

    from rich.console import Console

    from loopfold.cli import tracked

    for terminal, quiet, shown in ((True, False, True), (True, True, False), (False, False, False)):
        buf = io.StringIO()
        where = Console(file=buf, force_terminal=terminal, width=100)
        assert list(tracked(range(5), quiet=quiet, delay=0.0, where=where)) == list(range(5))
        assert ("antibodies (" in buf.getvalue() and "/s)" in buf.getvalue()) == shown, buf.getvalue()


@pytest.mark.slow
def test_refine_adds_side_chains_keeps_numbering_and_errors_and_clears_clashes(lf, tmp_path):
    pytest.importorskip("openmm")
    from bench.measures import closest_heavy_pair

    p = lf.predict(heavy=VHH, name="vhh")
    p.save(tmp_path / "r.pdb", refine=True)
    text = (tmp_path / "r.pdb").read_text()
    st = gemmi.read_pdb_string(text)
    h = st[0]["H"]
    assert [f"{r.seqid.num}{r.seqid.icode.strip()}" for r in h] == list(p.fv.chains[0].residue_ids)
    trp = next(r for r in h if r.name == "TRP")
    assert {"NE1", "CZ2", "CH2"} <= {a.name for a in trp}  # side chains built
    assert not any(a.is_hydrogen() for r in h for a in r)
    b = {f"{r.seqid.num}{r.seqid.icode.strip()}": r[0].b_iso for r in h}
    for rid, err in zip(p.fv.chains[0].residue_ids, p.fv.chains[0].error_frame, strict=True):
        assert b[rid] == pytest.approx(err, abs=0.01)
    assert closest_heavy_pair(text) >= 2.5
    assert "refined: side chains by PDBFixer" in text


def test_refine_option_is_refused_where_it_cannot_apply(tmp_path):
    r = runner.invoke(app, ["predict", "--heavy", VHH, "--refine"])
    assert r.exit_code == 2 and "--refine changes the written structures: give --pdb-dir" in r.output
    r = runner.invoke(app, ["predict", "--heavy", VHH, "--no-fv", "--refine", "--pdb-dir", str(tmp_path)])
    assert r.exit_code == 2 and "--refine goes with whole-Fv or --structure outputs" in r.output


def test_package_metadata_ranges_and_import_cost():
    import subprocess
    import sys
    from importlib.metadata import metadata, requires

    meta = metadata("loopfold")
    assert meta["License-Expression"] == "MIT" and meta["Requires-Python"] == "<3.14,>=3.11"
    assert "Programming Language :: Python :: 3.13" in meta.get_all("Classifier")
    assert not [r for r in requires("loopfold") if "==" in r.split(";")[0]]  # ranges; exact versions in constraints.txt
    import loopfold

    assert (Path(loopfold.__file__).parent / "py.typed").is_file()
    code = "import sys, loopfold; assert 'torch' not in sys.modules and 'gemmi' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"



def test_framework_gaps_are_rebuilt_and_closed(lf):
    # two deletions three residues apart in VH framework 3 (IMGT 80s): the template has positions
    # the query lacks, so the stretch around them is rebuilt and closed onto its neighbours
    i = TRASTUZUMAB_VH.index("NTAYLQMNS")
    heavy = TRASTUZUMAB_VH[:i] + TRASTUZUMAB_VH[i + 1 : i + 4] + TRASTUZUMAB_VH[i + 5 :]
    p = lf.predict(heavy=heavy, light=TRASTUZUMAB_VL, name="gapped")
    assert p.fv is not None, p.record.get("fv_error")
    rebuilt = [n for n in p.fv.notes if n.startswith("chain H: residues ") and " built as a strand, " in n]
    assert rebuilt, p.fv.notes  # the gap path ran
    h = p.fv.chains[0]
    assert h.sequence in heavy
    geo = geometry_report(p.fv)
    assert geo["max_peptide_bond"] < 1.4 and geo["max_bond_deviation"] <= 0.05 and not p.fv.geometry.gaps
    # the note says closed only where the geometry check finds nothing broken or clashing there
    first, last = rebuilt[0].split()[3].split("-")  # the stretch, IMGT-numbered ("T85", "N92")
    ids = [f"{a}{r}" for a, r in zip(h.sequence, h.residue_ids, strict=True)]
    near = {f"H {n}" for n in ids[max(ids.index(first) - 1, 0) : ids.index(last) + 2]}
    clash = [c for c in p.fv.geometry.clashes if set(c.split("/")) & near]
    assert (", closed" in rebuilt[0]) == (not clash) and ("NOT closed (geometry check" in rebuilt[0]) == bool(clash)


def test_build_library_leaves_out_excluded_and_related_antibodies(tmp_path):
    folder = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared/data/rosetta_antibody_db"
    src = folder / "antibody/antibody_database"
    if not src.is_dir():
        pytest.skip("../shared/data/rosetta_antibody_db is absent")
    import shutil

    from loopfold.data.splits import Exclusions
    from loopfold.fv.library_build import build_library

    picks = ["pdb1a0q_chothia.pdb.bz2", "pdb12e8_chothia.pdb.bz2", "pdb1a2y_chothia.pdb.bz2"]
    for f in picks:
        shutil.copy(src / f, tmp_path / f)  # a small folder for the test (tmp, not the repository)
    lib, rep = build_library(tmp_path, None, workers=1)
    assert rep["files"] == 3 and rep["unusable"] == 0 and rep["excluded_id"] == 0 and len(lib) >= 1
    assert len(lib.h3) == len(lib) and all(lib.h3)
    first = str(lib.ids[0])
    by_id, _ = build_library(tmp_path, Exclusions(frozenset({first}), {}), workers=1)
    assert first not in set(by_id.ids)
    related, rep2 = build_library(tmp_path, Exclusions(frozenset(), {("north", "H3"): [str(lib.h3[0])]}), workers=1)
    assert first not in set(related.ids) and rep2["excluded_similar_loop"] >= 1


def test_cli_refuses_options_that_would_be_ignored_and_protects_the_library(tmp_path):
    r = runner.invoke(app, ["predict", "--heavy", VHH, "--format", "cif"])
    assert r.exit_code == 2 and "--format goes with --pdb-dir" in r.output
    r = runner.invoke(app, ["predict", "--loop", "ARDYYGSSYFDY", "--no-fv"])
    assert r.exit_code == 2 and "--no-fv goes with --heavy/--light/--fasta" in r.output
    from loopfold.pipeline.predictor import SHIPPED

    before = (SHIPPED / "frameworks.npz").read_bytes()
    r = runner.invoke(app, ["predict", "--heavy", VHH, "--json", str(SHIPPED / "frameworks.npz")])
    assert r.exit_code == 2 and "refusing to write over an input" in r.output
    assert (SHIPPED / "frameworks.npz").read_bytes() == before
    r = runner.invoke(app, ["predict", "--heavy", VHH, "--no-fv", "--pdb-dir", str(tmp_path), "--format", "cif"])
    assert r.exit_code == 0 and gemmi.cif.read(str(tmp_path / "query.cif"))  # loops alone, as mmCIF


def test_error_coefficients_may_hold_a_pair_per_cdr(tmp_path):
    from loopfold.constants import CDRS
    from loopfold.fv.build import loop_error_coef

    shared = (0.6, 0.3, 0.2, 0.1, 1.5)
    assert loop_error_coef(shared, "H3") == (0.1, 1.5)
    per = shared + tuple(v for k in range(len(CDRS)) for v in (0.01 * k, 1.0 + k))
    assert loop_error_coef(per, "H1") == (0.0, 1.0) and loop_error_coef(per, "L3") == (0.05, 6.0)
    lib = load_library(Path(__file__).resolve().parents[1] / "src/loopfold/weights/frameworks.npz")
    from dataclasses import replace

    replace(lib, error_coef=np.array(per)).save(tmp_path / "f.npz")
    assert load_library(tmp_path / "f.npz").error_coef.shape == (17,)
    replace(lib, error_coef=np.array(per[:9])).save(tmp_path / "g.npz")
    with pytest.raises(CheckpointError, match="inconsistent shapes"):
        load_library(tmp_path / "g.npz")


def test_loop_residue_errors_use_their_cdr_pair(lf):
    from dataclasses import replace

    from loopfold.constants import CDRS
    from loopfold.fv.assemble import FrameworkBuilder
    from loopfold.io.fasta import AntibodyInput
    from loopfold.pipeline.batch import predict_antibodies

    per = (0.6, 0.3, 0.2, 0.1, 1.5) + tuple(v for k in range(len(CDRS)) for v in (0.1 * k, 1.0 + k))
    builder = FrameworkBuilder(replace(lf.builder.library, error_coef=np.array(per)))
    (r,) = predict_antibodies(lf.predictor, [AntibodyInput("tz", TRASTUZUMAB_VH, TRASTUZUMAB_VL)], fv=builder)
    for lp in r.result["loops"]:
        ch = next(c for c in r.fv.chains if c.chain_id == lp["chain"])
        sel = np.array([g == lp["cdr"] for g in ch.region])
        k = CDRS.index(lp["cdr"])
        np.testing.assert_allclose(ch.error_frame[sel], 0.1 * k + (1.0 + k) * np.array(lp["error"]), atol=0.011)


def test_every_sample_of_a_whole_fv_record_is_placed_and_closed_like_its_loop(lf):
    """--samples in a whole-Fv record: each sample sits on the stems the written loop has in the model."""
    pred, err = next(lf.predictions([AntibodyInput("a", TRASTUZUMAB_VH, TRASTUZUMAB_VL)], samples=3))
    assert err is None and pred.fv is not None
    xyz = lambda c: np.stack([np.array(c[k]) for k in ("N", "CA", "C", "O")], 1)  # noqa: E731
    for lp in pred.record["loops"]:
        loop = xyz(lp["coords"])
        assert len(lp["samples"]) == 3, lp["cdr"]
        for s in lp["samples"]:
            sample = xyz(s["coords"])
            assert s["closure_rmsd"] < 0.5, (lp["cdr"], s["closure_rmsd"])
            assert np.linalg.norm(sample[0, 0] - loop[0, 0]) < 0.5, lp["cdr"]  # bonded to the same N-stem
            assert np.linalg.norm(sample[-1, 2] - loop[-1, 2]) < 1.5, lp["cdr"]  # and to the same C-stem
            assert np.isfinite(np.array(s["phi"], dtype=float)).all()
        if lp["samples"][0]["template"] == lp["template"]:  # the written conformation itself, placed alike
            first = xyz(lp["samples"][0]["coords"])
            assert np.sqrt(((first - loop) ** 2).sum(-1).mean()) < 1.0, lp["cdr"]


def test_api_loops_are_the_fv_s_own_coordinates_not_the_rounded_json(lf):
    pred = lf.predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL)
    chains = {ch.chain_id: ch for ch in pred.fv.chains}
    for loop, lp in zip(pred.loops, pred.record["loops"], strict=True):
        ch = chains[loop.chain]
        rows = [int(np.nonzero(ch.index == loop.start + j)[0][0]) for j in range(len(loop.sequence))]
        assert np.array_equal(loop.coords, ch.coords[rows]), loop.cdr  # exact: no JSON round trip
        assert np.allclose(loop.coords[:, 1], np.array(lp["coords"]["CA"]), atol=5e-4)
        assert not np.array_equal(loop.coords[:, 1], np.array(lp["coords"]["CA"]))  # the JSON is rounded
        assert np.allclose(loop.phi[1:], np.array(lp["phi"][1:], dtype=float), atol=0.051)


def test_data_frameworks_builds_a_library_and_leaves_excluded_antibodies_out(tmp_path, shared_data):
    """``loopfold data frameworks`` on six real Fvs: every file is an entry or counted as left out, an
    id on the exclusion list is left out, and the library loads and builds an Fv."""
    db = shared_data / "rosetta_antibody_db/antibody/antibody_database"
    files = sorted(db.glob("pdb*_chothia.pdb.bz2"))[:6]
    if len(files) < 6:
        pytest.skip(f"{db}: fewer than 6 structures")
    src = tmp_path / "structures"
    src.mkdir()
    for f in files:  # a temporary copy of six structures: the command reads a whole folder
        (src / f.name).write_bytes(f.read_bytes())
    gone = files[0].name[3:7]
    (tmp_path / "exclude.txt").write_text(f"{gone}\n")
    r = runner.invoke(app, ["data", "frameworks", str(src), "--out", str(tmp_path / "lib.npz"), "--json",
                            "--exclude-ids", str(tmp_path / "exclude.txt"), "--workers", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    lib = load_library(tmp_path / "lib.npz")
    left_out = sum(report[k] for k in ("unusable", "same_pdb_id", "excluded_id", "no_h3", "recent", "bond_geometry",
                                        "excluded_similar_loop", "duplicate"))  # fmt: skip
    assert report["files"] == 6 and report["excluded_id"] == 1 and report["entries"] + left_out == 6
    assert len(lib.ids) == report["entries"] >= 3 and gone not in {i[:4] for i in lib.ids}
    from loopfold.fv.assemble import FrameworkBuilder
    from loopfold.numbering.anarci import number_sequence

    doms = {c: (s, number_sequence(s, name=f"tz {c}")[0]) for c, s in (("H", TRASTUZUMAB_VH), ("L", TRASTUZUMAB_VL))}
    frame = FrameworkBuilder(lib).frame("tz", doms)  # the new library frames trastuzumab from its entries
    assert {"H", "L"} <= set(frame.templates) and set(frame.templates.values()) <= {str(i) for i in lib.ids}
