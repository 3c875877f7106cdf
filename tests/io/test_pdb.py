import bz2
import gzip

import gemmi
import numpy as np
import pytest

from loopfold.errors import BadStructure, InvalidFile
from loopfold.io.atomic import write_text
from loopfold.io.pdb import read_structure
from tests.conftest import backbones_to_pdb, make_backbone, write_pdb

ATOM = "ATOM  {serial:5d} {name:<4}{alt}{res:>3} {chain}{num:>4}{icode}   {x:8.3f}{y:8.3f}{z:8.3f}{occ:6.2f}{b:6.2f}          {el:>2}\n"  # noqa: E501


def atom_line(serial, name, res, num, x, alt=" ", icode=" ", occ=1.0, chain="H", record="ATOM  "):
    line = ATOM.format(
        serial=serial,
        name=f" {name}",
        alt=alt,
        res=res,
        chain=chain,
        num=num,
        icode=icode,
        x=x,
        y=0.0,
        z=0.0,
        occ=occ,
        b=20.0,
        el=name[0],
    )
    return record + line[6:]


def test_round_trip_plain_gz_bz2_cif(tmp_path):
    bb = make_backbone("ACDEFGHIKLMN", "H", seed=5)
    path = write_pdb(tmp_path / "x.pdb", [bb])
    text = path.read_text()
    (tmp_path / "x.pdb.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "x.pdb.bz2").write_bytes(bz2.compress(text.encode()))
    st = gemmi.read_pdb_string(text)
    st.setup_entities()
    (tmp_path / "x.cif").write_text(st.make_mmcif_document().as_string())
    for name in ("x.pdb", "x.pdb.gz", "x.pdb.bz2", "x.cif"):
        sf = read_structure(tmp_path / name)
        assert sf.chains[0].sequence == "ACDEFGHIKLMN", name
        np.testing.assert_allclose(sf.chains[0].coords, bb.coords, atol=2e-3)


def test_altloc_highest_occupancy_insertion_codes_and_mse(tmp_path):
    lines = []
    s = 1
    for k, (res, num, icode) in enumerate([("GLY", 100, " "), ("MSE", 100, "A"), ("ALA", 101, " ")]):
        for j, name in enumerate(("N", "CA", "C", "O")):
            x = 10.0 * k + j
            if res == "ALA" and name == "CA":
                lines.append(atom_line(s, name, res, num, 50.0, alt="A", occ=0.3))
                lines.append(atom_line(s + 1, name, res, num, x, alt="B", occ=0.7))
                s += 2
                continue
            rec = "HETATM" if res == "MSE" else "ATOM  "
            lines.append(atom_line(s, name, res, num, x, icode=icode, record=rec))
            s += 1
    path = tmp_path / "alt.pdb"
    path.write_text("".join(lines) + "END\n")
    bb = read_structure(path).chains[0]
    assert bb.sequence == "GMA"
    assert bb.residue_ids == ("100", "100A", "101")
    assert bb.coords[2, 1, 0] == pytest.approx(21.0)  # occupancy 0.7 wins over 0.3


def test_missing_atoms_are_nan(tmp_path):
    lines = [atom_line(i + 1, n, "GLY", 1 + i // 4, float(i)) for i, n in enumerate(["N", "CA", "C", "O"] * 2)]
    del lines[5]  # residue 2 CA
    path = tmp_path / "m.pdb"
    path.write_text("".join(lines))
    bb = read_structure(path).chains[0]
    assert np.isnan(bb.coords[1, 1]).all() and bb.missing_atoms().tolist() == [False, True]


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (b"", InvalidFile, "empty"),
        (b"\x00\x01\x02binary", InvalidFile, "binary"),
        (b"hello world\nnot a structure\n", BadStructure, "no model|no protein"),
        (b"HETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00  0.00           O\n", BadStructure, "no"),
    ],
)
def test_bad_files(tmp_path, content, error, match):
    path = tmp_path / "bad.pdb"
    path.write_bytes(content)
    with pytest.raises(error, match=match):
        read_structure(path)


def test_one_residue_and_duplicates(tmp_path):
    one = tmp_path / "one.pdb"
    one.write_text("".join(atom_line(i + 1, n, "GLY", 1, float(i)) for i, n in enumerate(["N", "CA", "C", "O"])))
    with pytest.raises(BadStructure, match="at least two"):
        read_structure(one)
    dup = tmp_path / "dup.pdb"
    body = [atom_line(i + 1, n, "GLY", 1, float(i)) for i, n in enumerate(["N", "CA", "C", "O"])]
    dup.write_text("".join(body * 2 + [atom_line(9, "N", "ALA", 2, 9.0)]))
    with pytest.raises(BadStructure, match="duplicate residue H 1"):
        read_structure(dup)


def test_truncated_bz2(tmp_path):
    path = tmp_path / "t.pdb.bz2"
    path.write_bytes(bz2.compress(b"ATOM" * 100)[:20])
    with pytest.raises(InvalidFile, match="cannot read"):
        read_structure(path)


def test_writer_is_atomic_and_has_remarks(tmp_path):
    bb = make_backbone("ACDE", "H")
    out = tmp_path / "sub" / "o.pdb"
    write_text(out, backbones_to_pdb([bb], remarks=["loopfold 0.1.0 model test"]))
    text = out.read_text()
    assert text.startswith("REMARK 250 loopfold 0.1.0 model test")
    assert text.count(" CA ") == 4
    assert list(out.parent.iterdir()) == [out]


def test_atomic_write_permissions_and_failure(tmp_path):
    import os

    from loopfold.io.atomic import atomic_path, write_text

    write_text(tmp_path / "a.txt", "x")
    assert (os.stat(tmp_path / "a.txt").st_mode & 0o644) == 0o644
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
