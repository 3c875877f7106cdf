"""The geometry check of written whole-Fv models: JSON ``fv.geometry``, stderr warnings, notes and
predicted errors where a model is broken (issue 19)."""

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from loopfold import LoopFold
from loopfold.cli import app
from loopfold.fv.checks import checked
from loopfold.structure.validate import peptide_omegas
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL
from tests.test_fv import VHH

runner = CliRunner()
#: trastuzumab's VH with seven residues inserted in FR3 (as VRC03 has): no framework template holds them
FR3_INSERT = TRASTUZUMAB_VH.replace("RFTISADTS", "RFTISADTSGSGSGSG")


@pytest.fixture(scope="module")
def lf():
    return LoopFold()


def test_a_clean_model_passes_with_planar_bonds_and_l_residues(lf):
    p = lf.predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL)
    geo = p.fv.geometry
    assert geo.passed and geo.d_residues == () and geo.cis_nonpro == () and geo.twisted == ()
    j = p.record["fv"]["geometry"]
    assert j["passed"] and j["d_residues"] == 0 and j["chain_gaps"] == 0 and j["clashes"] == 0
    assert j["problems"] == [] and j["residues"] == sum(len(c.sequence) for c in p.fv.chains)
    for ch in p.fv.chains:
        om = np.abs(peptide_omegas(ch.coords))
        pro = np.array([a == "P" for a in ch.sequence[1:]])
        assert (om[~pro] >= 150).all()  # cis only before a proline


def test_an_fr3_insertion_is_flagged_and_never_called_closed(lf, tmp_path):
    p = lf.predict(heavy=FR3_INSERT, light=TRASTUZUMAB_VL, name="vrc03like")
    geo = p.record["fv"]["geometry"]
    assert not geo["passed"] and geo["clashes"] > 0 and geo["problems"]
    built = [n for n in p.fv.notes if "G83" in n]  # the inserted stretch (IMGT 83A-83G)
    assert built and all(", closed" not in n and "NOT closed (geometry check" in n for n in built), p.fv.notes
    r = runner.invoke(app, ["predict", "--heavy", FR3_INSERT, "--light", TRASTUZUMAB_VL, "--name", "vrc03like",
                            "--json", str(tmp_path / "o.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    warn = [line for line in r.output.splitlines() if "fails the geometry check" in line]
    assert len(warn) == 1 and warn[0].startswith("warning: vrc03like: ") and "heavy-atom pair" in warn[0]
    assert json.loads((tmp_path / "o.json").read_text())["results"][0]["fv"]["geometry"]["passed"] is False


def test_a_chain_gap_is_flagged_named_noted_and_raises_the_predicted_error(lf):
    p = lf.predict(heavy=VHH, name="vhh")
    ch = p.fv.chains[0]
    k = list(ch.residue_ids).index("23")  # Cys23: move everything before it 10.8 Å away
    xyz = ch.coords.copy()
    xyz[:k] += np.array([10.8, 0.0, 0.0])
    broken = checked(replace(p.fv, chains=(replace(ch, coords=xyz, cb=ch.cb + np.where(np.arange(len(xyz))[:, None]
                                                                                      < k, 10.8, 0.0) * [1, 0, 0]),)))
    geo = broken.geometry
    assert len(geo.gaps) == 1 and geo.gaps[0].startswith(f"H {ch.sequence[k - 1]}{ch.residue_ids[k - 1]}-C23")
    assert not geo.passed and "chain gap" in geo.problems()[0]
    assert any("chain break" in n and "not closed" in n for n in broken.notes)
    d = float(geo.gaps[0].split()[2])
    err = broken.chains[0].error_frame
    assert err[k] >= (d - 1.329) / 2 - 0.01 and err[k - 1] >= (d - 1.329) / 2 - 0.01
    assert err[k] > ch.error_frame[k] and np.allclose(err[k + 3 :], ch.error_frame[k + 3 :])


def test_name_sets_the_id_and_file_name_of_a_single_query(tmp_path):
    r = runner.invoke(app, ["predict", "--heavy", VHH, "--name", "nb1", "--pdb-dir", str(tmp_path / "p"),
                            "--json", str(tmp_path / "o.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p" / "nb1.pdb").is_file() and not (tmp_path / "p" / "query.pdb").exists()
    assert json.loads((tmp_path / "o.json").read_text())["results"][0]["id"] == "nb1"
    fa = tmp_path / "a.fasta"
    fa.write_text(f">x\n{VHH}\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--name", "nb1"])
    assert r.exit_code == 2 and "--name goes with a single" in r.output


@pytest.mark.parametrize("entry", ["4G6M", "3V6Z", "5O14"])
def test_template_cis_bonds_before_non_prolines_are_not_copied(lf, entry, shared_data):
    """Docking-benchmark antibodies whose framework or loop templates have a cis peptide bond where
    the query has no proline (L T8, L Y114, L L114 in 0.3's models): written all trans there."""
    from loopfold.io.pdb import read_structure
    from loopfold.numbering.anarci import number_sequences

    path = shared_data / "docking_benchmark_5_5" / "pdbs" / f"{entry}_r_b.pdb"
    chains = read_structure(path).chains
    doms = number_sequences([(c.chain_id, c.sequence) for c in chains], workers=1)
    seq = {d[0].chain_type: c.sequence for c, d in zip(chains, doms, strict=True) if isinstance(d, list) and d}
    p = lf.predict(heavy=seq["H"], light=seq["L"], name=entry)
    geo = p.fv.geometry
    assert geo.cis_nonpro == () and geo.twisted == () and geo.d_residues == () and geo.gaps == ()


def test_mmcif_reads_the_same_in_gemmi_and_biotite_as_the_pdb(lf, tmp_path):
    import gemmi

    pdbx = pytest.importorskip("biotite.structure.io.pdbx")
    p = lf.predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL, name="tz")
    p.save(tmp_path / "tz.pdb")
    p.save(tmp_path / "tz.cif")
    text = (tmp_path / "tz.cif").read_text()
    assert text.startswith("data_tz\n")
    pdb, cif = gemmi.read_structure(str(tmp_path / "tz.pdb")), gemmi.read_structure(str(tmp_path / "tz.cif"))

    def residues(st):  # noqa: ANN001, ANN202
        return [(c.name, f"{r.seqid.num}{r.seqid.icode.strip()}", r.name) for c in st[0] for r in c]

    assert residues(cif) == residues(pdb)
    block = gemmi.cif.read_string(text).sole_block()
    assert "." not in block.find_values("_atom_site.label_seq_id")
    assert sorted(set(block.find_values("_atom_site.label_asym_id"))) == ["H", "L"]
    seqs = [gemmi.cif.as_string(v).replace(" ", "").replace("\n", "") for v in
            block.find_values("_entity_poly.pdbx_seq_one_letter_code")]  # fmt: skip
    assert sorted(seqs) == sorted(c.sequence for c in p.fv.chains)
    xs = block.find_values("_atom_site.Cartn_x")
    assert max(len(x.split(".")[1]) for x in xs if "." in x) <= 3
    arr = pdbx.get_structure(pdbx.CIFFile.read(str(tmp_path / "tz.cif")), model=1, use_author_fields=True)
    got = sorted({(str(c), f"{int(r)}{i.strip()}", n) for c, r, i, n in zip(arr.chain_id, arr.res_id, arr.ins_code,
                                                                        arr.res_name, strict=True)})  # fmt: skip
    assert got == sorted(set(residues(pdb)))
    arr = pdbx.get_structure(pdbx.CIFFile.read(str(tmp_path / "tz.cif")), model=1, use_author_fields=False)
    assert sorted(set(arr.chain_id)) == ["H", "L"] and arr.res_id.min() >= 1  # label_seq_id: 1, 2, ... per chain


def test_structure_output_has_cb_on_new_loops_one_b_factor_meaning_and_contacts(tmp_path, fab_pdb):
    import gemmi

    from loopfold.pipeline.graft import error_b_factor

    out = tmp_path / "out"
    r = runner.invoke(app, ["predict", "--structure", str(fab_pdb), "--loops", "H3", "--pdb-dir", str(out),
                            "--json", str(tmp_path / "s.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "s.json").read_text())["results"][0]
    lp = res["loops"][0]
    text = (out / "fab.pdb").read_text()
    assert "REMARK 250 B-factor (A^2): the input's for kept atoms" in text and text.count("REMARK 250 B-factor") == 1
    st = gemmi.read_pdb_string(text)
    chain = st[0][lp["chain_id"]]
    new = [chain[rid][0] for rid in lp["file_residue_ids"]]
    assert all(("CB" in {a.name for a in r}) == (r.name != "GLY") for r in new)  # CB on every new non-Gly residue
    for r, e in zip(new, lp["error"], strict=True):
        assert r[0].b_iso == pytest.approx(error_b_factor(e), abs=0.01)
    assert set(res["new_loop_contacts"]) == {"pairs_under_2.2", "closest"} and res["new_loop_contacts"]["closest"] > 0


@pytest.mark.slow
def test_refinement_keeps_every_residue_l_and_every_bond_planar(lf):
    pytest.importorskip("openmm")
    from loopfold.io.model_check import check_text

    for name, heavy, light in (("vhh", VHH, None), ("vh", TRASTUZUMAB_VH, None), ("vl", None, TRASTUZUMAB_VL)):
        ref = lf.predict(heavy=heavy, light=light, name=name).refined()
        assert ref.refined and ref.reason is None, ref.reason
        geo = check_text(ref.text)
        assert geo.d_residues == () and geo.cis_nonpro == () and geo.twisted == (), geo.problems()
        assert "refined: side chains by PDBFixer" in ref.text and ref.text.count("REMARK 250 refined") == 1


@pytest.mark.slow
def test_a_refinement_that_inverts_a_residue_is_undone(lf, monkeypatch):
    import gemmi

    import loopfold.fv.refine as refine

    p = lf.predict(heavy=VHH, name="vhh")

    def inverted(text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - a "refinement" that mirrors a CB
        st = gemmi.read_pdb_string(text)
        res = st[0]["H"]["23"][0]
        ca, cb = res["CA"][0].pos, res["CB"][0].pos
        res["CB"][0].pos = ca + (ca - cb)
        return st.make_pdb_string()

    monkeypatch.setattr(refine, "refine_pdb", inverted)
    ref = p.refined()
    assert not ref.refined and "D-residue H C23" in ref.reason
    assert ref.text.startswith("REMARK 250 refinement undone: it made D-residue H C23")
    assert ref.geometry.passed and "CB" in ref.text  # the unrefined model, as checked


@pytest.mark.slow
def test_structure_refine_moves_only_the_new_loops_and_keeps_the_crystal_atoms(tmp_path, shared_data):
    pytest.importorskip("openmm")
    import gemmi

    src = shared_data / "docking_benchmark_5_5" / "pdbs" / "1AHW_r_u.pdb"
    r = runner.invoke(app, ["predict", "--structure", str(src), "--loops", "H3", "--refine", "--pdb-dir",
                            str(tmp_path / "o"), "--json", str(tmp_path / "s.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "s.json").read_text())["results"][0]
    (lp,) = res["loops"]
    moved = {(lp["chain_id"], rid) for rid in lp["file_residue_ids"] + lp["file_flank_ids"]}
    before, after = gemmi.read_structure(str(src)), gemmi.read_structure(str(tmp_path / "o" / "1AHW_r_u.pdb"))

    def atoms(st):  # noqa: ANN001, ANN202
        return {(c.name, f"{r.seqid.num}{r.seqid.icode.strip()}", a.name, a.altloc): (a.pos.tolist(), a.b_iso)
                for c in st[0] for r in c for a in r if not a.is_hydrogen()}  # fmt: skip

    a0, a1 = atoms(before), atoms(after)
    kept = [k for k in a0 if (k[0], k[1]) not in moved and k in a1]
    assert len(kept) > 0.9 * len(a0)
    same = sum(np.allclose(a0[k][0], a1[k][0], atol=1e-3) and a0[k][1] == pytest.approx(a1[k][1]) for k in kept)
    assert same >= 0.97 * len(kept)  # the crystal's atoms and B-factors as read (residues it completed aside)
    new = [k for k in a1 if (k[0], k[1]) in {(lp["chain_id"], rid) for rid in lp["file_residue_ids"]}]
    assert {k[2] for k in new} > {"N", "CA", "C", "O", "CB"}  # side chains built on the new loop
    assert res["geometry"]["d_residues"] == 0 and res["geometry"]["cis_nonpro"] == 0
    assert "new_loop_contacts" in res and "REMARK 250 refined" in (tmp_path / "o" / "1AHW_r_u.pdb").read_text()
