"""Bad input ends in one line naming the input and the problem; odd-but-valid input works."""

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from loopfold.cli import app
from loopfold.pipeline.predictor import SHIPPED
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL, backbones_to_pdb, make_backbone, write_pdb
from tests.data.test_extract_split import rec

runner = CliRunner()
LOOPFOLD = str(Path(sys.executable).with_name("loopfold"))


def one_line_error(r, *parts):
    lines = r.output.strip().splitlines()
    return r.exit_code == 2 and len(lines) == 1 and all(p in lines[0] for p in parts)


def test_fasta_with_byte_order_mark_and_a_very_long_name(tmp_path):
    fa = tmp_path / "bom.fasta"
    name = "x" * 300
    fa.write_bytes(b"\xef\xbb\xbf" + f">{name}|H\n{TRASTUZUMAB_VH}\n".encode())
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--pdb-dir", str(tmp_path / "p"), "--jsonl",
                            str(tmp_path / "o.jsonl")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o.jsonl").read_text())["id"] == name
    (pdb,) = (tmp_path / "p").iterdir()
    assert len(pdb.name) <= 104 and pdb.name.startswith("x" * 90)


def test_standard_output_that_cannot_be_written():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([LOOPFOLD, "predict", "--loop", "ARDYYGSSYFDY"], stdout=full, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert proc.returncode == 2 and "standard output: No space left on device" in proc.stderr


def test_model_folder_with_a_bad_training_list(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SHIPPED, run)
    (run / "training_loops.csv").write_text("foo,bar\n1,2\n")
    r = runner.invoke(app, ["predict", "--loop", "ARDYYGSSYFDY", "--model", str(run)])
    assert one_line_error(r, "training_loops.csv", "not a training-loop list")


def test_window_too_long_names_the_record(tmp_path):
    fa = tmp_path / "long.fasta"
    fa.write_text(f">longh3|H\n{TRASTUZUMAB_VH.replace('WGGDGFYAMDY', 'A' * 40)}\n")
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--on-error", "fail"])
    assert one_line_error(r, "longh3 heavy: H3: window of 48 residues")


def test_split_output_that_is_a_file_binary_exclusions_and_empty_parts(tmp_path):
    from loopfold.data.store import write_dataset

    ds = tmp_path / "three.parquet"
    write_dataset(ds, [rec(0, "ACDEFGHIKL"), rec(1, "WWWWWYYYYY"), rec(2, "PPPPPGGGGG")])
    (tmp_path / "afile").write_text("keep")
    r = runner.invoke(app, ["data", "split", str(ds), "--out", str(tmp_path / "afile")])
    assert one_line_error(r, "--out", "exists and is not a folder") and (tmp_path / "afile").read_text() == "keep"
    (tmp_path / "ids.bin").write_bytes(bytes(range(256)))
    r = runner.invoke(app, ["data", "split", str(ds), "--exclude-ids", str(tmp_path / "ids.bin"), "--out",
                            str(tmp_path / "s1")])  # fmt: skip
    assert one_line_error(r, "ids.bin", "not a text list of PDB ids")
    r = runner.invoke(app, ["data", "split", str(ds), "--out", str(tmp_path / "s2"), "--json"])
    assert r.exit_code == 0 and "warning: part 'test' is empty (3 loops)" in r.output


def test_seed_pickles_with_object_or_empty_arrays(tmp_path):
    obj = np.empty((2, 31, 21), dtype=object)
    obj[:] = 1
    t = np.zeros((2, 124), np.float32)
    (tmp_path / "obj.pickle").write_bytes(pickle.dumps((obj, t, obj, t, obj, t)))
    r = runner.invoke(app, ["data", "build", str(tmp_path / "obj.pickle"), "--out", str(tmp_path / "o.parquet")])
    assert one_line_error(r, "obj.pickle", "dtype object refused") and not (tmp_path / "o.parquet").exists()
    z, zt = np.zeros(0, bool), np.zeros(0, np.float32)
    (tmp_path / "zero.pickle").write_bytes(pickle.dumps((z, zt, z, zt, z, zt)))
    r = runner.invoke(app, ["data", "build", str(tmp_path / "zero.pickle"), "--out", str(tmp_path / "z.parquet")])
    assert one_line_error(r, "zero.pickle", "no loops found")


def test_structure_messages_name_file_chain_and_cdr(tmp_path):
    heavy_only = write_pdb(tmp_path / "heavy.pdb", [make_backbone(TRASTUZUMAB_VH, "H")])
    r = runner.invoke(app, ["predict", "--structure", str(heavy_only), "--loops", "L1"])
    assert one_line_error(r, "heavy.pdb", "requested loops not found: L1", "chain types in the file: H")
    text = backbones_to_pdb([make_backbone(TRASTUZUMAB_VH, "H"), make_backbone(TRASTUZUMAB_VL, "L")])
    pos = TRASTUZUMAB_VH.index("WGGDG") + 3  # a residue of H3, made unknown (UNK -> X)
    lines = [line[:17] + "UNK" + line[20:] if line.startswith("ATOM") and line[21] == "H" and int(line[22:26]) == pos
             else line for line in text.splitlines()]  # fmt: skip
    (tmp_path / "x.pdb").write_text("\n".join(lines) + "\n")
    r = runner.invoke(app, ["predict", "--structure", str(tmp_path / "x.pdb"), "--loops", "H3,L3", "--json",
                            str(tmp_path / "r.json")])  # fmt: skip
    assert r.exit_code == 0 and f"chain H H3 not replaced: non-standard residue at {pos}" in r.output
    res = json.loads((tmp_path / "r.json").read_text())["results"][0]
    assert [lp["cdr"] for lp in res["loops"]] == ["L3"] and res["missing"][0]["cdr"] == "H3"


class _HugeShape:
    """Pickles as a small boolean array that claims a 10^9-row shape."""

    def __init__(self, arr):
        self.arr = arr

    def __reduce__(self):
        f, args, state = self.arr.__reduce__()
        return f, args, (state[0], (10**9, *self.arr.shape[1:]), *state[2:])


def test_seed_pickle_claiming_a_huge_shape_is_refused_without_allocating(tmp_path):
    a, t = np.zeros((1, 31, 21), bool), np.zeros((1, 124), np.float32)
    (tmp_path / "huge.pickle").write_bytes(pickle.dumps((_HugeShape(a), t, a, t, a, t)))
    proc = subprocess.run([LOOPFOLD, "data", "build", str(tmp_path / "huge.pickle"), "--out", str(tmp_path / "h.pq")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "huge.pickle: not a readable seed pickle" in proc.stderr


def test_parquet_that_is_not_a_loop_dataset(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1]}).replace_schema_metadata({b"foo": b"bar"}), tmp_path / "f.parquet")
    r = runner.invoke(app, ["data", "info", str(tmp_path / "f.parquet")])
    assert one_line_error(r, "f.parquet", "not a loopfold dataset")


def test_a_record_too_long_to_number_is_reported_and_the_batch_goes_on(tmp_path):
    fa = tmp_path / "in.fasta"
    fa.write_text(f">ok|H\n{TRASTUZUMAB_VH}\n>big|H\n{'A' * 12000}\n>ok2|H\n{TRASTUZUMAB_VH}\n")
    out = tmp_path / "o.jsonl"
    r = runner.invoke(app, ["predict", "--fasta", str(fa), "--jsonl", str(out)])
    res = [json.loads(x) for x in out.read_text().splitlines()]
    assert r.exit_code == 3 and [x["id"] for x in res] == ["ok", "big", "ok2"]
    assert "cannot be numbered" in res[1]["error"]


def test_corrupt_coordinates_in_mmcif_and_non_finite_ones_in_pdb(tmp_path):
    import gemmi

    st = gemmi.read_pdb_string(backbones_to_pdb([make_backbone(TRASTUZUMAB_VH, "H")]))
    st.setup_entities()
    cif = st.make_mmcif_document().as_string().splitlines()
    k = next(i for i, line in enumerate(cif) if line.startswith("ATOM"))
    fields = cif[k].split()
    fields[10] = "abc.de"  # Cartn_x in gemmi's _atom_site loop
    cif[k] = " ".join(fields)
    (tmp_path / "bad.cif").write_text("\n".join(cif) + "\n")
    r = runner.invoke(app, ["predict", "--structure", str(tmp_path / "bad.cif")])
    assert one_line_error(r, "bad.cif", "coordinates are not numbers")
    pdb = backbones_to_pdb([make_backbone(TRASTUZUMAB_VH, "H")]).splitlines()
    k = next(i for i, line in enumerate(pdb) if line.startswith("ATOM"))
    pdb[k] = pdb[k][:30] + "     nan" + pdb[k][38:]
    (tmp_path / "nan.pdb").write_text("\n".join(pdb) + "\n")
    r = runner.invoke(app, ["predict", "--structure", str(tmp_path / "nan.pdb")])
    assert one_line_error(r, "nan.pdb", f"line {k + 1}: coordinate 'nan' is not a number")


def test_run_config_info_that_is_not_an_object(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SHIPPED, run)
    doc = json.loads((run / "config.json").read_text())
    for info, message in ((None, "info must be a JSON object, got null"),
                          ({"stems": 3, "default_stems": {"H3": ["Y1C", "WGQ"]}}, "default_stems 'H3'")):  # fmt: skip
        doc["info"] = info
        (run / "config.json").write_text(json.dumps(doc))
        r = runner.invoke(app, ["predict", "--loop", "ARDYYGSSYFDY", "--model", str(run)])
        assert one_line_error(r, "config.json", message), r.output
