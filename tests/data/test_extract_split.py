import numpy as np
import pandas as pd
import pytest

from loopfold.data.build import build_dataset
from loopfold.data.extract import ExtractOptions, extract_file
from loopfold.data.identity import identity_matrix
from loopfold.data.info import dataset_info
from loopfold.data.records import LoopRecord
from loopfold.data.recut import recut_sequences
from loopfold.data.splits import Exclusions, leakage_report, make_split
from loopfold.data.store import read_dataset, write_dataset
from loopfold.errors import InvalidFile
from tests.conftest import TRASTUZUMAB_VH, make_backbone, write_pdb


def test_extract_numbers_from_sequence(fab_pdb):
    res = extract_file(str(fab_pdb), ExtractOptions(definition="north", stems=3))
    assert res.error is None
    by = {r.cdr: r for r in res.records}
    assert sorted(by) == ["H1", "H2", "H3", "L1", "L2", "L3"]
    h3 = by["H3"]
    assert h3.sequence == "SRWGGDGFYAMDY" and h3.stem_n == "YYC" and h3.stem_c == "WGQ"
    assert h3.chain == "A" and h3.chain_type == "H" and h3.loop_start == TRASTUZUMAB_VH.index("SRWGG")
    assert h3.coords.shape == (19, 4, 3) and len(h3.phi) == 19
    assert np.isfinite(h3.phi).all() and not h3.has_chain_break


def test_extract_trusts_chothia_file_numbering(tmp_path):
    ids = [str(i) for i in range(88, 101)] + ["100A", "100B", "100C"] + [str(i) for i in range(101, 107)]
    seq = "AVYYCSRWGGDGFYAMDYWGQG"
    assert len(seq) == len(ids)
    path = write_pdb(tmp_path / "pdb1abc_chothia.pdb", [make_backbone(seq, "H", ids)])
    res = extract_file(str(path), ExtractOptions(definition="chothia", stems=2, numbering="auto", source="rosetta"))
    assert [r.cdr for r in res.records] == ["H3"]
    assert res.records[0].sequence == seq[ids.index("95") : ids.index("102") + 1]
    assert res.records[0].pdb_id == "1abc"


def test_default_build_numbers_sequences_as_predict_does(tmp_path):
    # a file named like the Rosetta database but numbered 1..N: trusted file numbers would find no
    # conserved Cys22 and skip the chain; the default numbers the sequence (the path predict uses)
    path = write_pdb(tmp_path / "pdb9xyz_chothia.pdb", [make_backbone(TRASTUZUMAB_VH, "H")])
    assert [r.sequence for r in extract_file(str(path), ExtractOptions()).records if r.cdr == "H3"] == [
        "SRWGGDGFYAMDY"
    ]
    assert not extract_file(str(path), ExtractOptions(numbering="auto")).records


def test_extract_flags_break_and_skips_non_antibody(tmp_path):
    heavy = make_backbone(TRASTUZUMAB_VH, "H", seed=3)
    coords = heavy.coords.copy()
    i = TRASTUZUMAB_VH.index("GFYAM")
    coords[i:] += [4.0, 0, 0]
    heavy = type(heavy)(heavy.sequence, coords, heavy.residue_ids, "H")
    other = make_backbone("KVFGRCELAAAMKRHGLDNYRGYSLGNWVCAAKFESNFNTQATNRNTDGSTDY", "X")
    res = extract_file(str(write_pdb(tmp_path / "b.pdb", [heavy, other])), ExtractOptions())
    h3 = next(r for r in res.records if r.cdr == "H3")
    assert h3.has_chain_break and not next(r for r in res.records if r.cdr == "H1").has_chain_break
    assert any("no antibody variable domain found" in why for _, why in res.skipped)


def test_build_folder_skips_bad_files_with_reasons(tmp_path, fab_pdb):
    folder = fab_pdb.parent
    (folder / "empty.pdb").write_text("")
    (folder / "junk.cif").write_bytes(b"\x00\xff" * 10)
    (folder / "ünïcode.pdb").write_text("nothing here\n")
    (folder / "notes.txt").write_text("ignored")
    recs, report = build_dataset(folder, workers=2)
    assert len(recs) == 6 and report.files_read == 4 and len(report.files_failed) == 3
    assert report.skipped["unusable file: empty file"] == 1
    with pytest.raises(InvalidFile, match="empty.pdb: empty file"):
        build_dataset(folder, strict=True)


def rec(i, seq, cdr="H3", pdb=None, date=None):
    return LoopRecord(
        f"t:{i}",
        "t",
        pdb,
        "H",
        cdr[0],
        cdr,
        "north",
        seq,
        "",
        "",
        [np.nan] * len(seq),
        [0.0] * len(seq),
        [180.0] * len(seq),
        date=date,
    )


def random_family(rng, n_fam=30, per=5):
    seqs = []
    for _ in range(n_fam):
        base = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 12))
        for _ in range(per):
            s = list(base)
            s[rng.integers(12)] = rng.choice(list("ACDEFGHIKLMNPQRSTVWY"))
            seqs.append("".join(s))
    return seqs


def test_store_round_trip_and_info(tmp_path):
    recs = [rec(0, "ACDE", pdb="1abc"), rec(1, "ACDE"), rec(2, "FGHIK", cdr="L3")]
    recs[0].coords = np.arange(48.0).reshape(4, 4, 3)
    write_dataset(tmp_path / "d.parquet", recs)
    df = read_dataset(tmp_path / "d.parquet")
    assert df["coords"][0].shape == (4, 4, 3) and df["coords"][1] is None
    assert np.isnan(df["phi"][0]).all()
    info = dataset_info(df)
    assert info["n_loops"] == 3 and info["n_unique_sequences"] == 2 and info["by_cdr"] == {"H3": 2, "L3": 1}
    (tmp_path / "bad.parquet").write_text("nope")
    with pytest.raises(InvalidFile, match="not a loopfold dataset"):
        read_dataset(tmp_path / "bad.parquet")


def test_cluster_split_keeps_similar_loops_apart():
    rng = np.random.default_rng(0)
    seqs = random_family(rng)
    df = pd.DataFrame([rec(i, s).to_row() for i, s in enumerate(seqs)])
    split = make_split(df, "cluster", 0.7, (0.7, 0.2, 0.1), seed=1)
    report = leakage_report(df, split)
    assert report["max_test_train_identity"] < 0.7
    assert report["sizes"]["test"] > 0 and report["sizes"]["validation"] > 0
    for _, g in split.groupby("cluster"):
        assert g["part"].nunique() == 1
    rnd = make_split(df, "random", 0.7, (0.7, 0.2, 0.1), seed=1)
    assert leakage_report(df, rnd)["max_test_train_identity"] >= 0.9  # the leak a random split makes


def test_exclusions_by_id_and_identity():
    df = pd.DataFrame(
        [
            rec(0, "ACDEFGHIKL", pdb="1abc").to_row(),
            rec(1, "ACDEFGHIKM").to_row(),
            rec(2, "WWWWWYYYYY").to_row(),
            rec(3, "PPPPPGGGGG").to_row(),
        ]
    )
    excl = Exclusions(frozenset({"1abc"}), {("north", "H3"): ["PPPPPGGGGA"]})
    split = make_split(df, "cluster", 0.7, (0.7, 0.2, 0.1), 0, excl)
    assert split["part"].tolist()[0] == "excluded" and split["part"].tolist()[3] == "excluded"
    assert split["part"].tolist()[2] != "excluded"
    # row 1 is 90% identical to row 0, whose PDB id is excluded: a benchmark loop in this dataset
    assert split["part"].tolist()[1] == "excluded"


def test_exclusions_compare_loops_under_the_benchmark_definition():
    from dataclasses import replace

    from tests.conftest import TRASTUZUMAB_VH

    north_h1 = "AASGFNIKDTYIH"  # trastuzumab's North H1 holds its IMGT H1 GFNIKDTY plus five residues
    start = TRASTUZUMAB_VH.index(north_h1)
    with_chain = replace(rec(0, north_h1, cdr="H1"), chain_sequence=TRASTUZUMAB_VH, loop_start=start)
    rows = [with_chain, rec(1, north_h1, cdr="H1"), rec(2, "WWWWWYYYYYYYY", "H1")]
    df = pd.DataFrame([r.to_row() for r in rows])
    assert identity_matrix([north_h1], ["GFNIKDTY"])[0, 0] < 0.7  # compared across definitions it would pass
    excl = Exclusions(frozenset(), {("imgt", "H1"): ["GFNIKDTY"]})
    split = make_split(df, "cluster", 0.7, (0.7, 0.2, 0.1), 0, excl)
    # row 0 is re-cut under IMGT from its chain; row 1 (no chain) by containment; row 2 is unrelated
    assert split["part"].tolist()[:2] == ["excluded", "excluded"] and split["part"].tolist()[2] != "excluded"
    assert recut_sequences(df, "imgt")[:2] == ["GFNIKDTY", None]
    # a reference cut elsewhere: inside the North loop (containment would exclude) but 50% identical
    # to the IMGT H1; the row with a chain is judged on its re-cut loop and kept
    excl = Exclusions(frozenset(), {("imgt", "H1"): ["ASGFNIKD"]})
    parts = make_split(df, "cluster", 0.7, (0.7, 0.2, 0.1), 0, excl)["part"].tolist()
    assert parts[0] != "excluded" and parts[1] == "excluded"


def test_date_split_puts_newest_in_test():
    df = pd.DataFrame(
        [
            rec(i, s, date=f"20{10 + i % 10:02d}-01-01").to_row()
            for i, s in enumerate(random_family(np.random.default_rng(2), 10, 2))
        ]
    )
    split = make_split(df, "date", 0.7, (0.6, 0.2, 0.2), 0)
    dates = df["date"].to_numpy()
    test_min = dates[split["part"] == "test"].min()
    assert (dates[split["part"] == "train"] <= test_min).all()
    assert leakage_report(df, split)["max_test_train_identity"] < 0.7


def test_bad_fractions():
    df = pd.DataFrame([rec(0, "ACDE").to_row()])
    with pytest.raises(ValueError, match="summing to 1"):
        make_split(df, fractions=(0.5, 0.2, 0.1))


def test_merge_datasets(tmp_path):
    from loopfold.data.store import merge_datasets

    write_dataset(tmp_path / "a.parquet", [rec(0, "ACDE"), rec(1, "FGHI")])
    write_dataset(tmp_path / "b.parquet", [rec(2, "KLMN", cdr="L3")])
    assert merge_datasets([tmp_path / "a.parquet", tmp_path / "b.parquet"], tmp_path / "m.parquet")[0] == 3
    assert read_dataset(tmp_path / "m.parquet")["cdr"].tolist() == ["H3", "H3", "L3"]
    with pytest.raises(InvalidFile, match="appears in more than one input"):
        merge_datasets([tmp_path / "a.parquet", tmp_path / "a.parquet"], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
