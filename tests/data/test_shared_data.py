"""Checks on the real shared data; skipped when ../shared/data is absent."""

import numpy as np

from loopfold.data.build import build_dataset
from loopfold.data.extract import ExtractOptions, extract_file


def test_seed_pickle_counts(shared_data):
    recs, _ = build_dataset(shared_data / "seed" / "pdb_martin_02.pickle")
    assert len(recs) == 2873
    assert len({r.window for r in recs}) == 952  # the README's distinct sequences
    assert all(np.isnan(r.phi[0]) and np.isnan(r.psi[-1]) for r in recs)


def test_rosetta_file_matches_cdr_info(shared_data):
    path = shared_data / "rosetta_antibody_db/antibody/antibody_database/pdb12e8_chothia.pdb.bz2"
    res = extract_file(str(path), ExtractOptions(definition="chothia", stems=3, source="rosetta"))
    by = {r.cdr: r.sequence for r in res.records}
    # cdr_info: L1 KASQNVGTAVA, L3 QQYSSYPLT, H3 GHDYDRGRFPY (Chothia H3 95-102)
    assert by["L1"] == "KASQNVGTAVA" and by["L3"] == "QQYSSYPLT" and by["H3"] == "GHDYDRGRFPY"


def test_docking_benchmark_numbered_from_sequence(shared_data):
    path = shared_data / "docking_benchmark_5_5/pdbs/1AHW_r_u.pdb"
    res = extract_file(str(path), ExtractOptions(source="docking"))
    assert sorted(r.cdr for r in res.records) == ["H1", "H2", "H3", "L1", "L2", "L3"]


def test_pyigclassify_and_rab(shared_data):
    recs, skipped = build_dataset(shared_data / "pyigclassify/database/csv")
    assert len(recs) > 12000 and {r.cdr for r in recs} == {"H1", "H2", "H3", "L1", "L2", "L3"}
    rab, _ = build_dataset(shared_data / "rab/rab_cdr_backbones.json")
    assert len({r.pdb_id for r in rab}) == 46
    assert all(r.coords.shape == (len(r.window), 4, 3) for r in rab)
