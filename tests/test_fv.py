"""Whole-Fv models: framework library, closure, assembly, files, the Python API and the CLI."""

import json
import os
from pathlib import Path

import gemmi
import numpy as np
import pytest
from typer.testing import CliRunner

from loopfold import LoopFold
from loopfold.cli import app
from loopfold.errors import CheckpointError, InvalidFile, LoopfoldError
from loopfold.fv.build import geometry_report
from loopfold.fv.library import FrameworkLibrary, framework_positions, load_library
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
    assert np.nanmax(np.abs(back.coords - coords)) <= 0.005 + 1e-6  # stored at 0.01 Å
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
        np.testing.assert_allclose(x[:3], true[:3])  # stems are the fixed residues
        np.testing.assert_allclose(x[-3:], true[-3:])
        cn = np.linalg.norm(x[1:, 0] - x[:-1, 2], axis=-1)
        assert np.abs(cn - 1.329).max() < 0.05, cn  # every peptide bond, both junctions included
        assert res.anchor_rmsd < 0.1


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
        assert np.all(ch.error > 0) and set(ch.region) == {"FR", *(f"{ch.chain_id}{i}" for i in (1, 2, 3))}
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
        h = st[0]["H"]
        assert h[0].seqid.num == 1 and {a.name for a in h[0]} == {"N", "CA", "C", "O", "CB"}
        b = np.array([a.b_iso for r in h for a in r])
        assert (b > 0).all()
        np.testing.assert_allclose(sorted({round(x, 2) for x in b}), sorted({round(float(x), 2) for x in
                                   trastuzumab.fv.chains[0].error}), atol=0.01)  # fmt: skip
    record = json.loads(trastuzumab.to_json())
    assert record["id"] == "trastuzumab"
    assert len(record["fv"]["chains"][0]["error"]) == len(trastuzumab.fv.chains[0].sequence)
    os.symlink(tmp_path / "t.pdb", tmp_path / "link.pdb")
    with pytest.raises(InvalidFile, match="not a regular file"):
        trastuzumab.save(tmp_path / "link.pdb")


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
    assert got[1][1] and got[1][0].fv is None and "bad" in got[1][1]
    with pytest.raises(LoopfoldError):
        lf.predict(heavy="NOTANANTIBODY")


def test_cli_writes_the_fv_and_rounded_json(tmp_path):
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--light", TRASTUZUMAB_VL, "--pdb-dir",
                            str(tmp_path / "pdb"), "--format", "cif", "--json", str(tmp_path / "o.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    st = gemmi.read_structure(str(tmp_path / "pdb" / "query.cif"))
    assert [c.name for c in st[0]] == ["H", "L"]
    text = (tmp_path / "o.json").read_text()
    decimals = [len(x.split(".")[1]) for x in __import__("re").findall(r"-?\d+\.\d+(?:e-?\d+)?", text)]
    assert max(decimals) <= 3  # coordinates 0.001 Å, angles 0.1°, probabilities 0.001
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


def test_refine_adds_side_chains_keeps_numbering_and_errors_and_clears_clashes(lf, tmp_path):
    pytest.importorskip("openmm")
    from loopfold.fv.refine import closest_heavy_pair

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
    for rid, err in zip(p.fv.chains[0].residue_ids, p.fv.chains[0].error, strict=True):
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
